#!/usr/bin/env bash
# Builds the btq-ffi cdylib, compiles example.c with gcc against bindings/c/btq.h, runs it
# (with overhead figures), then runs it under valgrind: no memory errors and no definitely or
# indirectly lost blocks (rayon's global signing pool keeps its threads until exit: "possibly lost").
# Needs: cargo, gcc, python3 (to extract the vectors), valgrind.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
vectors="${BTQ_VECTORS:-$root/../shared/vectors}"
out="$root/target/ffi-c"
mkdir -p "$out"

cargo build -p btq-ffi --release --lib --manifest-path "$root/Cargo.toml"
lib="$root/target/release"

python3 - "$vectors/btq_tx_vectors.json" "$out/tx.hex" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
open(sys.argv[2], "w").write(d["spends"]["p2wpkh_dilithium_bip143"]["tx_hex"])
PY

gcc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -O2 -g \
    -I"$here" "$here/example.c" -L"$lib" -lbtq_ffi -Wl,-rpath,"$lib" -o "$out/example"

rm -rf "$out/index-run.redb" "$out/index-vg.redb"
echo "== example =="
BTQ_BENCH=1 "$out/example" "$out/tx.hex" "$vectors/gbt-empty.json" "$out/index-run.redb"
echo "== example under valgrind =="
valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
    "$out/example" "$out/tx.hex" "$vectors/gbt-empty.json" "$out/index-vg.redb" > "$out/valgrind.log"
tail -1 "$out/valgrind.log"
echo "bindings/c/test.sh: OK"
