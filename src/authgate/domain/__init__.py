"""Value objects and ports (Protocols); no I/O, no framework imports."""
