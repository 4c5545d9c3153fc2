"""Exceptions raised by the OmniMemory clients.

Every refusal of the server has the body ``{"detail": "<message>", "code": "<stable_snake_case>"}``;
it becomes an :class:`OmniMemoryError` (or the subclass for its status) carrying ``status``,
``code`` and ``detail``. Switch on ``code``: it is stable, the message is not.

The class names are those of the original OmniMemory SDK, so ``except RateLimitError as e:
e.retry_after`` keeps working.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type

__all__ = [
    "OmniMemoryError",
    "APIConnectionError",
    "AuthenticationError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "InvalidRequestError",
    "ConflictError",
    "NotFoundError",
    "ServerError",
    "ServiceUnavailableError",
    "error_from_response",
]


class OmniMemoryError(Exception):
    """Base class of every error of this package.

    Attributes:
        status: the HTTP status, or ``None`` when no answer arrived (:class:`APIConnectionError`).
        code: the server's stable error code (``invalid_api_key``, ``quota_exceeded``, …).
        detail: the server's human message.
        retry_after: seconds to wait before trying again (from ``Retry-After``), when given.
        headers: the answer's headers (lower-case names), empty when there was no answer.
        request_id: the answer's ``X-Request-Id`` when it had one.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        retry_after: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        body: Any = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.message = detail  # the original SDK's attribute name
        self.status = status
        self.status_code = status
        self.code = code
        self.retry_after = retry_after
        self.headers: Dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        self.request_id = self.headers.get("x-request-id")
        self.body = body

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.code:
            parts.append(self.code)
        prefix = " ".join(parts)
        return f"{prefix}: {self.detail}" if prefix else self.detail

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"detail={self.detail!r}, retry_after={self.retry_after!r})"
        )


class APIConnectionError(OmniMemoryError):
    """No answer arrived: the connection failed or timed out. ``status`` is ``None`` and
    ``code`` is ``"connection_error"``; the httpx exception is the ``__cause__``."""


class AuthenticationError(OmniMemoryError):
    """401: ``missing_api_key``, ``invalid_api_key``, ``api_key_deactivated``,
    ``api_key_expired``, ``api_key_rotated``."""


class PermissionDeniedError(OmniMemoryError):
    """403: ``admin_forbidden``."""


class QuotaExceededError(OmniMemoryError):
    """402 ``quota_exceeded``: the monthly quota is spent. ``quota_reset`` holds the
    ``X-Quota-Reset`` header (an RFC 3339 time) when the server sent it."""

    @property
    def quota_reset(self) -> Optional[str]:
        return self.headers.get("x-quota-reset")


class RateLimitError(OmniMemoryError):
    """429 ``request_rate_limited``, ``token_rate_limited`` (or ``admin_rate_limited``);
    ``retry_after`` is the ``Retry-After`` header in seconds."""


class InvalidRequestError(OmniMemoryError):
    """400, 413, 415, 422 and other client mistakes (``invalid_request``, ``invalid_json``,
    ``idempotency_key_reused``, ``payload_too_large``, …)."""


class ConflictError(OmniMemoryError):
    """409 ``request_in_progress``: a ``/compress`` with the same ``Idempotency-Key`` is still
    running. Retrying later returns its answer."""


class NotFoundError(OmniMemoryError):
    """404 / 405: the server has no such endpoint (an older server, or a wrong ``base_url``)."""


class ServerError(OmniMemoryError):
    """500 and other server faults (``internal_error``)."""


class ServiceUnavailableError(ServerError):
    """503 ``storage_unavailable`` / ``limiter_unavailable`` (and an unhealthy ``/health``)."""


_BY_STATUS: Dict[int, Type[OmniMemoryError]] = {
    401: AuthenticationError,
    402: QuotaExceededError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def parse_retry_after(value: Optional[str]) -> Optional[int]:
    """``Retry-After`` in whole seconds (the server always sends delta-seconds)."""
    if value is None:
        return None
    try:
        return max(0, int(float(value.strip())))
    except ValueError:
        return None


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> OmniMemoryError:
    """The exception for an error answer (status >= 400)."""
    import json

    detail: Optional[str] = None
    code: Optional[str] = None
    parsed: Any = None
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        if isinstance(parsed.get("detail"), str):
            detail = parsed["detail"]
        if isinstance(parsed.get("code"), str):
            code = parsed["code"]
    if detail is None:
        text = body.decode("utf-8", "replace").strip() if body else ""
        detail = text[:500] or f"HTTP {status}"
    cls = _BY_STATUS.get(status)
    if cls is None:
        if status >= 500:
            cls = ServerError
        elif status >= 400:
            cls = InvalidRequestError
        else:
            cls = OmniMemoryError
    lowered = {k.lower(): v for k, v in headers.items()}
    return cls(
        detail,
        status=status,
        code=code,
        retry_after=parse_retry_after(lowered.get("retry-after")),
        headers=lowered,
        body=parsed,
    )
