"""NetSuite REST error bodies (reference erp-api.md §3) shared by the emulator's layers."""

from __future__ import annotations

from typing import Any

# o:errorCode values the emulator uses. Real codes marked [U] in the reference are our choice.
INVALID_LOGIN = "INVALID_LOGIN"
NONEXISTENT_ID = "NONEXISTENT_ID"
INVALID_KEY_OR_REF = "INVALID_KEY_OR_REF"
INVALID_FLD_VALUE = "INVALID_FLD_VALUE"
USER_ERROR = "USER_ERROR"
INVALID_PARAMETER = "INVALID_PARAMETER"
CONCURRENCY_LIMIT_EXCEEDED = "CONCURRENCY_LIMIT_EXCEEDED"
PERIOD_CLOSED = "PERIOD_CLOSED"  # [U] in the reference; stable here
UNEXPECTED_ERROR = "UNEXPECTED_ERROR"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Record Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class NetSuiteError(Exception):
    """An error the emulator answers with the NetSuite error body."""

    def __init__(self, status: int, code: str, detail: str, path: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.code, self.detail, self.path)


def error_body(status: int, code: str, detail: str, path: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path:
        item["o:errorPath"] = path
    return {
        "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#name-{status}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [item],
    }
