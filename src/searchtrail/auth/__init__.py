"""Authentication: SigV4 verification and principals."""
