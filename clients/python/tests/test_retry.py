"""Automatic retry against the real server's rate limit: Retry-After is waited, and every
attempt of one compress call carries the same Idempotency-Key (charged once)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import List, Tuple

import httpx
import pytest
from support import BRIDGE, EIFFEL

from omnimemory import APIConnectionError, AsyncOmniMemory, OmniMemory, RateLimitError


class Recorder:
    """Sees every attempt through httpx event hooks (the requests still go to the server)."""

    def __init__(self) -> None:
        self.sent: List[Tuple[float, str, str]] = []  # (time, path, Idempotency-Key)
        self.answers: List[Tuple[float, int, str]] = []  # (time, status, Retry-After)

    def on_request(self, request: httpx.Request) -> None:
        self.sent.append((time.monotonic(), request.url.path, request.headers.get("idempotency-key", "")))

    def on_response(self, response: httpx.Response) -> None:
        self.answers.append((time.monotonic(), response.status_code, response.headers.get("retry-after", "")))

    async def aon_request(self, request: httpx.Request) -> None:
        self.on_request(request)

    async def aon_response(self, response: httpx.Response) -> None:
        self.on_response(response)

    def client(self) -> httpx.Client:
        return httpx.Client(timeout=10, event_hooks={"request": [self.on_request], "response": [self.on_response]})

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=10, event_hooks={"request": [self.aon_request], "response": [self.aon_response]}
        )


def test_retry_waits_retry_after_and_reuses_the_idempotency_key(base_url: str, free_key: str) -> None:
    rec = Recorder()
    with rec.client() as http, OmniMemory(api_key=free_key, base_url=base_url, max_retries=2, http_client=http) as om:
        first = om.compress(EIFFEL)
        second = om.compress(BRIDGE)  # at once: 429 (free: 1 request/s), then a retry after Retry-After
        stats = om.usage_stats()
    statuses = [s for _, s, _ in rec.answers]
    assert statuses[:3] == [200, 429, 200], statuses
    keys = [k for _, path, k in rec.sent if path == "/compress"]
    assert len(keys) == 3
    assert keys[0] and keys[1] and keys[0] != keys[1], "one generated key per call"
    assert keys[1] == keys[2], "the retry reuses its call's key"
    retry_after = int(rec.answers[1][2])
    assert retry_after >= 1
    assert rec.sent[2][0] - rec.answers[1][0] >= retry_after - 0.05, "waited Retry-After"
    assert not first.replayed and not second.replayed
    assert "Golden Gate" in second.compressed_text or second.compressed_text in BRIDGE
    # Charged once per call, the refused attempt not at all.
    assert stats.stats.total_compressions == 2
    assert stats.stats.total_original_tokens == first.original_tokens + second.original_tokens


def test_a_caller_idempotency_key_is_kept(base_url: str, free_key: str) -> None:
    rec = Recorder()
    with rec.client() as http, OmniMemory(api_key=free_key, base_url=base_url, max_retries=1, http_client=http) as om:
        om.count_tokens("use up the request bucket")
        r = om.compress(EIFFEL, idempotency_key="my-key-1")
        again = om.compress(EIFFEL, idempotency_key="my-key-1")  # a replay is neither charged nor limited
    keys = [k for _, path, k in rec.sent if path == "/compress"]
    assert keys == ["my-key-1"] * 3
    assert [s for _, s, _ in rec.answers] == [200, 429, 200, 200]
    assert again.replayed and again.raw == r.raw


def test_no_wait_longer_than_max_retry_wait(base_url: str, free_key: str) -> None:
    rec = Recorder()
    with (
        rec.client() as http,
        OmniMemory(api_key=free_key, base_url=base_url, max_retries=5, max_retry_wait=0.5, http_client=http) as om,
    ):
        om.count_tokens("first")
        started = time.monotonic()
        with pytest.raises(RateLimitError) as e:
            om.count_tokens("second")  # Retry-After: 1 > 0.5: raised at once
    assert time.monotonic() - started < 0.5
    assert e.value.retry_after == 1
    assert len(rec.sent) == 2


def test_retries_off_by_default(base_url: str, free_key: str) -> None:
    rec = Recorder()
    with rec.client() as http, OmniMemory(api_key=free_key, base_url=base_url, http_client=http) as om:
        om.compress(EIFFEL)
        with pytest.raises(RateLimitError):
            om.compress(EIFFEL)
    assert len(rec.sent) == 2
    assert all(k == "" for _, _, k in rec.sent), "no Idempotency-Key is invented when not retrying"


def test_connection_failures_are_retried_with_backoff(pro_key: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rec = Recorder()
    with (
        rec.client() as http,
        OmniMemory(
            api_key=pro_key, base_url=f"http://127.0.0.1:{port}", max_retries=2, retry_backoff=0.05, http_client=http
        ) as om,
    ):
        with pytest.raises(APIConnectionError):
            om.compress(EIFFEL)
    keys = [k for _, _, k in rec.sent]
    assert len(keys) == 3 and len(set(keys)) == 1 and keys[0]


def test_async_retry(base_url: str, free_key: str) -> None:
    async def run() -> Recorder:
        rec = Recorder()
        async with rec.async_client() as http:
            async with AsyncOmniMemory(api_key=free_key, base_url=base_url, max_retries=1, http_client=http) as om:
                await om.compress(EIFFEL)
                await om.compress(BRIDGE)
        return rec

    rec = asyncio.run(run())
    assert [s for _, s, _ in rec.answers] == [200, 429, 200]
    keys = [k for _, _, k in rec.sent]
    assert keys[1] == keys[2] != keys[0]
