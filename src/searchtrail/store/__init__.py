"""Persistence: repository interfaces and their SQLite implementation."""
