"""Shared test data and helpers."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def find_binary() -> Path:
    """`$OMNIMEMORY_BIN`, else `target/debug/omnimemory`, else `target/release/omnimemory`."""
    env = os.environ.get("OMNIMEMORY_BIN")
    if env:
        return Path(env)
    for rel in ("target/debug/omnimemory", "target/release/omnimemory"):
        p = REPO_ROOT / rel
        if p.is_file() and os.access(p, os.X_OK):
            return p
    raise RuntimeError("no omnimemory binary: set OMNIMEMORY_BIN or build it (cargo build) under " + str(REPO_ROOT))


@dataclass
class Server:
    """A running `omnimemory serve` (started by the `server` fixture)."""

    binary: Path
    home: Path
    admin_key: str
    base_url: str
    process: subprocess.Popen
    logs: List[str] = field(default_factory=list)
    _n: int = 0

    def create_key(self, tier: str = "pro", user_id: Optional[str] = None) -> str:
        """A new key through `POST /admin/api-key`."""
        self._n += 1
        body = {"user_id": user_id or f"py-{tier}-{self._n}", "tier": tier}
        r = httpx.post(f"{self.base_url}/admin/api-key", json=body, headers={"X-Admin-Key": self.admin_key})
        assert r.status_code == 201, r.text
        key = r.json()["api_key"]
        assert key.startswith(f"om_{tier}_"), key
        return str(key)

    def create_key_cli(self, tier: str, *extra: str) -> str:
        """A new key through `omnimemory admin create-key` (which takes per-key limits)."""
        self._n += 1
        out = subprocess.run(
            [
                str(self.binary),
                "admin",
                "create-key",
                "--user-id",
                f"py-cli-{self._n}",
                "--tier",
                tier,
                *extra,
                "--json",
            ],
            env={**server_env(), "OMNIMEMORY_HOME": str(self.home), "OMNIMEMORY_ADMIN_KEY": self.admin_key},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        return str(json.loads(out.stdout)["api_key"])


def server_env() -> Dict[str, str]:
    env = dict(os.environ)
    # The tests run the SQLite, single-instance server whatever the caller's shell points at.
    for k in (
        "OMNIMEMORY_DATABASE_URL",
        "OMNIMEMORY_REDIS_URL",
        "OMNIMEMORY_ADDR",
        "OMNIMEMORY_ANONYMOUS",
        "OMNIMEMORY_API_KEY",
        "OMNIMEMORY_BASE_URL",
    ):
        env.pop(k, None)
    return env


# Sample documents. The Eiffel one answers the test query; the others do not.
EIFFEL = (
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. "
    "Gustave Eiffel's company designed and built it over two years. "
    "The tower is 330 metres tall and was the tallest man-made structure until 1930. "
    "Today millions of tourists visit it every year, and it is lit every evening. "
    "The Statue of Liberty was a gift from France to the United States in 1886."
)
BRIDGE = (
    "The Golden Gate Bridge opened in 1937 and spans the Golden Gate strait. "
    "Its towers rise 227 metres above the water. "
    "The bridge is painted in a colour called International Orange. "
    "About 112,000 vehicles cross it every day. "
    "It was the longest suspension bridge in the world until 1964."
)
QUERY = "How tall is the Eiffel Tower?"


def require(module: str) -> ModuleType:
    """Imports an optional integration's dependency: skips the module's tests when it is absent,
    unless OMNIMEMORY_TEST_REQUIRE_EXTRAS=1 (as ci.sh sets), where its absence is a failure."""
    if os.environ.get("OMNIMEMORY_TEST_REQUIRE_EXTRAS") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)


def sentences(text: str) -> List[str]:
    """The sentences of a prose text (to check that kept text is whole input sentences)."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
