"""The ``authgate`` command: serve, migrate, keys, version."""
