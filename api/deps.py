"""What every route needs, built once in the app's lifespan and passed down."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from fastapi import Request
from redis.asyncio import Redis
from temporalio.client import Client

from config.settings import Settings

# What attaching a payment method sets off in the sagas (api.temporal.on_payment_method_attached
# unless `create_app` is given another): called after the method is stored.
PaymentMethodHook = Callable[["AppState", str], Awaitable[None]]


@dataclass(frozen=True)
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    temporal: Client
    payment_method_attached: PaymentMethodHook


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.billing
    return state
