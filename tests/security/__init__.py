"""Security tests: keys at rest, who may reach what, the webhook's signature, the logs."""
