"""The asyncio client against the real server."""

from __future__ import annotations

import asyncio

import pytest
from support import BRIDGE, EIFFEL, QUERY, sentences

from omnimemory import AsyncOmniMemory, AuthenticationError, InvalidRequestError, RateLimitError


def test_async_endpoints(base_url: str, pro_key: str) -> None:
    async def run() -> None:
        async with AsyncOmniMemory(api_key=pro_key, base_url=base_url) as om:
            assert (await om.health())["status"] == "healthy"
            assert (await om.health_check())["status"] == "healthy"
            r = await om.compress(EIFFEL, query=QUERY, target_compression=0.5, metadata={"app": "async"})
            assert 0 < r.compressed_tokens <= r.original_tokens // 2
            assert "330 metres" in r.compressed_text
            c = await om.count_tokens("hello world", model_id="gpt-4o")
            assert c.token_count == 2
            v = await om.validate(EIFFEL, r.compressed_text, query=QUERY)
            assert v.details is not None and v.details["query_coverage"] > 0
            stats = await om.usage_stats(group_by="app")
            assert stats.stats.total_compressions == 1
            assert stats.groups is not None and stats.groups[0]["value"] == "async"
            quota = await om.usage_quota()
            assert quota.usage.current_usage == r.original_tokens

    asyncio.run(run())


def test_async_concurrent_compressions(base_url: str, pro_key: str) -> None:
    texts = [EIFFEL, BRIDGE] * 4  # 8 at once: within pro's burst of 10

    async def run() -> None:
        async with AsyncOmniMemory(api_key=pro_key, base_url=base_url) as om:
            results = await asyncio.gather(*(om.compress(t, target_compression=0.5) for t in texts))
            stats = await om.usage_stats()
        for r, t in zip(results, texts):
            assert r.compressed_text and all(s in t for s in sentences(r.compressed_text))
        assert stats.stats.total_compressions == len(texts)
        assert stats.stats.total_original_tokens == sum(r.original_tokens for r in results)

    asyncio.run(run())


def test_async_errors(base_url: str, free_key: str) -> None:
    async def run() -> None:
        async with AsyncOmniMemory(api_key="om_free_" + "B" * 43, base_url=base_url) as bad:
            with pytest.raises(AuthenticationError) as e:
                await bad.compress(EIFFEL)
            assert e.value.code == "invalid_api_key"
        async with AsyncOmniMemory(api_key=free_key, base_url=base_url) as om:
            with pytest.raises(InvalidRequestError) as e2:
                await om.compress(EIFFEL, target_compression=-0.1)
            assert e2.value.status == 422
            await om.count_tokens("uses the only request of this second")
            with pytest.raises(RateLimitError) as e3:
                await om.count_tokens("too soon")
            assert e3.value.retry_after and e3.value.retry_after >= 1

    asyncio.run(run())
