"""Route modules: the TimeLapseMe API (/api/v1), the Serverless seed API (root), well-known."""
