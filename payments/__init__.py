"""Payment-gateway adapters implementing `billing.payments.PaymentGateway`."""

from __future__ import annotations

from payments.simulator import SimulatorGateway

__all__ = ["SimulatorGateway"]
