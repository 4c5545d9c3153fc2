"""Starts the real `omnimemory` binary for the tests (no mock of the API).

The binary is `$OMNIMEMORY_BIN`, else `target/debug/omnimemory`, else
`target/release/omnimemory` under the repository root. It serves on a free port with a fresh
data folder and an admin key; keys are created through `POST /admin/api-key` (and through
`omnimemory admin create-key` for a key with a small quota of its own).
"""

from __future__ import annotations

import queue
import secrets
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterator, List

import pytest
from support import Server, find_binary, server_env


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    binary = find_binary()
    tmp = tempfile.TemporaryDirectory(prefix="omnimemory-py-")
    home = Path(tmp.name) / "data"
    admin_key = secrets.token_urlsafe(40)[:40]
    env = {**server_env(), "OMNIMEMORY_HOME": str(home), "OMNIMEMORY_ADMIN_KEY": admin_key, "RUST_LOG": "info"}
    proc = subprocess.Popen(
        [str(binary), "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    logs: List[str] = []
    found: "queue.Queue[str]" = queue.Queue()

    def drain() -> None:  # keeps reading stderr so the server never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            logs.append(line)
            if "listening on http://" in line:
                found.put(line.split("listening on ", 1)[1].split()[0])
        found.put("")

    threading.Thread(target=drain, daemon=True).start()
    try:
        base_url = found.get(timeout=60)
    except queue.Empty:
        base_url = ""
    if not base_url:
        proc.kill()
        raise RuntimeError(f"{binary} did not start listening:\n" + "".join(logs[-30:]))
    srv = Server(binary=binary, home=home, admin_key=admin_key, base_url=base_url, process=proc, logs=logs)
    try:
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        tmp.cleanup()


@pytest.fixture
def base_url(server: Server) -> str:
    return server.base_url


@pytest.fixture
def pro_key(server: Server) -> str:
    """A fresh pro key per test (10 requests/s, 100M tokens a month): usage starts at zero."""
    return server.create_key("pro")


@pytest.fixture
def free_key(server: Server) -> str:
    """A fresh free key per test: 1 request/s, burst 1, so a second request at once is 429."""
    return server.create_key("free")


@pytest.fixture(autouse=True)
def _no_client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNIMEMORY_API_KEY", raising=False)
    monkeypatch.delenv("OMNIMEMORY_BASE_URL", raising=False)
    monkeypatch.delenv("OMNIMEMORY_ADMIN_KEY", raising=False)


def pytest_report_header(config: pytest.Config) -> List[str]:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"python {sys.version.split()[0]}"]
    for dist in ("omnimemory", "httpx", "langchain-core", "langchain-classic", "langchain", "llama-index-core"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            pass
    try:
        binary = str(find_binary())
    except RuntimeError as e:
        binary = str(e)
    return ["versions: " + ", ".join(parts), f"server binary: {binary}"]
