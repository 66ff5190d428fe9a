"""Use cases. No FastAPI, no commits (the unit of work owns them), no clock or env reads."""
