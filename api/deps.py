"""What every route needs, built once in the app's lifespan and passed down."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from fastapi import Request
from redis.asyncio import Redis
from temporalio.client import Client

from config.settings import Settings


@dataclass(frozen=True)
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    temporal: Client


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.billing
    return state
