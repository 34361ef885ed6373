"""The HTTP edge: raw ASGI handling of signed AWS calls, Starlette for everything else."""
