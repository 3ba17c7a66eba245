"""The data converter of every test client, worker, test environment and replayer.

The same as the worker's `data_converter(settings)` for the environment's settings:
pydantic payloads, encrypted with PAYLOAD_CODEC_KEY (the dev key unless set).
"""

from __future__ import annotations

from config.settings import Settings
from observability.codec import data_converter

DATA_CONVERTER = data_converter(Settings())
