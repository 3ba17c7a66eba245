"""Settings that cannot work together are refused at start-up, with the names to change."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.settings import Settings


def test_a_billing_run_fits_in_half_the_worker_cache() -> None:
    assert Settings(billing_run_concurrency=500, worker_workflow_cache=1000)
    with pytest.raises(ValidationError, match="BILLING_RUN_CONCURRENCY .*WORKER_WORKFLOW_CACHE"):
        Settings(billing_run_concurrency=501, worker_workflow_cache=1000)
    with pytest.raises(ValidationError, match="BILLING_RUN_CONCURRENCY"):
        Settings(worker_workflow_cache=38)  # the default 20 does not fit in 19 either
