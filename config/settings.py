"""Every setting the product names, read once from the environment at start-up.

Durations are strings such as `30s`, `5m`, `2h`, `1d` so that a demo or a test can
shorten days of dunning to seconds without touching code.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from billing.durations import parse_duration, parse_schedule

# What dunning does to the customer of a bill it could not collect.
DunningExhaustedAction = Literal["downgrade", "suspend"]

DEV_API_KEY = "sk_dev_billing_local_only"
DEV_WEBHOOK_SECRET = "whsec_dev_local_only"
# base64 of 32 bytes: AES-256-GCM for workflow payloads. Known to everyone, so dev only.
DEV_PAYLOAD_CODEC_KEY = "YmlsbGluZy1kZXYtcGF5bG9hZC1rZXktMzJieXRlcyE="


class Settings(BaseSettings):
    """The service's configuration; placeholder secrets are refused outside dev mode."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Literal["dev", "test", "production"] = "dev"

    # Dependencies. Empty means "the dev stack starts its own".
    database_url: str = ""
    redis_url: str = ""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "billing"

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    billing_api_key: SecretStr = SecretStr(DEV_API_KEY)

    # Gateway simulator
    gateway_url: str = "http://127.0.0.1:8001"
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8001
    gateway_webhook_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    gateway_webhook_url: str = "http://127.0.0.1:8000/v1/webhooks/gateway"
    gateway_webhook_tolerance: str = "5m"
    gateway_success_rate: float = Field(default=0.95, ge=0.0, le=1.0)
    gateway_seed: int = 42
    gateway_db_path: str = ".devstack/gateway.sqlite3"
    bank_transfer_settlement_delay: str = "10s"
    gateway_timeout: str = "10s"  # the service's HTTP timeout per gateway call
    # How long a call is retried with its key before the saga switches to look-ups.
    gateway_retry_budget: str = "2m"

    # Money and lifecycle
    currency: str = "USD"
    default_tax_rate: Decimal = Decimal("0")
    dunning_schedule: str = "1d,3d,7d"
    bank_transfer_deadline: str = "3d"
    dunning_exhausted_action: DunningExhaustedAction = "downgrade"
    # Billing cycles a billing run keeps running at once, from a sweep on 2 cores
    # (`python -m bench.sweep`, docs/benchmarks.md "Billing run concurrency"): 10 was
    # slower, 20, 50 and 100 alike within the noise (20 a little ahead over 3 runs), 200
    # slower (more CPU per customer). Against a real gateway's slower answers raise it:
    # N running cycles bill at most N / (one cycle's latency) a second.
    billing_run_concurrency: int = Field(default=20, ge=1, le=1000)
    billing_run_page_size: int = Field(default=500, ge=1, le=10_000)
    # The worker's cache of workflow executions (sticky): a cached one runs its next task
    # without replaying its history. The running cycles of a billing run must fit in half.
    worker_workflow_cache: int = Field(default=1000, ge=2)

    # Outbound webhooks (docs/webhooks.md): waits between attempts, about 3 days in all.
    webhook_retry_schedule: str = "5s,5m,30m,2h,5h,10h,10h,24h,24h"
    webhook_timeout: str = "10s"  # per attempt: connect, send and the receiver's answer
    # Private and loopback targets may be called: by default in dev and test, not in production.
    webhook_allow_private: bool = True

    # Rate limiting
    rate_limit_redis_down: Literal["allow", "deny"] = "allow"

    # Observability (docs/observability.md)
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)  # 0: no worker /metrics
    temporal_sdk_metrics_port: int = Field(default=9465, ge=0, le=65535)  # 0: no SDK metrics
    metrics_token: SecretStr = SecretStr("")  # set: /metrics wants `Bearer <token>`
    tracing_enabled: bool = False
    otlp_traces_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    payload_codec_key: SecretStr = SecretStr(DEV_PAYLOAD_CODEC_KEY)
    payload_codec_key_id: str = Field(default="dev", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    payload_codec_retired_keys: SecretStr = SecretStr("")  # "id=base64,...": decode only
    codec_server_auth: Literal["auto", "none", "service_key"] = "auto"
    codec_cors_origins: str = "http://127.0.0.1:8233,http://localhost:8233"

    @field_validator(
        "gateway_webhook_tolerance",
        "bank_transfer_settlement_delay",
        "bank_transfer_deadline",
        "gateway_timeout",
        "gateway_retry_budget",
        "webhook_timeout",
    )
    @classmethod
    def _is_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("dunning_schedule", "webhook_retry_schedule")
    @classmethod
    def _is_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_private_webhooks_in_production(cls, data: Any) -> Any:
        """WEBHOOK_ALLOW_PRIVATE defaults to false in production, unless set explicitly."""
        if isinstance(data, dict) and "webhook_allow_private" not in data:
            if str(data.get("environment", "")).lower() == "production":
                return {**data, "webhook_allow_private": False}
        return data

    @field_validator("payload_codec_key")
    @classmethod
    def _is_aes_key(cls, value: SecretStr) -> SecretStr:
        aes_key(value.get_secret_value())
        return value

    @field_validator("payload_codec_retired_keys")
    @classmethod
    def _are_aes_keys(cls, value: SecretStr) -> SecretStr:
        parse_retired_keys(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            if self.billing_api_key.get_secret_value() == DEV_API_KEY:
                raise ValueError("BILLING_API_KEY is the dev placeholder; set a real key")
            if self.gateway_webhook_secret.get_secret_value() == DEV_WEBHOOK_SECRET:
                raise ValueError("GATEWAY_WEBHOOK_SECRET is the dev placeholder; set a real one")
            if self.payload_codec_key.get_secret_value() == DEV_PAYLOAD_CODEC_KEY:
                raise ValueError("PAYLOAD_CODEC_KEY is the dev placeholder; set a real key")
        return self

    @model_validator(mode="after")
    def _billing_run_fits_the_cache(self) -> Settings:
        if self.billing_run_concurrency > self.worker_workflow_cache // 2:
            raise ValueError(
                f"BILLING_RUN_CONCURRENCY ({self.billing_run_concurrency}) must fit in half of "
                f"WORKER_WORKFLOW_CACHE ({self.worker_workflow_cache}): cycles evicting each "
                "other would replay their whole histories on every workflow task"
            )
        return self

    @property
    def codec_auth_required(self) -> bool:
        """`auto`: the Web UI of `make run` decodes without a key; elsewhere the service key."""
        if self.codec_server_auth == "auto":
            return self.environment != "dev"
        return self.codec_server_auth == "service_key"

    @property
    def dunning_delays(self) -> list[timedelta]:
        return parse_schedule(self.dunning_schedule)

    @property
    def bank_transfer_deadline_delta(self) -> timedelta:
        return parse_duration(self.bank_transfer_deadline)

    @property
    def settlement_delay_delta(self) -> timedelta:
        return parse_duration(self.bank_transfer_settlement_delay)

    @property
    def webhook_tolerance_delta(self) -> timedelta:
        return parse_duration(self.gateway_webhook_tolerance)

    @property
    def gateway_timeout_delta(self) -> timedelta:
        return parse_duration(self.gateway_timeout)

    @property
    def gateway_retry_budget_delta(self) -> timedelta:
        return parse_duration(self.gateway_retry_budget)

    @property
    def webhook_delays(self) -> list[timedelta]:
        return parse_schedule(self.webhook_retry_schedule)

    @property
    def webhook_timeout_delta(self) -> timedelta:
        return parse_duration(self.webhook_timeout)

    @property
    def webhooks_reach_private(self) -> bool:
        return self.webhook_allow_private


def aes_key(text: str) -> bytes:
    """A base64 AES key of 16, 24 or 32 bytes; anything else is refused at start-up."""
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("a payload codec key is base64 (e.g. `openssl rand -base64 32`)") from exc
    if len(key) not in (16, 24, 32):
        raise ValueError(f"a payload codec key is 16, 24 or 32 bytes, not {len(key)}")
    return key


def parse_retired_keys(text: str) -> dict[str, bytes]:
    """`id=base64,id=base64`: old keys that still decode history written under them."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_id, sep, value = item.partition("=")
        if not sep or not key_id:
            raise ValueError("PAYLOAD_CODEC_RETIRED_KEYS is `id=base64key,...`")
        keys[key_id.strip()] = aes_key(value.strip())
    return keys
