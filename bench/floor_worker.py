"""`python -m bench.floor_worker`: the floor workflows on their own task queue.

The Worker's options are copied from `worker.build_worker`, so the floor runs under the
same settings as the billing sagas (concurrency, pollers, cache, interceptors); only the
task queue, the workflows and the activities differ.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.worker import Worker

from bench.floor import WORKFLOWS
from bench.floor_io import ACTIVITIES
from bench.stack import FLOOR_TASK_QUEUE, data_converter
from config.settings import Settings
from payments.simulator import SimulatorGateway
from store.db import create_pool
from worker import build_worker


async def main() -> None:
    settings = Settings()
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    gateway = SimulatorGateway(settings.gateway_url)
    try:
        config = build_worker(client, settings, pool, gateway).config()
        config["task_queue"] = FLOOR_TASK_QUEUE
        config["workflows"] = WORKFLOWS
        config["activities"] = ACTIVITIES
        worker = Worker(**config)
        logging.getLogger("bench.floor").info("polling task queue %s", FLOOR_TASK_QUEUE)
        await worker.run()
    finally:
        await gateway.aclose()
        await pool.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
