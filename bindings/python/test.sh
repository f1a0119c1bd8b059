#!/usr/bin/env bash
# Creates a venv under target/, pip-installs pytest and this package (maturin builds btq-ffi
# with UniFFI bindings), and runs the pytest suite. Needs python3 >= 3.9 with venv, cargo,
# and PyPI (pytest, maturin as the build backend).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/py-btq-kit"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet pytest
CARGO_TARGET_DIR="$root/target" "$venv/bin/pip" install --quiet --force-reinstall "$here"
cd "$here"
"$venv/bin/python" -m pytest -q -s tests "$@"
