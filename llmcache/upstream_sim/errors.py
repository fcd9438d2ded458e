"""Error responses in each API's own format, status and headers."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from .text import dumps

ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ANTHROPIC_MESSAGES = {
    401: "invalid x-api-key",
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    504: "Request timed out",
    529: "Overloaded",
}
OPENAI_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", None),
}
OPENAI_MESSAGES = {
    429: "Rate limit reached for requests. Please try again in 1s.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
}
RETRY_AFTER_STATUSES = {429, 529, 503}


def request_id(prefix: str = "req_") -> str:
    return prefix + secrets.token_hex(12)


def anthropic_error_body(status: int, message: str | None = None, rid: str = "") -> dict[str, Any]:
    kind = ANTHROPIC_TYPES.get(status, "api_error")
    text = message or ANTHROPIC_MESSAGES.get(status) or kind.replace("_", " ")
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": rid}


def anthropic_error(status: int, message: str | None = None) -> web.Response:
    rid = request_id("req_011")
    headers = {"request-id": rid, "content-type": "application/json"}
    if status in RETRY_AFTER_STATUSES:
        headers["retry-after"] = "1"
    body = anthropic_error_body(status, message, rid)
    return web.Response(status=status, text=dumps(body), headers=headers)


def openai_error_body(
    status: int, message: str | None = None, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind, default_code = OPENAI_TYPES.get(status, ("server_error", None))
    text = message or OPENAI_MESSAGES.get(status) or f"Simulated error {status}."
    resolved = default_code if code is None else (code or None)  # "" means an explicit null
    return {"error": {"message": text, "type": kind, "param": param, "code": resolved}}


def openai_error(
    status: int, message: str | None = None, param: str | None = None, code: str | None = None
) -> web.Response:
    headers = {"x-request-id": request_id(), "content-type": "application/json"}
    if status in RETRY_AFTER_STATUSES:
        headers["retry-after"] = "1"
    body = openai_error_body(status, message, param, code)
    return web.Response(status=status, text=dumps(body), headers=headers)


class ApiError(Exception):
    """Raised by handlers; rendered in the format of the API the route belongs to."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
