"""The lean usage ingest path: decode, plans, pricing and the steps of one request."""
