"""The local stack: Postgres, Redis and Temporal from wheels, and the service on top of them."""
