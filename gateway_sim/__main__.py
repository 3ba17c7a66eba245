"""`python -m gateway_sim`: serve the simulator on GATEWAY_HOST:GATEWAY_PORT."""

from __future__ import annotations

import uvicorn

from config.settings import Settings
from gateway_sim.app import create_app
from observability.logs import configure_logging


def main() -> None:
    settings = Settings()
    configure_logging(settings, "gateway")
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="info",
        log_config=None,  # keep the JSON logging configured above
    )


if __name__ == "__main__":
    main()
