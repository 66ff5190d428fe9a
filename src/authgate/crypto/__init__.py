"""Password hashing, key loading, JWT signing and verification, refresh-token secrets."""
