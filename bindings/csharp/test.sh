#!/usr/bin/env bash
# Builds the btq-ffi cdylib, compiles the C# wrapper and the Mining Core example/test with
# Mono's mcs (C# 7.2) and runs it under mono. Needs: apt-get install -y mono-mcs mono-runtime.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
vectors="${BTQ_VECTORS:-$root/../shared/vectors}"
out="$root/target/ffi-csharp"
mkdir -p "$out"
cargo build -p btq-ffi --release --lib --manifest-path "$root/Cargo.toml"
python3 - "$vectors/btq_tx_vectors.json" "$out/tx.hex" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
open(sys.argv[2], "w").write(d["spends"]["p2wpkh_dilithium_bip143"]["tx_hex"])
PY
mcs -langversion:7.2 -warnaserror -out:"$out/BtqKit.dll" -target:library "$here/Btq.cs"
mcs -langversion:7.2 -warnaserror -out:"$out/MiningCoreExample.exe" -r:"$out/BtqKit.dll" "$here/MiningCoreExample.cs"
LD_LIBRARY_PATH="$root/target/release${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    mono "$out/MiningCoreExample.exe" "$out/tx.hex" "$vectors/gbt-empty.json"
echo "bindings/csharp/test.sh: OK"
