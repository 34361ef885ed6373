"""Typed service errors: the one exception type every layer raises for an AWS-shaped error."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error the client sees as ``{"__type": code, "message": message}``.

    ``status`` is None when the error funnel should take it from the model (or its
    status table); ``fields`` are extra modelled members such as ``serviceCode``.
    """

    def __init__(self, code: str, message: str, status: int | None = None, **fields: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


def validation_error(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


class UnknownOperationError(ServiceError):
    """No operation matches the request's target or action."""

    def __init__(self, message: str = "Unknown operation") -> None:
        super().__init__("UnknownOperationException", message, status=400)


class InternalError(ServiceError):
    """Anything unexpected: the request id leads to the logged traceback."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            "InternalServerException",
            f"An internal error occurred. Quote request id {request_id} when reporting it.",
            status=500,
        )
