"""The usage endpoints against the real server: the streamed export (records, CSV and JSON lines
files, ranges, refusals), /usage/daily and /usage/recent, blocking and asyncio."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import socket
import threading
from pathlib import Path
from typing import Iterator, List, Tuple

import httpx
import pytest
from support import BRIDGE, EIFFEL, QUERY, Server

from omnimemory import (
    APIConnectionError,
    AsyncOmniMemory,
    AuthenticationError,
    CompressionResult,
    DailyUsage,
    InvalidRequestError,
    OmniMemory,
    RateLimitError,
    UsageRecord,
)

# Tags a customer may well send: a comma and quotes (CSV quoting), a line separator that
# str.splitlines() would split a JSON line on, and text a spreadsheet would run as a formula.
ODD_TAGS = {"team": 'search, "core"', "note": "line\u2028separator\u0085next", "formula": "=SUM(A1:A9)"}


def _usage(om: OmniMemory) -> List[CompressionResult]:
    """Four compressions with different models, tags, tool and session ids."""
    return [
        om.compress(EIFFEL, metadata={"team": "search"}),
        om.compress(BRIDGE, model_id="gpt-4o", metadata=ODD_TAGS, tool_id="=cmd|' /C calc'!A0"),
        om.compress(EIFFEL, query=QUERY, target_compression=0.5, session_id="s-1"),
        om.compress(BRIDGE, query="bridge colour", metadata={"team": "ads"}, tool_id="tool-1"),
    ]


def test_export_records_equal_usage_stats(server: Server, tmp_path: Path) -> None:
    key = server.create_key("enterprise")  # 100 requests/s: no rate limit in the way
    with OmniMemory(api_key=key, base_url=server.base_url) as om:
        results = _usage(om)
        records = list(om.iter_usage_export())
        stats = om.usage_stats()
        quota = om.usage_quota()
        csv_bytes = om.export_usage(tmp_path / "usage.csv")
        jsonl = io.BytesIO()
        jsonl_bytes = om.export_usage(jsonl, format="jsonl")
        daily = om.usage_daily(days=1)
        recent = om.usage_recent(limit=3)

    # Every record, oldest first, each the request the caller made and was answered for.
    assert all(isinstance(r, UsageRecord) for r in records)
    assert [r.request_id for r in records] == [r.request_id for r in results]
    assert [r.timestamp for r in records] == sorted(r.timestamp for r in records)
    for rec, res in zip(records, results):
        assert (rec.original_tokens, rec.compressed_tokens) == (res.original_tokens, res.compressed_tokens)
        assert rec.tokens_saved == res.tokens_saved and rec.model_id == res.model_id
        assert rec.operation == "compress" and rec.api_key == quota.key_id and rec.user_id == quota.user_id
    # Tags and ids come back exactly as sent, whatever characters they hold.
    assert records[1].metadata == ODD_TAGS and records[1].tool_id == "=cmd|' /C calc'!A0"
    assert records[0].metadata == {"team": "search"} and records[2].metadata == {}
    assert records[2].session_id == "s-1" and records[2].tool_id is None

    # The export's totals are /usage/stats's for the same records.
    t = stats.stats
    assert len(records) == t.total_compressions == 4
    assert sum(r.original_tokens for r in records) == t.total_original_tokens == quota.usage.current_usage
    assert sum(r.compressed_tokens for r in records) == t.total_compressed_tokens
    assert sum(r.tokens_saved for r in records) == t.total_tokens_saved
    by_model = {m.model_id: m.count for m in t.by_model}
    assert by_model == {"gpt-4": 3, "gpt-4o": 1}
    assert by_model == {m: sum(r.model_id == m for r in records) for m in by_model}

    # The CSV file: a header, one row per record, the same figures; tags as a JSON object; a
    # customer's cell that a spreadsheet would run as a formula is shown as text instead.
    path = tmp_path / "usage.csv"
    assert path.stat().st_size == csv_bytes and not (tmp_path / "usage.csv.part").exists()
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["request_id"] for r in rows] == [r.request_id for r in records]
    assert sum(int(r["original_tokens"]) for r in rows) == t.total_original_tokens
    assert sum(int(r["compressed_tokens"]) for r in rows) == t.total_compressed_tokens
    assert json.loads(rows[1]["metadata"]) == ODD_TAGS
    assert rows[1]["tool_id"] == "'=cmd|' /C calc'!A0"
    assert rows[3]["tool_id"] == "tool-1"

    # The JSON lines file holds the same records, values as stored.
    data = jsonl.getvalue()
    assert len(data) == jsonl_bytes
    assert [json.loads(line) for line in data.split(b"\n") if line] == [r.raw for r in records]

    # /usage/daily and /usage/recent tell the same story.
    assert isinstance(daily, DailyUsage) and daily.days == 1
    assert daily.totals.requests == 4 and daily.totals.original_tokens == t.total_original_tokens
    assert daily.totals.tokens_saved == t.total_tokens_saved
    assert sum(d.requests for d in daily.daily) == 4
    assert {tag.name: tag.count for tag in daily.tags}["team"] == 3
    assert [r.request_id for r in recent] == [r.request_id for r in reversed(records[1:])]  # newest first
    assert recent[2].metadata == ODD_TAGS and recent[2].api_key is None


def test_export_range(server: Server, tmp_path: Path) -> None:
    key = server.create_key("enterprise")
    with OmniMemory(api_key=key, base_url=server.base_url) as om:
        _usage(om)
        every = list(om.iter_usage_export())
        third = every[2].timestamp  # RFC 3339, as the server wrote it
        from_third = list(om.iter_usage_export(since=third))
        before_third = list(om.iter_usage_export(until=third))
        tomorrow = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)
        from_tomorrow = list(om.iter_usage_export(since=tomorrow))
        an_hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        recent = list(om.iter_usage_export(since=an_hour_ago, until=tomorrow))
        since_stats = om.usage_stats(days=1)

        # Refusals come before anything is written: a path gets no file.
        target = tmp_path / "never.csv"
        with pytest.raises(InvalidRequestError) as backwards:
            om.export_usage(target, since=tomorrow, until=third)
        with pytest.raises(InvalidRequestError) as bad_format:
            om.export_usage(io.BytesIO(), format="xlsx")
        with pytest.raises(InvalidRequestError) as bad_date:
            list(om.iter_usage_export(since="last tuesday"))
        with pytest.raises(ValueError):
            om.iter_usage_export(since=dt.datetime(2026, 12, 1))  # no time zone: refused at the call
    assert [r.request_id for r in from_third] == [r.request_id for r in every[2:]]  # since: inclusive
    assert [r.request_id for r in before_third] == [r.request_id for r in every[:2]]  # until: exclusive
    assert from_tomorrow == []
    assert [r.request_id for r in recent] == [r.request_id for r in every]
    assert sum(r.original_tokens for r in recent) == since_stats.stats.total_original_tokens
    assert backwards.value.status == 422 and backwards.value.code == "invalid_request"
    assert "since" in backwards.value.detail
    assert not target.exists() and not (tmp_path / "never.csv.part").exists()
    assert "format" in bad_format.value.detail and "since" in bad_date.value.detail


class CountingTransport(httpx.BaseTransport):
    """The real network transport, counting the body bytes the client has pulled so far."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.pulled = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        outer = self

        class Counted(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for chunk in response.stream:  # type: ignore[union-attr]
                    outer.pulled += len(chunk)
                    yield chunk

            def close(self) -> None:
                response.close()

        return httpx.Response(
            response.status_code, headers=response.headers, stream=Counted(), extensions=response.extensions
        )

    def close(self) -> None:
        self.inner.close()


class Writes(io.RawIOBase):
    """A binary file that keeps the size of each write."""

    def __init__(self) -> None:
        self.sizes: List[int] = []
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.sizes.append(len(b))
        self.data += b
        return len(b)


def test_export_is_streamed(server: Server) -> None:
    """A large export reaches the caller record by record: the first record is in hand before
    the rest of the body has been downloaded, and a file receives it chunk by chunk."""
    key = server.create_key("enterprise")
    # 32 tags of 480 characters: about 16 KB a record, so 12 records are some 190 KB, three
    # of the server's 64 KiB chunks.
    tags = {f"tag{i:02d}": chr(ord("a") + i % 26) * 480 for i in range(32)}
    transport = CountingTransport()
    with httpx.Client(transport=transport, timeout=30) as http:
        with OmniMemory(api_key=key, base_url=server.base_url, http_client=http) as om:
            for _ in range(12):
                om.compress(EIFFEL, metadata=tags)
            stats = om.usage_stats()
            records = om.iter_usage_export()
            first = next(records)
            pulled_at_first = transport.pulled
            rest = list(records)
            total = transport.pulled
            out = Writes()
            written = om.export_usage(out, format="jsonl")

            # Stopping early closes the answer; the client goes on working.
            early = om.iter_usage_export()
            next(early)
            early.close()
            assert om.usage_quota().usage.current_usage == stats.stats.total_original_tokens
    assert first.metadata == tags and len(rest) == 11
    assert 1 + len(rest) == stats.stats.total_compressions
    assert total > 150_000
    assert pulled_at_first < total / 2, (pulled_at_first, total)
    assert written == len(out.data) > 150_000
    assert len(out.sizes) >= 3 and max(out.sizes) < written / 2, out.sizes
    assert [json.loads(line)["request_id"] for line in bytes(out.data).splitlines()] == [
        r.request_id for r in [first, *rest]
    ]


def test_export_refusals_and_retry(server: Server) -> None:
    with OmniMemory(api_key="om_pro_" + "C" * 43, base_url=server.base_url) as bad:
        with pytest.raises(AuthenticationError) as e:
            list(bad.iter_usage_export())
    assert e.value.status == 401 and e.value.code == "invalid_api_key"

    # An export takes from the request bucket (free: 1 a second): the second at once is 429,
    # and with retries on it waits Retry-After and arrives whole.
    key = server.create_key("free")
    with OmniMemory(api_key=key, base_url=server.base_url) as om:
        om.compress(EIFFEL)
        with pytest.raises(RateLimitError) as limited:
            om.export_usage(io.BytesIO())
    assert limited.value.code == "request_rate_limited" and limited.value.retry_after
    with OmniMemory(api_key=key, base_url=server.base_url, max_retries=2) as om:
        om.count_tokens("empties the bucket")
        out = io.StringIO(newline="")  # a text file gets text
        om.export_usage(out)
        rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert rows[0][:3] == ["timestamp", "request_id", "api_key"] and len(rows) == 2


def test_async_usage_endpoints(server: Server) -> None:
    key = server.create_key("enterprise")

    async def run() -> Tuple[List[UsageRecord], bytes, List[UsageRecord], DailyUsage]:
        async with AsyncOmniMemory(api_key=key, base_url=server.base_url) as om:
            await om.compress(EIFFEL, metadata=ODD_TAGS)
            await om.compress(BRIDGE, model_id="gpt-4o")
            records = [r async for r in om.iter_usage_export()]
            buf = io.BytesIO()
            n = await om.export_usage(buf, format="jsonl")
            assert n == len(buf.getvalue())
            chunks = [c async for c in om.iter_usage_export_bytes(format="jsonl")]
            assert b"".join(chunks) == buf.getvalue()
            return records, buf.getvalue(), await om.usage_recent(), await om.usage_daily(days=7)

    records, jsonl, recent, daily = asyncio.run(run())
    with OmniMemory(api_key=key, base_url=server.base_url) as om:
        assert [r.raw for r in om.iter_usage_export()] == [r.raw for r in records]
        stats = om.usage_stats(days=7)
    assert len(records) == 2 and records[0].metadata == ODD_TAGS
    assert [json.loads(line) for line in jsonl.splitlines()] == [r.raw for r in records]
    assert [r.request_id for r in recent] == [r.request_id for r in reversed(records)]
    assert daily.totals.original_tokens == stats.stats.total_original_tokens == sum(r.original_tokens for r in records)


def _cut_short_server() -> Tuple[socket.socket, str]:
    """Answers every request as the server does when storage fails after the first chunk: a
    200 with one chunk (a whole record and half of the next), then the connection closes
    without the final chunk. (The real server cannot be made to fail midway from here.)"""
    line = json.dumps({"request_id": "r1", "original_tokens": 7, "metadata": {}}).encode() + b"\n"
    body = line + b'{"request_id": "r2", "orig'
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(body)
        + body
        + b"\r\n"
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return sock, "http://127.0.0.1:%d" % sock.getsockname()[1]


def test_an_export_cut_short_is_an_error(tmp_path: Path) -> None:
    sock, url = _cut_short_server()
    try:
        with OmniMemory(api_key="om_pro_x", base_url=url, max_retries=2, retry_backoff=0.01) as om:
            got: List[UsageRecord] = []
            with pytest.raises(APIConnectionError) as e:
                for record in om.iter_usage_export():
                    got.append(record)
            with pytest.raises(APIConnectionError):
                om.export_usage(tmp_path / "cut.csv")
    finally:
        sock.close()
    assert [r.request_id for r in got] == ["r1"]  # what arrived whole, then the error
    assert "cut short" in str(e.value)
    assert list(tmp_path.iterdir()) == []  # no file that looks complete, no .part left
