"""The PostgreSQL store: several nodes share one database."""
