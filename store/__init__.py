"""Postgres and Redis access: named SQL, asyncpg `$n` parameters, no business rules."""
