"""The HTTP clients: :class:`OmniMemory` (blocking) and :class:`AsyncOmniMemory` (asyncio)."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import httpx

from .errors import (
    APIConnectionError,
    ConflictError,
    OmniMemoryError,
    RateLimitError,
    ServiceUnavailableError,
    error_from_response,
)
from .models import CompressionResult, Message, Quota, TokenCount, UsageStats, ValidationResult

__all__ = ["OmniMemory", "AsyncOmniMemory", "DEFAULT_BASE_URL"]

__version__ = "0.1.0"

DEFAULT_BASE_URL = "http://localhost:8001"

TimeoutTypes = Union[float, httpx.Timeout, None]
MessagesArg = Sequence[Union[Message, Mapping[str, Any]]]

# (method, path, JSON body, query parameters, extra headers)
_Call = Tuple[str, str, Optional[Dict[str, Any]], Optional[Dict[str, Any]], Dict[str, str]]


def _drop_none(d: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class _Base:
    """Configuration, request building, answer parsing and the retry rule shared by both clients."""

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: TimeoutTypes = 30.0,
        *,
        max_retries: int = 0,
        max_retry_wait: float = 60.0,
        retry_backoff: float = 0.5,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get("OMNIMEMORY_API_KEY")
        self.base_url = (base_url or os.environ.get("OMNIMEMORY_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.retry_backoff = retry_backoff
        self._extra_headers = dict(headers or {})

    # -- requests ---------------------------------------------------------------------------

    def _headers(self, extra: Mapping[str, str]) -> Dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": f"omnimemory-python/{__version__}"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        h.update(self._extra_headers)
        h.update(extra)
        return h

    def _compress_call(
        self,
        context: Optional[str],
        query: Optional[str],
        target_compression: Optional[float],
        model_id: Optional[str],
        tool_id: Optional[str],
        session_id: Optional[str],
        metadata: Optional[Mapping[str, str]],
        messages: Optional[MessagesArg],
        target_tokens: Optional[int],
        granularity: Optional[str],
        idempotency_key: Optional[str],
        keep_system: Optional[bool] = None,
        keep_last_user: Optional[bool] = None,
    ) -> _Call:
        if (context is None) == (messages is None):
            raise ValueError("compress() takes exactly one of `context` or `messages`")
        body: Dict[str, Any] = _drop_none(
            {
                "context": context,
                "query": query,
                "target_compression": target_compression,
                "target_tokens": target_tokens,
                "model_id": model_id,
                "granularity": granularity,
                "tool_id": tool_id,
                "session_id": session_id,
                "metadata": dict(metadata) if metadata is not None else None,
            }
        )
        if messages is not None:
            body["messages"] = [_message(m) for m in messages]
            body.update(_drop_none({"keep_system": keep_system, "keep_last_user": keep_last_user}))
        elif keep_system is not None or keep_last_user is not None:
            raise ValueError("keep_system and keep_last_user apply to `messages` only")
        headers: Dict[str, str] = {}
        if idempotency_key is None and self.max_retries > 0:
            # Retries of one call must carry one key, so the server answers a retry of a
            # request it already served from its store instead of charging it twice.
            idempotency_key = uuid.uuid4().hex
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return ("POST", "/compress", body, None, headers)

    @staticmethod
    def _count_call(text: str, model_id: Optional[str]) -> _Call:
        return ("POST", "/count-tokens", _drop_none({"text": text, "model_id": model_id}), None, {})

    @staticmethod
    def _validate_call(original: str, compressed: str, metrics: Optional[Sequence[str]], query: Optional[str]) -> _Call:
        body = _drop_none(
            {
                "original": original,
                "compressed": compressed,
                "query": query,
                "metrics": None if metrics is None else [metrics] if isinstance(metrics, str) else list(metrics),
            }
        )
        return ("POST", "/validate", body, None, {})

    @staticmethod
    def _stats_call(days: Optional[int], group_by: Optional[str]) -> _Call:
        return ("GET", "/usage/stats", None, _drop_none({"days": days, "group_by": group_by}) or None, {})

    # -- answers ----------------------------------------------------------------------------

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.headers, response.content)
        try:
            return response.json()
        except ValueError as e:
            raise OmniMemoryError(
                f"the server answered {response.status_code} with a body that is not JSON",
                status=response.status_code,
                code="invalid_response",
                headers=response.headers,
            ) from e

    def _retry_delay(self, error: OmniMemoryError, attempt: int) -> Optional[float]:
        """Seconds to wait before the next attempt, or ``None`` to raise ``error`` now.

        Retried: 429 and 503 (after ``Retry-After`` when given, else an exponential backoff),
        409 ``request_in_progress`` and connection failures (backoff). A wait longer than
        ``max_retry_wait`` is not waited: the error is raised at once.
        """
        if attempt >= self.max_retries:
            return None
        backoff = self.retry_backoff * (2**attempt) * (1.0 + 0.25 * random.random())
        if isinstance(error, (RateLimitError, ServiceUnavailableError)):
            delay = float(error.retry_after) if error.retry_after is not None else backoff
        elif isinstance(error, ConflictError) and error.code == "request_in_progress":
            delay = backoff
        elif isinstance(error, APIConnectionError):
            delay = backoff
        else:
            return None
        return delay if delay <= self.max_retry_wait else None

    @staticmethod
    def _connection_error(e: httpx.TransportError, path: str) -> APIConnectionError:
        return APIConnectionError(f"{type(e).__name__} on {path}: {e}", code="connection_error")


def _message(m: Union[Message, Mapping[str, Any]]) -> Dict[str, Any]:
    if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
        raise ValueError("each message must be a mapping with 'role' and 'content'")
    return dict(m)


class OmniMemory(_Base):
    """Blocking client.

    ::

        from omnimemory import OmniMemory
        with OmniMemory(api_key="om_pro_…", base_url="http://localhost:8001") as om:
            print(om.compress("long text…", query="what matters").compressed_text)

    Args:
        api_key: ``om_<tier>_<secret>``; defaults to ``$OMNIMEMORY_API_KEY``.
        base_url: defaults to ``$OMNIMEMORY_BASE_URL``, else ``http://localhost:8001``.
        timeout: seconds (or an ``httpx.Timeout``) per attempt.
        max_retries: extra attempts after a 429, 503, 409 ``request_in_progress`` or a
            connection failure (0, the default, raises at once, as the original SDK did).
            A 429/503 waits its ``Retry-After``. Every attempt of one ``compress`` call carries
            the same ``Idempotency-Key`` (one is generated when retrying is on and none was
            given), so a retried request is never charged twice.
        max_retry_wait: the longest single wait; a ``Retry-After`` above it is raised at once.
        retry_backoff: first backoff in seconds when the server gives no ``Retry-After``
            (doubled each attempt).
        headers: extra headers sent on every request.
        http_client: an ``httpx.Client`` of your own (proxies, event hooks, transports);
            it is not closed by :meth:`close`.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: TimeoutTypes = 30.0,
        *,
        max_retries: int = 0,
        max_retry_wait: float = 60.0,
        retry_backoff: float = 0.5,
        headers: Optional[Mapping[str, str]] = None,
        http_client: Optional[httpx.Client] = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url,
            timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            retry_backoff=retry_backoff,
            headers=headers,
        )
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.Client(timeout=timeout)

    def _send(self, call: _Call) -> Tuple[Any, httpx.Headers]:
        method, path, body, params, extra = call
        headers = self._headers(extra)
        attempt = 0
        while True:
            try:
                try:
                    response = self._client.request(
                        method, self.base_url + path, json=body, params=params, headers=headers
                    )
                except httpx.TransportError as e:
                    raise self._connection_error(e, path) from e
                return self._check(response), response.headers
            except OmniMemoryError as err:
                delay = self._retry_delay(err, attempt)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    # -- endpoints --------------------------------------------------------------------------

    def compress(
        self,
        context: Optional[str] = None,
        query: Optional[str] = None,
        target_compression: Optional[float] = None,
        model_id: Optional[str] = None,
        tool_id: Optional[str] = None,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        *,
        messages: Optional[MessagesArg] = None,
        target_tokens: Optional[int] = None,
        granularity: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        keep_system: Optional[bool] = None,
        keep_last_user: Optional[bool] = None,
    ) -> CompressionResult:
        """``POST /compress``: compress ``context`` (or chat ``messages``) to a token budget.

        Args:
            context: the text to compress ("" is allowed). Give this or ``messages``.
            query: makes the compression query-aware.
            target_compression: fraction of tokens to remove, in [0, 1) (server default 0.944).
            model_id: the model whose tokenizer counts tokens (server default ``gpt-4``).
            tool_id, session_id: tags stored with the usage record.
            metadata: string tags stored with the usage record (cost allocation,
                ``usage_stats(group_by=…)``).
            messages: OpenAI-style ``[{"role": …, "content": …}]``; the answer's ``messages``
                holds the kept messages (in order, roles as sent, each whole or as a run of its
                sentences) and ``compressed_text`` their contents joined by a blank line.
            keep_system, keep_last_user: with ``messages``: keep system/developer messages and
                the last user message whole (server default: both true).
            target_tokens: absolute budget; wins over ``target_compression``.
            granularity: ``"sentence"`` (server default) or ``"word"``.
            idempotency_key: sent as ``Idempotency-Key``: a repeat with the same key and body
                within 24 h gets the first answer and is not charged again.
        """
        call = self._compress_call(
            context, query, target_compression, model_id, tool_id, session_id, metadata,
            messages, target_tokens, granularity, idempotency_key, keep_system, keep_last_user,
        )  # fmt: skip
        data, headers = self._send(call)
        return CompressionResult.from_json(data, headers)

    def count_tokens(
        self, text: str, model_id: Optional[str] = None, prefer_online: Optional[bool] = None
    ) -> TokenCount:
        """``POST /count-tokens``: the token count of ``text`` for ``model_id`` (server default
        ``gpt-4``). ``prefer_online`` is accepted for compatibility with the original SDK and
        ignored (counting is always local to the server)."""
        data, _ = self._send(self._count_call(text, model_id))
        return TokenCount.from_json(data)

    def validate(
        self,
        original: str,
        compressed: str,
        metrics: Optional[Sequence[str]] = None,
        *,
        query: Optional[str] = None,
    ) -> ValidationResult:
        """``POST /validate``: retention metrics between ``original`` and ``compressed``.
        ``metrics`` selects what ``details`` reports (all when ``None``)."""
        data, _ = self._send(self._validate_call(original, compressed, metrics, query))
        return ValidationResult.from_json(data)

    def usage_stats(self, days: Optional[int] = None, group_by: Optional[str] = None) -> UsageStats:
        """``GET /usage/stats``: the caller's own usage over ``days`` days (server default 30),
        grouped by the metadata tag ``group_by`` when given."""
        data, _ = self._send(self._stats_call(days, group_by))
        return UsageStats.from_json(data)

    def usage_quota(self) -> Quota:
        """``GET /usage/quota``: the caller's monthly quota and rate-limit state."""
        data, _ = self._send(("GET", "/usage/quota", None, None, {}))
        return Quota.from_json(data)

    def health(self) -> Dict[str, Any]:
        """``GET /health`` (no key needed): ``{"status": "healthy", "storage": "ok", …}``.
        Raises :class:`ServiceUnavailableError` when the server answers 503."""
        data, _ = self._send(("GET", "/health", None, None, {}))
        return dict(data)

    # Names of the original SDK, whose blocking methods ended in ``_sync``.
    health_check = health
    compress_sync = compress
    count_tokens_sync = count_tokens
    validate_sync = validate
    health_check_sync = health
    usage_stats_sync = usage_stats
    usage_quota_sync = usage_quota

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    close_sync = close

    def __enter__(self) -> "OmniMemory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncOmniMemory(_Base):
    """Asyncio client; same arguments and methods as :class:`OmniMemory`, awaited.

    Like the original SDK's client it also has the blocking twins ``compress_sync``,
    ``count_tokens_sync``, ``validate_sync``, ``health_check_sync`` (and ``close_sync``), so
    code written for the original moves over with
    ``from omnimemory import AsyncOmniMemory as OmniMemory``.

    ``http_client`` takes an ``httpx.AsyncClient`` of your own (not closed by :meth:`close`).
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: TimeoutTypes = 30.0,
        *,
        max_retries: int = 0,
        max_retry_wait: float = 60.0,
        retry_backoff: float = 0.5,
        headers: Optional[Mapping[str, str]] = None,
        http_client: Optional[httpx.AsyncClient] = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url,
            timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            retry_backoff=retry_backoff,
            headers=headers,
        )
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)
        self._blocking: Optional[OmniMemory] = None

    async def _send(self, call: _Call) -> Tuple[Any, httpx.Headers]:
        method, path, body, params, extra = call
        headers = self._headers(extra)
        attempt = 0
        while True:
            try:
                try:
                    response = await self._client.request(
                        method, self.base_url + path, json=body, params=params, headers=headers
                    )
                except httpx.TransportError as e:
                    raise self._connection_error(e, path) from e
                return self._check(response), response.headers
            except OmniMemoryError as err:
                delay = self._retry_delay(err, attempt)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    async def compress(
        self,
        context: Optional[str] = None,
        query: Optional[str] = None,
        target_compression: Optional[float] = None,
        model_id: Optional[str] = None,
        tool_id: Optional[str] = None,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        *,
        messages: Optional[MessagesArg] = None,
        target_tokens: Optional[int] = None,
        granularity: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        keep_system: Optional[bool] = None,
        keep_last_user: Optional[bool] = None,
    ) -> CompressionResult:
        """``POST /compress``; see :meth:`OmniMemory.compress`."""
        call = self._compress_call(
            context, query, target_compression, model_id, tool_id, session_id, metadata,
            messages, target_tokens, granularity, idempotency_key, keep_system, keep_last_user,
        )  # fmt: skip
        data, headers = await self._send(call)
        return CompressionResult.from_json(data, headers)

    async def count_tokens(
        self, text: str, model_id: Optional[str] = None, prefer_online: Optional[bool] = None
    ) -> TokenCount:
        """``POST /count-tokens``; see :meth:`OmniMemory.count_tokens`."""
        data, _ = await self._send(self._count_call(text, model_id))
        return TokenCount.from_json(data)

    async def validate(
        self,
        original: str,
        compressed: str,
        metrics: Optional[Sequence[str]] = None,
        *,
        query: Optional[str] = None,
    ) -> ValidationResult:
        """``POST /validate``; see :meth:`OmniMemory.validate`."""
        data, _ = await self._send(self._validate_call(original, compressed, metrics, query))
        return ValidationResult.from_json(data)

    async def usage_stats(self, days: Optional[int] = None, group_by: Optional[str] = None) -> UsageStats:
        """``GET /usage/stats``; see :meth:`OmniMemory.usage_stats`."""
        data, _ = await self._send(self._stats_call(days, group_by))
        return UsageStats.from_json(data)

    async def usage_quota(self) -> Quota:
        """``GET /usage/quota``; see :meth:`OmniMemory.usage_quota`."""
        data, _ = await self._send(("GET", "/usage/quota", None, None, {}))
        return Quota.from_json(data)

    async def health(self) -> Dict[str, Any]:
        """``GET /health``; see :meth:`OmniMemory.health`."""
        data, _ = await self._send(("GET", "/health", None, None, {}))
        return dict(data)

    health_check = health

    # -- blocking twins (the original SDK's ``*_sync`` methods) ---------------------------

    def _sync(self) -> OmniMemory:
        if self._blocking is None:
            self._blocking = OmniMemory(
                self.api_key,
                self.base_url,
                self.timeout,
                max_retries=self.max_retries,
                max_retry_wait=self.max_retry_wait,
                retry_backoff=self.retry_backoff,
                headers=self._extra_headers,
            )
        return self._blocking

    def compress_sync(self, *args: Any, **kwargs: Any) -> CompressionResult:
        """Blocking :meth:`compress` (same arguments)."""
        return self._sync().compress(*args, **kwargs)

    def count_tokens_sync(self, *args: Any, **kwargs: Any) -> TokenCount:
        """Blocking :meth:`count_tokens` (same arguments)."""
        return self._sync().count_tokens(*args, **kwargs)

    def validate_sync(self, *args: Any, **kwargs: Any) -> ValidationResult:
        """Blocking :meth:`validate` (same arguments)."""
        return self._sync().validate(*args, **kwargs)

    def health_check_sync(self) -> Dict[str, Any]:
        """Blocking :meth:`health`."""
        return self._sync().health()

    def usage_stats_sync(self, *args: Any, **kwargs: Any) -> UsageStats:
        return self._sync().usage_stats(*args, **kwargs)

    def usage_quota_sync(self) -> Quota:
        return self._sync().usage_quota()

    def close_sync(self) -> None:
        """Closes the connections of the blocking twins."""
        if self._blocking is not None:
            self._blocking.close()
            self._blocking = None

    async def close(self) -> None:
        """Closes the connections (both the asyncio ones and those of the blocking twins)."""
        self.close_sync()
        if self._owns_client:
            await self._client.aclose()

    aclose = close

    async def __aenter__(self) -> "AsyncOmniMemory":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __enter__(self) -> "AsyncOmniMemory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close_sync()
