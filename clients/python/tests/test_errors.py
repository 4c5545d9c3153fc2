"""Error mapping: each refusal of the real server becomes the right exception, with status,
code, detail and (for 429) retry_after."""

from __future__ import annotations

import socket

import pytest
from support import EIFFEL, Server

from omnimemory import (
    APIConnectionError,
    AuthenticationError,
    InvalidRequestError,
    OmniMemory,
    OmniMemoryError,
    QuotaExceededError,
    RateLimitError,
)


def test_401_invalid_key(base_url: str) -> None:
    bogus = "om_pro_" + "A" * 43
    with OmniMemory(api_key=bogus, base_url=base_url) as om:
        for call in (lambda: om.compress(EIFFEL), om.usage_quota, lambda: om.count_tokens("x")):
            with pytest.raises(AuthenticationError) as e:
                call()
            err = e.value
            assert err.status == 401 and err.code == "invalid_api_key"
            assert err.detail and isinstance(err.detail, str)
            assert err.headers["www-authenticate"].startswith("Bearer")
            assert isinstance(err, OmniMemoryError)
            assert "invalid_api_key" in str(err)


def test_401_missing_key(base_url: str) -> None:
    with OmniMemory(api_key="", base_url=base_url) as om:
        with pytest.raises(AuthenticationError) as e:
            om.compress(EIFFEL)
    assert e.value.status == 401 and e.value.code == "missing_api_key"


def test_api_key_from_environment(base_url: str, pro_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIMEMORY_API_KEY", pro_key)
    monkeypatch.setenv("OMNIMEMORY_BASE_URL", base_url)
    with OmniMemory() as om:
        assert om.usage_quota().tier == "pro"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"target_compression": 1.5}, "target_compression"),
        ({"target_tokens": 0}, "target_tokens"),
        ({"granularity": "paragraph"}, "granularity"),
        ({"model_id": "x" * 200}, "model_id"),
        ({"metadata": {"": "empty tag name"}}, "metadata"),
    ],
)
def test_422_bad_field(base_url: str, pro_key: str, kwargs: dict, field: str) -> None:
    with OmniMemory(api_key=pro_key, base_url=base_url) as om:
        with pytest.raises(InvalidRequestError) as e:
            om.compress(EIFFEL, **kwargs)
        # A refused request is not charged.
        assert om.usage_quota().usage.current_usage == 0
    assert e.value.status == 422 and e.value.code == "invalid_request"
    assert field in e.value.detail


def test_422_bad_query_parameter(base_url: str, pro_key: str) -> None:
    with OmniMemory(api_key=pro_key, base_url=base_url) as om:
        with pytest.raises(InvalidRequestError) as e:
            om.usage_stats(days=0)
    assert e.value.status == 422 and e.value.code == "invalid_request" and "days" in e.value.detail


def test_429_request_rate_with_retry_after(base_url: str, free_key: str) -> None:
    # free: 1 request/s, burst 1; retrying is off by default, so the 429 is raised at once.
    with OmniMemory(api_key=free_key, base_url=base_url) as om:
        om.count_tokens("first")
        with pytest.raises(RateLimitError) as e:
            om.count_tokens("second")
    err = e.value
    assert err.status == 429 and err.code == "request_rate_limited"
    assert err.retry_after is not None and err.retry_after >= 1
    assert err.detail == "Request rate limit exceeded for tier 'free'"
    assert err.headers["x-ratelimit-limit"] == "1" and err.headers["x-ratelimit-remaining"] == "0"


def test_402_quota_exceeded(server: Server) -> None:
    # A free key with a monthly quota of its own of 20 tokens (set through the admin CLI).
    key = server.create_key_cli("free", "--monthly-tokens", "20")
    with OmniMemory(api_key=key, base_url=server.base_url) as om:
        with pytest.raises(QuotaExceededError) as e:
            om.compress(EIFFEL)
        quota = om.usage_quota()
    err = e.value
    assert err.status == 402 and err.code == "quota_exceeded"
    assert "quota" in err.detail.lower()
    assert err.quota_reset and err.quota_reset.endswith("Z")
    assert quota.usage.monthly_limit == 20 and quota.usage.current_usage == 0


def test_connection_error(pro_key: str) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with OmniMemory(api_key=pro_key, base_url=f"http://127.0.0.1:{port}", timeout=5) as om:
        with pytest.raises(APIConnectionError) as e:
            om.health()
    assert e.value.status is None and e.value.code == "connection_error"
