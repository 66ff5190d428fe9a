"""authgate: an authentication server."""

__version__ = "0.1.0"
