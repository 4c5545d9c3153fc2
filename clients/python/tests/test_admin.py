"""The operator's methods against the real server: key creation, rotation (the new secret works,
the old one is refused with `api_key_rotated` once its grace is over), listing, deactivation and
activation, their refusals, and that a rotation is never sent twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import socket
import threading
from typing import List, Optional, Tuple

import httpx
import pytest
from support import EIFFEL, Server

from omnimemory import (
    APIConnectionError,
    AsyncOmniMemory,
    AuthenticationError,
    CreatedKey,
    InvalidRequestError,
    KeyInfo,
    NotFoundError,
    OmniMemory,
    PermissionDeniedError,
    RotatedKey,
)


def _time(s: str) -> dt.datetime:
    """An RFC 3339 UTC time as the server writes it (up to nanoseconds; Python 3.9 reads none)."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", s)
    assert m, s
    frac = (m.group(2) or "") + "000000"
    return dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=dt.timezone.utc) + dt.timedelta(
        microseconds=int(frac[:6])
    )


def admin(server: Server, http_client: Optional[httpx.Client] = None) -> OmniMemory:
    """The operator's client: the admin key only."""
    return OmniMemory(admin_key=server.admin_key, base_url=server.base_url, http_client=http_client)


def test_create_and_rotate_with_zero_grace(server: Server) -> None:
    with admin(server) as op:
        created = op.create_api_key("py-rotate-0", "pro", email="ops@example.com", company="Example")
        assert isinstance(created, CreatedKey)
        assert created.api_key.startswith(created.key_id) and created.key_id.startswith("om_pro_")
        assert created.user_id == "py-rotate-0" and created.tier == "pro" and created.email == "ops@example.com"
        assert created.api_key not in repr(created)  # the secret does not reach a log by accident
        with OmniMemory(api_key=created.api_key, base_url=server.base_url) as customer:
            used = customer.compress(EIFFEL)

        rotated = op.rotate_api_key(created.key_id, grace_hours=0)

    assert isinstance(rotated, RotatedKey)
    assert rotated.api_key != created.api_key and rotated.api_key.startswith(created.key_id)
    assert rotated.key_id == created.key_id and rotated.user_id == "py-rotate-0" and rotated.tier == "pro"
    assert rotated.grace_hours == 0 and rotated.previous_key_valid_until == rotated.rotated_at
    assert rotated.api_key not in repr(rotated)

    # The new secret is the same key: same id, same usage history and quota.
    with OmniMemory(api_key=rotated.api_key, base_url=server.base_url) as new:
        quota = new.usage_quota()
        assert quota.key_id == created.key_id and quota.tier == "pro"
        assert quota.usage.current_usage == used.original_tokens
        assert new.usage_stats().stats.total_compressions == 1
        assert new.compress(EIFFEL).original_tokens == used.original_tokens
    # The old one is refused at once, on every endpoint, with its own code.
    with OmniMemory(api_key=created.api_key, base_url=server.base_url) as old:
        for call in (lambda: old.compress(EIFFEL), old.usage_quota, lambda: list(old.iter_usage_export())):
            with pytest.raises(AuthenticationError) as e:
                call()
            assert e.value.status == 401 and e.value.code == "api_key_rotated"
            assert "rotated" in e.value.detail


def test_rotate_with_grace_then_again(server: Server) -> None:
    sent: List[str] = []
    with httpx.Client(timeout=30, event_hooks={"request": [lambda r: sent.append(r.url.path)]}) as http:
        with admin(server, http_client=http) as op:
            first = op.create_api_key("py-rotate-grace", "free").api_key
            second = op.rotate_api_key(first)  # the full key: only its id goes into the URL
            # The default grace: the old secret keeps working for 24 hours.
            with OmniMemory(api_key=first, base_url=server.base_url) as old:
                assert old.usage_quota().key_id == second.key_id
            third = op.rotate_api_key(second.key_id, grace_hours=0)
    assert second.grace_hours == 24
    valid_for = _time(second.previous_key_valid_until) - _time(second.rotated_at)
    assert abs(valid_for - dt.timedelta(hours=24)) < dt.timedelta(seconds=1)
    assert all(first not in path for path in sent)
    assert f"/admin/api-key/{second.key_id}/rotate" in sent
    # A rotation with no grace ends every earlier secret's grace too.
    for secret in (first, second.api_key):
        with OmniMemory(api_key=secret, base_url=server.base_url) as old:
            with pytest.raises(AuthenticationError) as e:
                old.usage_quota()
            assert e.value.code == "api_key_rotated"
    with OmniMemory(api_key=third.api_key, base_url=server.base_url) as new:
        assert new.usage_quota().key_id == second.key_id


def test_admin_refusals(server: Server, pro_key: str) -> None:
    # A customer's key is not the admin key (and the client sends no Bearer key on admin calls).
    with OmniMemory(api_key=pro_key, admin_key=pro_key, base_url=server.base_url) as customer:
        with pytest.raises(PermissionDeniedError) as forbidden:
            customer.rotate_api_key(pro_key)
    assert forbidden.value.status == 403 and forbidden.value.code == "admin_forbidden"
    with OmniMemory(api_key=pro_key, admin_key=server.admin_key, base_url=server.base_url) as op:
        with pytest.raises(NotFoundError) as unknown:
            op.rotate_api_key("om_pro_NoSuchK3")
        with pytest.raises(NotFoundError) as unknown2:
            op.deactivate_key("om_pro_NoSuchK3")
        with pytest.raises(InvalidRequestError) as too_long:
            op.rotate_api_key(pro_key, grace_hours=9000)
        # The customer's key was neither rotated nor deactivated by any of it.
        assert op.usage_quota().tier == "pro"
    assert unknown.value.status == 404 and unknown.value.code == "key_not_found"
    assert unknown2.value.code == "key_not_found"
    assert too_long.value.status == 422 and "grace_hours" in too_long.value.detail
    with OmniMemory(admin_key="x", base_url=server.base_url) as nobody, pytest.raises(ValueError):
        nobody.rotate_api_key("")  # refused before anything is sent


def test_list_deactivate_activate(server: Server) -> None:
    with admin(server) as op:
        created = op.create_api_key("py-lifecycle", "pro", expires_in_days=30)
        listed = {k.key_id: k for k in op.list_keys(tier="pro").keys}
        fresh = listed[created.key_id]
        with OmniMemory(api_key=created.api_key, base_url=server.base_url) as customer:
            r = customer.compress(EIFFEL)
            off = op.deactivate_key(created.key_id)
            with pytest.raises(AuthenticationError) as e:
                customer.compress(EIFFEL)
            on = op.activate_key(created.api_key)  # the full key works too
            again = customer.count_tokens("back in service", model_id="gpt-4o")
        after = {k.key_id: k for k in op.list_keys().keys}[created.key_id]
        free_only = op.list_keys(tier="free", limit=5)
    assert isinstance(fresh, KeyInfo)
    assert fresh.status == "active" and fresh.active and fresh.used == 0 and fresh.last_used_at is None
    assert fresh.monthly_limit == 100_000_000 and not fresh.unlimited and fresh.expires_at
    assert off.status == "deactivated" and not off.active
    assert e.value.status == 401 and e.value.code == "api_key_deactivated"
    assert on.status == "active" and on.active and again.token_count > 0
    # Its last use is the count after the activation (a count is no charge: `used` is the compression).
    assert after.used == r.original_tokens and after.last_used_at and after.last_used_model == "gpt-4o"
    assert all(k.tier == "free" for k in free_only.keys) and len(free_only.keys) <= 5


class DropsConnections:
    """A server that accepts each connection, reads the request and closes without answering:
    a request that may have been carried out, with its answer lost."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted = 0
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def test_a_lost_rotation_is_not_sent_again() -> None:
    """Retrying a rotation whose answer was lost would rotate again (and lose the secret the
    first one made): it is raised instead. A listing is retried as usual."""
    srv = DropsConnections()
    try:
        with OmniMemory(admin_key="k" * 40, base_url=srv.url, max_retries=2, retry_backoff=0.01) as op:
            with pytest.raises(APIConnectionError):
                op.rotate_api_key("om_pro_AbCdEfGh", grace_hours=0)
            rotations = srv.accepted
            with pytest.raises(APIConnectionError):
                op.create_api_key("nobody")
            creations = srv.accepted - rotations
            with pytest.raises(APIConnectionError):
                op.list_keys()
            listings = srv.accepted - rotations - creations
    finally:
        srv.close()
    assert (rotations, creations, listings) == (1, 1, 3)


def test_async_admin(server: Server) -> None:
    async def run() -> Tuple[CreatedKey, RotatedKey, KeyInfo, KeyInfo]:
        async with AsyncOmniMemory(admin_key=server.admin_key, base_url=server.base_url) as op:
            created = await op.create_api_key("py-async-admin", "pro")
            rotated = await op.rotate_api_key(created.key_id, grace_hours=0)
            off = await op.deactivate_key(created.key_id)
            on = await op.activate_key(created.key_id)
            listed = [k.key_id for k in (await op.list_keys()).keys]
            assert created.key_id in listed
        async with AsyncOmniMemory(api_key=created.api_key, base_url=server.base_url) as old:
            with pytest.raises(AuthenticationError) as e:
                await old.usage_quota()
            assert e.value.code == "api_key_rotated"
        async with AsyncOmniMemory(api_key=rotated.api_key, base_url=server.base_url) as new:
            assert (await new.usage_quota()).key_id == created.key_id
        return created, rotated, off, on

    created, rotated, off, on = asyncio.run(run())
    assert rotated.key_id == created.key_id and rotated.api_key != created.api_key
    assert off.status == "deactivated" and on.status == "active"
