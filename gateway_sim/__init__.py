"""A payment gateway simulator: its own HTTP service and storage, run by `python -m gateway_sim`."""
