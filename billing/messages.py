"""The base of every Temporal wire message: a frozen pydantic model.

Carried by `pydantic_data_converter`. Money is `Decimal` plus a currency code; times are
timezone-aware UTC. Each message lives beside what it crosses the wire for: a workflow's
input, result and signals in `workflows/<saga>_messages.py`, an activity's in
`activities/<group>_messages.py` (workflows import those, never the reverse), the
`status` query's answer in `workflows/status.py`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)
