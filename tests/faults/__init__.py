"""Fault tests: the service under crashes, restarts, timeouts, load and bad input."""
