"""The HTTP clients: :class:`OmniMemory` (blocking) and :class:`AsyncOmniMemory` (asyncio)."""

from __future__ import annotations

import asyncio
import codecs
import datetime as _dt
import inspect
import io
import json
import os
import random
import re
import time
import urllib.parse
import uuid
from typing import (
    IO,
    Any,
    AsyncIterator,
    Dict,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import httpx

from .errors import (
    APIConnectionError,
    ConflictError,
    OmniMemoryError,
    RateLimitError,
    ServiceUnavailableError,
    error_from_response,
)
from .models import (
    CompressionResult,
    CreatedKey,
    DailyUsage,
    KeyInfo,
    KeyList,
    Message,
    Quota,
    RotatedKey,
    TokenCount,
    UsageRecord,
    UsageStats,
    ValidationResult,
)

__all__ = ["OmniMemory", "AsyncOmniMemory", "DEFAULT_BASE_URL"]

__version__ = "0.1.0"

DEFAULT_BASE_URL = "http://localhost:8001"

TimeoutTypes = Union[float, httpx.Timeout, None]
MessagesArg = Sequence[Union[Message, Mapping[str, Any]]]
#: ``since`` / ``until`` of the usage export: a ``date`` (that UTC day's start), a
#: timezone-aware ``datetime``, or the server's own string form (``2026-12-01``, RFC 3339).
TimeArg = Union[str, _dt.date, _dt.datetime]
#: Where ``export_usage`` writes: a path (written whole or not at all), or a file object
#: (binary, or text: the export is UTF-8).
ExportTarget = Union[str, "os.PathLike[str]", IO[bytes], IO[str], Any]


class _Call(NamedTuple):
    method: str
    path: str
    body: Optional[Dict[str, Any]] = None
    params: Optional[Dict[str, Any]] = None
    headers: Dict[str, str] = {}
    #: sent with ``X-Admin-Key`` (the client's ``admin_key``) instead of the Bearer key
    admin: bool = False
    #: False for a request that must not run twice (a key creation or rotation): a connection
    #: failure after it may have been sent is raised, not retried.
    resend_safe: bool = True


def _drop_none(d: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


_FULL_KEY = re.compile(r"(om_[a-z]+_[A-Za-z0-9_-]{8})[A-Za-z0-9_-]+")


def _key_id(key: str) -> str:
    """The public id (``om_pro_AbCdEfGh``) that names a key in admin URLs. A full key is cut
    to its id, so a secret never goes into a URL (where access logs would keep it)."""
    if not isinstance(key, str) or not key:
        raise ValueError("key_id must be a key id like om_pro_AbCdEfGh (or the full key)")
    m = _FULL_KEY.fullmatch(key)
    return m.group(1) if m else urllib.parse.quote(key, safe="")


def _time_param(name: str, value: Optional[TimeArg]) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be a timezone-aware datetime (the export's times are UTC)")
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    raise TypeError(f"{name} must be a str, date or datetime, not {type(value).__name__}")


class _Lines:
    """Splits a byte stream into lines at LF bytes only (a JSON string may hold U+2028 or
    U+0085, which ``str.splitlines`` would split on); a line is held until its end arrives."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> List[bytes]:
        parts = (self._pending + chunk).split(b"\n")
        self._pending = parts.pop()
        return [p for p in parts if p.strip()]

    def finish(self) -> List[bytes]:
        rest, self._pending = self._pending, b""
        return [rest] if rest.strip() else []


def _record(line: bytes) -> UsageRecord:
    return UsageRecord.from_json(json.loads(line))


def _records(chunks: Iterator[bytes]) -> Iterator[UsageRecord]:
    """The records of a JSON lines export, each as soon as its line has arrived."""
    lines = _Lines()
    try:
        for chunk in chunks:
            for line in lines.feed(chunk):
                yield _record(line)
        for line in lines.finish():
            yield _record(line)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # stopping early closes the answer at once


async def _arecords(chunks: AsyncIterator[bytes]) -> AsyncIterator[UsageRecord]:
    lines = _Lines()
    try:
        async for chunk in chunks:
            for line in lines.feed(chunk):
                yield _record(line)
        for line in lines.finish():
            yield _record(line)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class _Sink:
    """``export_usage``'s target: a path is written to ``<path>.part`` and renamed when the export
    is complete (removed if not), so the path never holds a cut-short export; a file object is
    written chunk by chunk (decoded for a text file)."""

    def __init__(self, target: ExportTarget) -> None:
        self.path: Optional[str] = None
        self._decoder: Optional[codecs.IncrementalDecoder] = None
        if isinstance(target, (str, os.PathLike)):
            self.path = os.fspath(target)
            self.part = self.path + ".part"
            self.file: Any = open(self.part, "wb")
        elif callable(getattr(target, "write", None)):
            self.file = target
            if isinstance(target, io.TextIOBase):
                self._decoder = codecs.getincrementaldecoder("utf-8")()
        else:
            raise TypeError("export_usage() writes to a path or a file object with write()")
        self.written = 0

    def data(self, chunk: bytes, final: bool = False) -> Any:
        self.written += len(chunk)
        return self.file.write(self._decoder.decode(chunk, final) if self._decoder else chunk)

    def done(self, ok: bool) -> None:
        if self.path is None:
            return
        self.file.close()
        if ok:
            os.replace(self.part, self.path)
        else:
            try:
                os.remove(self.part)
            except OSError:
                pass


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
        admin_key: Optional[str] = None,
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get("OMNIMEMORY_API_KEY")
        self.admin_key = admin_key if admin_key is not None else os.environ.get("OMNIMEMORY_ADMIN_KEY")
        self.base_url = (base_url or os.environ.get("OMNIMEMORY_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.retry_backoff = retry_backoff
        self._extra_headers = dict(headers or {})

    # -- requests ---------------------------------------------------------------------------

    def _headers(self, call: _Call) -> Dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": f"omnimemory-python/{__version__}"}
        if call.admin:
            # The admin key only, never beside a customer's Bearer key.
            if self.admin_key:
                h["X-Admin-Key"] = self.admin_key
        elif self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        h.update(self._extra_headers)
        h.update(call.headers)
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
        return _Call("POST", "/compress", body, None, headers)

    @staticmethod
    def _count_call(text: str, model_id: Optional[str]) -> _Call:
        return _Call("POST", "/count-tokens", _drop_none({"text": text, "model_id": model_id}))

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
        return _Call("POST", "/validate", body)

    @staticmethod
    def _stats_call(days: Optional[int], group_by: Optional[str]) -> _Call:
        return _Call("GET", "/usage/stats", None, _drop_none({"days": days, "group_by": group_by}) or None)

    @staticmethod
    def _daily_call(days: Optional[int]) -> _Call:
        return _Call("GET", "/usage/daily", None, _drop_none({"days": days}) or None)

    @staticmethod
    def _recent_call(limit: Optional[int]) -> _Call:
        return _Call("GET", "/usage/recent", None, _drop_none({"limit": limit}) or None)

    @staticmethod
    def _export_call(since: Optional[TimeArg], until: Optional[TimeArg], format: str) -> _Call:
        params = _drop_none(
            {"format": format, "since": _time_param("since", since), "until": _time_param("until", until)}
        )
        return _Call(
            "GET", "/usage/export", None, params, {"Accept": "text/csv, application/x-ndjson, application/json"}
        )

    @staticmethod
    def _create_key_call(
        user_id: str,
        tier: Optional[str],
        email: Optional[str],
        company: Optional[str],
        expires_in_days: Optional[int],
    ) -> _Call:
        body = _drop_none(
            {"user_id": user_id, "tier": tier, "email": email, "company": company, "expires_in_days": expires_in_days}
        )
        return _Call("POST", "/admin/api-key", body, admin=True, resend_safe=False)

    @staticmethod
    def _rotate_call(key_id: str, grace_hours: Optional[int]) -> _Call:
        params = _drop_none({"grace_hours": grace_hours}) or None
        path = f"/admin/api-key/{_key_id(key_id)}/rotate"
        return _Call("POST", path, None, params, admin=True, resend_safe=False)

    @staticmethod
    def _list_keys_call(tier: Optional[str], limit: Optional[int]) -> _Call:
        return _Call("GET", "/admin/keys", None, _drop_none({"tier": tier, "limit": limit}) or None, admin=True)

    @staticmethod
    def _set_active_call(key_id: str, active: bool) -> _Call:
        verb = "activate" if active else "deactivate"
        return _Call("POST", f"/admin/keys/{_key_id(key_id)}/{verb}", admin=True)

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

    def _retry_delay(self, error: OmniMemoryError, attempt: int, resend_safe: bool = True) -> Optional[float]:
        """Seconds to wait before the next attempt, or ``None`` to raise ``error`` now.

        Retried: 429 and 503 (after ``Retry-After`` when given, else an exponential backoff),
        409 ``request_in_progress`` and connection failures (backoff). A wait longer than
        ``max_retry_wait`` is not waited: the error is raised at once. For a request that must
        not run twice (``resend_safe`` false: a key creation or rotation), a connection failure
        is retried only when the connection was never made.
        """
        if attempt >= self.max_retries:
            return None
        if not resend_safe and isinstance(error, APIConnectionError):
            if not isinstance(error.__cause__, (httpx.ConnectError, httpx.ConnectTimeout)):
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

    @staticmethod
    def _cut_short(e: httpx.TransportError, path: str) -> APIConnectionError:
        return APIConnectionError(
            f"{path} was cut short ({type(e).__name__}: {e}): what arrived is incomplete", code="connection_error"
        )

    @staticmethod
    def _stream_error(response: httpx.Response) -> OmniMemoryError:
        return error_from_response(response.status_code, response.headers, response.content)


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
        admin_key: the operator's key, sent as ``X-Admin-Key`` by the admin methods only
            (:meth:`create_api_key`, :meth:`rotate_api_key`, :meth:`list_keys`,
            :meth:`deactivate_key`, :meth:`activate_key`); defaults to
            ``$OMNIMEMORY_ADMIN_KEY``. Those methods send no Bearer key.
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
        admin_key: Optional[str] = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url,
            timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            retry_backoff=retry_backoff,
            headers=headers,
            admin_key=admin_key,
        )
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.Client(timeout=timeout)

    def _send(self, call: _Call) -> Tuple[Any, httpx.Headers]:
        headers = self._headers(call)
        attempt = 0
        while True:
            try:
                try:
                    response = self._client.request(
                        call.method, self.base_url + call.path, json=call.body, params=call.params, headers=headers
                    )
                except httpx.TransportError as e:
                    raise self._connection_error(e, call.path) from e
                return self._check(response), response.headers
            except OmniMemoryError as err:
                delay = self._retry_delay(err, attempt, call.resend_safe)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    def _open_stream(self, call: _Call) -> httpx.Response:
        """Sends ``call`` and returns its answer with the body not yet read (the caller closes
        it). Refusals are raised, and retried, as :meth:`_send` does; once the body has started,
        nothing is retried (part of it may have reached the caller)."""
        headers = self._headers(call)
        attempt = 0
        while True:
            try:
                request = self._client.build_request(
                    call.method, self.base_url + call.path, json=call.body, params=call.params, headers=headers
                )
                try:
                    response = self._client.send(request, stream=True)
                except httpx.TransportError as e:
                    raise self._connection_error(e, call.path) from e
                if response.status_code < 400:
                    return response
                try:
                    response.read()
                except httpx.TransportError as e:
                    raise self._connection_error(e, call.path) from e
                finally:
                    response.close()
                raise self._stream_error(response)
            except OmniMemoryError as err:
                delay = self._retry_delay(err, attempt, call.resend_safe)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    def _stream(self, call: _Call) -> Iterator[bytes]:
        response = self._open_stream(call)
        try:
            try:
                for chunk in response.iter_bytes():
                    yield chunk
            except httpx.TransportError as e:
                raise self._cut_short(e, call.path) from e
        finally:
            response.close()

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
        data, _ = self._send(_Call("GET", "/usage/quota"))
        return Quota.from_json(data)

    def health(self) -> Dict[str, Any]:
        """``GET /health`` (no key needed): ``{"status": "healthy", "storage": "ok", …}``.
        Raises :class:`ServiceUnavailableError` when the server answers 503."""
        data, _ = self._send(_Call("GET", "/health"))
        return dict(data)

    def usage_daily(self, days: Optional[int] = None) -> DailyUsage:
        """``GET /usage/daily``: the caller's requests and tokens per UTC day over the last
        ``days`` days (server default 30; ``/usage/stats``'s window, so ``totals`` equal its
        totals), and the metadata tag names in use."""
        data, _ = self._send(self._daily_call(days))
        return DailyUsage.from_json(data)

    def usage_recent(self, limit: Optional[int] = None) -> List[UsageRecord]:
        """``GET /usage/recent``: the caller's ``limit`` latest usage records (1 to 100, server
        default 20), newest first, with their tags."""
        data, _ = self._send(self._recent_call(limit))
        return [UsageRecord.from_json(r) for r in data.get("requests") or []]

    def iter_usage_export(
        self, since: Optional[TimeArg] = None, until: Optional[TimeArg] = None
    ) -> Iterator[UsageRecord]:
        """``GET /usage/export?format=jsonl``: every usage record of the caller's own key in
        ``[since, until)`` (both optional: a ``date``, an aware ``datetime``, or the server's
        strings ``2026-12-01`` / RFC 3339), oldest first, as :class:`UsageRecord` objects.

        Streamed: records are yielded as their lines arrive, so an export of any size holds one
        chunk at a time. The arguments are checked at the call, the request is sent when
        iteration starts; stopping early (``break``, then the iterator's ``close()``) closes the
        connection. A refusal raises as every method does (retried like them); an export cut
        short midway raises :class:`APIConnectionError` after the records that did arrive.
        """
        return _records(self._stream(self._export_call(since, until, "jsonl")))

    def iter_usage_export_bytes(
        self, since: Optional[TimeArg] = None, until: Optional[TimeArg] = None, format: str = "csv"
    ) -> Iterator[bytes]:
        """``GET /usage/export``: the export's body (``format`` ``"csv"`` or ``"jsonl"``) as the
        chunks of bytes it arrives in (e.g. to pass on in a streaming HTTP answer). See
        :meth:`iter_usage_export` for the range, the streaming and the errors."""
        return self._stream(self._export_call(since, until, format))

    def export_usage(
        self,
        file: ExportTarget,
        since: Optional[TimeArg] = None,
        until: Optional[TimeArg] = None,
        format: str = "csv",
    ) -> int:
        """``GET /usage/export``: writes the caller's usage records in ``[since, until)`` to
        ``file`` as CSV (RFC 4180, a header line, ``metadata`` as a JSON object; cells that start
        with ``= + - @`` get a leading ``'``) or JSON lines (``format="jsonl"``, values as
        stored), chunk by chunk as they arrive. Returns the number of bytes written.

        ``file`` is a path or a file object (binary, or text: the export is UTF-8). A path
        gets the export whole or not at all: it is written as ``<path>.part`` and renamed when
        the export is complete. An export cut short raises :class:`APIConnectionError`
        (a file object then holds what arrived).
        """
        sink = _Sink(file)
        ok = False
        try:
            for chunk in self.iter_usage_export_bytes(since, until, format):
                sink.data(chunk)
            sink.data(b"", final=True)
            ok = True
        finally:
            sink.done(ok)
        return sink.written

    # -- operator endpoints (the admin key) -------------------------------------------------

    def create_api_key(
        self,
        user_id: str,
        tier: Optional[str] = None,
        *,
        email: Optional[str] = None,
        company: Optional[str] = None,
        expires_in_days: Optional[int] = None,
    ) -> CreatedKey:
        """``POST /admin/api-key`` (admin key): a new key for ``user_id`` (``tier`` ``free``,
        the server's default, ``pro`` or ``enterprise``). ``result.api_key`` is the secret,
        shown only in this answer. Not retried after a connection failure once sent (a retry
        could create a second key)."""
        data, _ = self._send(self._create_key_call(user_id, tier, email, company, expires_in_days))
        return CreatedKey.from_json(data)

    def rotate_api_key(self, key_id: str, grace_hours: Optional[int] = None) -> RotatedKey:
        """``POST /admin/api-key/{key_id}/rotate`` (admin key): gives the key a new secret,
        ``result.api_key``, shown only in this answer. The key keeps its id, user, tier, limits,
        quota and usage history. The old secret keeps working for ``grace_hours`` (server
        default 24, at most 8,760; ``0`` refuses it at once, for a leaked key), then is refused
        with 401 ``api_key_rotated``. ``key_id`` is the key's public id (``om_pro_AbCdEfGh``); a
        full key is cut to its id, so the secret never goes into the URL. Not retried after a
        connection failure once sent (a retry would rotate again)."""
        data, _ = self._send(self._rotate_call(key_id, grace_hours))
        return RotatedKey.from_json(data)

    def list_keys(self, tier: Optional[str] = None, limit: Optional[int] = None) -> KeyList:
        """``GET /admin/keys`` (admin key): every key, newest first (at most ``limit``, server
        default 1,000), with its tier, status, this month's use against its limit and last use."""
        data, _ = self._send(self._list_keys_call(tier, limit))
        return KeyList.from_json(data)

    def deactivate_key(self, key_id: str) -> KeyInfo:
        """``POST /admin/keys/{key_id}/deactivate`` (admin key): the key is refused (401
        ``api_key_deactivated``) from its next request on. Returns the key as :meth:`list_keys`
        shows it; an unknown id raises :class:`NotFoundError` (``key_not_found``)."""
        data, _ = self._send(self._set_active_call(key_id, False))
        return KeyInfo.from_json(data)

    def activate_key(self, key_id: str) -> KeyInfo:
        """``POST /admin/keys/{key_id}/activate`` (admin key): accepts a deactivated key again."""
        data, _ = self._send(self._set_active_call(key_id, True))
        return KeyInfo.from_json(data)

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

    ``http_client`` takes an ``httpx.AsyncClient`` of your own (not closed by :meth:`close`);
    ``admin_key`` is the operator's key for the admin methods, as for :class:`OmniMemory`.
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
        admin_key: Optional[str] = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url,
            timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            retry_backoff=retry_backoff,
            headers=headers,
            admin_key=admin_key,
        )
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)
        self._blocking: Optional[OmniMemory] = None

    async def _send(self, call: _Call) -> Tuple[Any, httpx.Headers]:
        headers = self._headers(call)
        attempt = 0
        while True:
            try:
                try:
                    response = await self._client.request(
                        call.method, self.base_url + call.path, json=call.body, params=call.params, headers=headers
                    )
                except httpx.TransportError as e:
                    raise self._connection_error(e, call.path) from e
                return self._check(response), response.headers
            except OmniMemoryError as err:
                delay = self._retry_delay(err, attempt, call.resend_safe)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    async def _open_stream(self, call: _Call) -> httpx.Response:
        """See :meth:`OmniMemory._open_stream`."""
        headers = self._headers(call)
        attempt = 0
        while True:
            try:
                request = self._client.build_request(
                    call.method, self.base_url + call.path, json=call.body, params=call.params, headers=headers
                )
                try:
                    response = await self._client.send(request, stream=True)
                except httpx.TransportError as e:
                    raise self._connection_error(e, call.path) from e
                if response.status_code < 400:
                    return response
                try:
                    await response.aread()
                except httpx.TransportError as e:
                    raise self._connection_error(e, call.path) from e
                finally:
                    await response.aclose()
                raise self._stream_error(response)
            except OmniMemoryError as err:
                delay = self._retry_delay(err, attempt, call.resend_safe)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    async def _stream(self, call: _Call) -> AsyncIterator[bytes]:
        response = await self._open_stream(call)
        try:
            try:
                async for chunk in response.aiter_bytes():
                    yield chunk
            except httpx.TransportError as e:
                raise self._cut_short(e, call.path) from e
        finally:
            await response.aclose()

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
        data, _ = await self._send(_Call("GET", "/usage/quota"))
        return Quota.from_json(data)

    async def health(self) -> Dict[str, Any]:
        """``GET /health``; see :meth:`OmniMemory.health`."""
        data, _ = await self._send(_Call("GET", "/health"))
        return dict(data)

    async def usage_daily(self, days: Optional[int] = None) -> DailyUsage:
        """``GET /usage/daily``; see :meth:`OmniMemory.usage_daily`."""
        data, _ = await self._send(self._daily_call(days))
        return DailyUsage.from_json(data)

    async def usage_recent(self, limit: Optional[int] = None) -> List[UsageRecord]:
        """``GET /usage/recent``; see :meth:`OmniMemory.usage_recent`."""
        data, _ = await self._send(self._recent_call(limit))
        return [UsageRecord.from_json(r) for r in data.get("requests") or []]

    def iter_usage_export(
        self, since: Optional[TimeArg] = None, until: Optional[TimeArg] = None
    ) -> AsyncIterator[UsageRecord]:
        """``GET /usage/export?format=jsonl`` as an async iterator of :class:`UsageRecord`
        (``async for record in om.iter_usage_export(...)``); see
        :meth:`OmniMemory.iter_usage_export`. To stop early and close the connection at once,
        iterate inside ``contextlib.aclosing(...)`` (Python 3.10+) or call ``aclose()``."""
        return _arecords(self._stream(self._export_call(since, until, "jsonl")))

    def iter_usage_export_bytes(
        self, since: Optional[TimeArg] = None, until: Optional[TimeArg] = None, format: str = "csv"
    ) -> AsyncIterator[bytes]:
        """``GET /usage/export``'s body as an async iterator of byte chunks; see
        :meth:`OmniMemory.iter_usage_export_bytes`."""
        return self._stream(self._export_call(since, until, format))

    async def export_usage(
        self,
        file: ExportTarget,
        since: Optional[TimeArg] = None,
        until: Optional[TimeArg] = None,
        format: str = "csv",
    ) -> int:
        """``GET /usage/export`` written to ``file``; see :meth:`OmniMemory.export_usage`. A file
        object whose ``write`` is a coroutine (``aiofiles``) is awaited."""
        sink = _Sink(file)
        ok = False
        try:
            async for chunk in self.iter_usage_export_bytes(since, until, format):
                written = sink.data(chunk)
                if inspect.isawaitable(written):
                    await written
            written = sink.data(b"", final=True)
            if inspect.isawaitable(written):
                await written
            ok = True
        finally:
            sink.done(ok)
        return sink.written

    async def create_api_key(
        self,
        user_id: str,
        tier: Optional[str] = None,
        *,
        email: Optional[str] = None,
        company: Optional[str] = None,
        expires_in_days: Optional[int] = None,
    ) -> CreatedKey:
        """``POST /admin/api-key``; see :meth:`OmniMemory.create_api_key`."""
        data, _ = await self._send(self._create_key_call(user_id, tier, email, company, expires_in_days))
        return CreatedKey.from_json(data)

    async def rotate_api_key(self, key_id: str, grace_hours: Optional[int] = None) -> RotatedKey:
        """``POST /admin/api-key/{key_id}/rotate``; see :meth:`OmniMemory.rotate_api_key`."""
        data, _ = await self._send(self._rotate_call(key_id, grace_hours))
        return RotatedKey.from_json(data)

    async def list_keys(self, tier: Optional[str] = None, limit: Optional[int] = None) -> KeyList:
        """``GET /admin/keys``; see :meth:`OmniMemory.list_keys`."""
        data, _ = await self._send(self._list_keys_call(tier, limit))
        return KeyList.from_json(data)

    async def deactivate_key(self, key_id: str) -> KeyInfo:
        """``POST /admin/keys/{key_id}/deactivate``; see :meth:`OmniMemory.deactivate_key`."""
        data, _ = await self._send(self._set_active_call(key_id, False))
        return KeyInfo.from_json(data)

    async def activate_key(self, key_id: str) -> KeyInfo:
        """``POST /admin/keys/{key_id}/activate``; see :meth:`OmniMemory.activate_key`."""
        data, _ = await self._send(self._set_active_call(key_id, True))
        return KeyInfo.from_json(data)

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
                admin_key=self.admin_key,
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
