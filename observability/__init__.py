"""Metrics, structured logs, traces and the payload codec: how an operator sees the service."""
