"""SQLite implementation of the store: WAL, synchronous=FULL, one group-commit writer."""
