"""The service's configuration: `config.settings.Settings`, built once per process at its
entry point (worker, API, gateway simulator, devstack, counter rebuild, bench) and passed down."""
