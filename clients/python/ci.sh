#!/usr/bin/env bash
# The Python client's CI: installs the package (not editable) with its extras from PyPI into two
# virtual environments and runs its tests against the omnimemory binary in each:
#   latest: langchain-core 1.x + langchain-classic, the newest llama-index-core below 1
#   oldest: langchain-core 0.3 + langchain 0.3,     llama-index-core 0.12
# Needs python3 (3.9 or later; python3.11 is preferred) with venv and pip, and PyPI.
# The server binary is $OMNIMEMORY_BIN, else target/debug/omnimemory (built by `cargo test`),
# else target/release/omnimemory. The environments live in target/python/ (ignored by git);
# `ci.sh latest` runs one environment only.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venvs="${OMNIMEMORY_PY_VENVS:-$root/target/python}"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
export OMNIMEMORY_TEST_REQUIRE_EXTRAS=1 # a missing integration is a failure here, not a skip

run_env() {
    local name="$1"
    shift
    local venv="$venvs/$name" started=$SECONDS fresh=1
    echo "== python client tests ($name): $*"
    if [ -x "$venv/bin/python" ]; then fresh=0; else "$python" -m venv "$venv"; fi
    "$venv/bin/python" -m pip install --quiet "$here[test,langchain,llama-index]" "$@"
    if [ "$fresh" = 0 ]; then # an old environment: make sure it runs this checkout's code
        "$venv/bin/python" -m pip install --quiet --no-deps --force-reinstall "$here"
    fi
    echo "   installed in $((SECONDS - started)) s"
    (cd "$here" && "$venv/bin/python" -m pytest -p no:cacheprovider tests)
    echo "   $name done in $((SECONDS - started)) s"
}

only="${1:-all}"
if [ "$only" = all ] || [ "$only" = latest ]; then
    run_env latest 'langchain-core>=1,<2' 'langchain-classic>=1,<2' 'llama-index-core>=0.12,<1'
fi
if [ "$only" = all ] || [ "$only" = oldest ]; then
    run_env oldest 'langchain-core>=0.3,<0.4' 'langchain>=0.3,<0.4' 'llama-index-core>=0.12,<0.13'
fi
