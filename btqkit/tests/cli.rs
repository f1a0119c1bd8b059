//! The command line on good and bad input: JSON out, one-line errors, non-zero exits, never a
//! panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::{Command, Output};

use serde_json::Value;

fn btqkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_btqkit"))
        .args(args)
        .output()
        .unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let out = btqkit(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fails_cleanly(args: &[&str]) -> String {
    let out = btqkit(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

const NODE_VERIFIED: &str = include_str!("../../../shared/vectors/btq_node_verified.json");

#[test]
fn tx_decode_matches_node_vector() {
    let v: Value = serde_json::from_str(NODE_VERIFIED).unwrap();
    let spend = &v["spends"][0];
    let j = ok_json(&[
        "tx",
        "decode",
        "--network",
        "regtest",
        spend["tx_hex"].as_str().unwrap(),
    ]);
    assert_eq!(j["txid"], spend["txid"]);
    assert_eq!(j["wtxid"], spend["wtxid"]);
    assert_eq!(j["weight"], spend["weight"]);
    assert_eq!(j["vsize"], spend["vsize_true"]);
    assert_eq!(j["outputs"][0]["address"], spend["outputs"][0]["address"]);
    assert_eq!(j["outputs"][0]["type"], "witness_v0_keyhash");
    assert_eq!(
        j["inputs"][0]["prevout"]["txid"],
        spend["prevouts"][0]["txid"]
    );
}

#[test]
fn block_decode_genesis_and_node_block() {
    let out = btqkit(&["block", "genesis", "--network", "main"]);
    let hex = String::from_utf8(out.stdout).unwrap();
    let j = ok_json(&["block", "decode", hex.trim()]);
    assert_eq!(
        j["hash"],
        "0000ca45ea08433961609b50cd0c3f76d14589f8f61973ebbc344c3a160f7cdd"
    );
    assert_eq!(j["is_genesis"], true);
    let v: Value = serde_json::from_str(NODE_VERIFIED).unwrap();
    let j = ok_json(&[
        "block",
        "decode",
        "-n",
        "regtest",
        v["block"]["block_hex"].as_str().unwrap(),
    ]);
    assert_eq!(j["hash"], v["block"]["hash"]);
    assert_eq!(j["merkle_root_valid"], true);
    assert_eq!(j["witness_commitment_valid"], true);
    assert_eq!(j["pow_valid"], true);
    assert_eq!(j["height_bip34"], v["block"]["height"]);
}

#[test]
fn address_decode_and_encode() {
    let j = ok_json(&[
        "address",
        "decode",
        "dbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tg9m9js5",
    ]);
    assert_eq!(j["network"], "main");
    assert_eq!(
        j["script_pubkey"],
        "00144006068b71b291a07284b6fd3b5ba5794d7b1568"
    );
    assert_eq!(
        j["as_node_renders"],
        "qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q58"
    );
    let j = ok_json(&[
        "address",
        "encode",
        "-n",
        "main",
        "76a9144006068b71b291a07284b6fd3b5ba5794d7b156888bb",
    ]);
    assert_eq!(j["address"], "XgXNJCDcXRWbH922XE6VSpBHSJ6EqBE2Tw");
    assert_eq!(j["type"], "dilithium_pubkeyhash");
}

#[test]
fn key_generate_writes_secret_only_to_file() {
    let dir = std::env::temp_dir().join(format!("btqkit-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key.json");
    let _ = std::fs::remove_file(&path);
    let seed = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let out = btqkit(&[
        "key",
        "generate",
        "--seed",
        seed,
        "--secret-out",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let j: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        j["addresses"]["regtest"]["p2wpkh_lithium"],
        "qcrt1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgtm9r9t"
    );
    assert_eq!(
        j["addresses"]["main"]["p2mr_single_leaf"],
        "qbtc1zptwe36yrzxp9gkm0jyaxls42gz7czxkljx6urc0r9qk2fftx5c0stkn6gu"
    );
    // The secret (expanded sk starts with rho = the first bytes of pk, then K) never reaches stdout.
    let file = std::fs::read_to_string(&path).unwrap();
    let sk_hex: Value = serde_json::from_str(&file).unwrap();
    let sk = sk_hex["node_keypair_hex"].as_str().unwrap();
    assert_eq!(sk.len(), 2 * 3872);
    assert!(!stdout.contains(&sk[64..256]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let shown = ok_json(&["key", "show", "--key", path.to_str().unwrap()]);
    assert_eq!(shown["public_key"], j["public_key"]);
    // Refuses to overwrite.
    fails_cleanly(&[
        "key",
        "generate",
        "--seed",
        seed,
        "--secret-out",
        path.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_one_line_error() {
    assert!(fails_cleanly(&["tx", "decode", "abc"]).contains("odd length"));
    assert!(fails_cleanly(&["tx", "decode", "zz"]).contains("invalid hex"));
    assert!(fails_cleanly(&["tx", "decode", "0200000001"]).contains("invalid transaction"));
    // A count claiming 2^25 inputs in a few bytes.
    fails_cleanly(&["tx", "decode", "02000000fe00000002"]);
    fails_cleanly(&["block", "decode", "00"]);
    fails_cleanly(&["address", "decode", "qbtc1notanaddress"]);
    fails_cleanly(&["address", "encode", "-n", "main", "6a0548656c6c6f"]);
    fails_cleanly(&["address", "encode", "-n", "nowhere", "0014"]);
    fails_cleanly(&["key", "show", "--key", "/nonexistent/key"]);
    fails_cleanly(&["key", "generate", "--seed", "1234"]);
}
