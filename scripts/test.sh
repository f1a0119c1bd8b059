#!/usr/bin/env bash
# The whole test suite: every crate's tests (unit, integration, property, simulation, doc), then
# the bindings (C under valgrind, Python via pip + pytest, C# with Mono).
# PostgreSQL backends run when BTQ_TEST_POSTGRES_URL is set (.ci/run sets it up).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

cargo test --workspace --all-features --locked

echo "== bindings: C (gcc, valgrind)"
bash bindings/c/test.sh

echo "== bindings: Python (UniFFI, pytest)"
bash bindings/python/test.sh

echo "== bindings: C# (Mono)"
if command -v mcs >/dev/null 2>&1 && command -v mono >/dev/null 2>&1; then
  bash bindings/csharp/test.sh
else
  echo "NOTICE: mcs/mono not installed; skipping the C# bindings (apt-get install mono-mcs mono-runtime)"
fi
