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

// ---------------- `btqkit index sync --listen`: one process follows and serves ----------------

mod node {
    //! A fake node: JSON-RPC over HTTP/1.1 on 127.0.0.1, one request per connection, answering
    //! from a shared chain.

    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use btq_core::block::Block;
    use serde_json::{Value, json};

    pub(crate) type Chain = Arc<Mutex<Vec<Block>>>;

    fn result(blocks: &[Block], req: &Value) -> Result<Value, (i64, &'static str)> {
        let tip = blocks.last().unwrap();
        let p = &req["params"];
        match req["method"].as_str().unwrap_or("") {
            "getblockchaininfo" => Ok(json!({
                "blocks": blocks.len() - 1,
                "bestblockhash": tip.block_hash().to_string(),
            })),
            "getblockhash" => blocks
                .get(usize::try_from(p[0].as_u64().unwrap()).unwrap())
                .map(|b| json!(b.block_hash().to_string()))
                .ok_or((-8, "Block height out of range")),
            "getblock" => blocks
                .iter()
                .find(|b| b.block_hash().to_string() == p[0].as_str().unwrap())
                .map(|b| json!(btq_core::hex::encode(&btq_core::encoding::encode_to_vec(b))))
                .ok_or((-5, "Block not found")),
            "getrawtransaction" => blocks
                .iter()
                .flat_map(|b| &b.txdata)
                .find(|t| t.txid().to_string() == p[0].as_str().unwrap())
                .map(|t| json!(btq_core::hex::encode(&btq_core::encoding::encode_to_vec(t))))
                .ok_or((-5, "No such transaction")),
            _ => Err((-32601, "Method not found")),
        }
    }

    fn one(sock: TcpStream, chain: &Chain) -> Option<()> {
        let mut rd = BufReader::new(sock.try_clone().ok()?);
        let mut len = 0;
        let mut line = String::new();
        while rd.read_line(&mut line).ok()? > 2 {
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().ok()?;
            }
            line.clear();
        }
        let mut body = vec![0; len];
        rd.read_exact(&mut body).ok()?;
        let req: Value = serde_json::from_slice(&body).ok()?;
        let blocks = chain.lock().unwrap().clone();
        let one = |req: &Value| match result(&blocks, req) {
            Ok(r) => json!({"result": r, "error": null, "id": req["id"]}),
            Err((code, message)) => {
                json!({"result": null, "error": {"code": code, "message": message}, "id": req["id"]})
            }
        };
        // A JSON-RPC batch is answered call by call.
        let answer = match &req {
            Value::Array(calls) => calls.iter().map(one).collect(),
            call => one(call),
        }
        .to_string();
        write!(
            &sock,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .ok()
    }

    /// Starts the node; returns its address.
    pub(crate) fn start(chain: Chain) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for sock in listener.incoming().flatten() {
                let chain = Arc::clone(&chain);
                std::thread::spawn(move || one(sock, &chain));
            }
        });
        addr
    }
}

/// A plain HTTP GET over loopback: status and body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    // axum answers small bodies with content-length (no chunking).
    (status, body.to_owned())
}

/// The child's stderr lines, on a channel.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Kills the child when dropped (also when an assertion fails).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `btqkit index sync --listen 127.0.0.1:0 ...` against `node`; returns the child and
/// the HTTP address it printed, plus its remaining stderr.
fn spawn_sync_listen(
    node: std::net::SocketAddr,
    db: &std::path::Path,
    extra: &[&str],
) -> (KillOnDrop, String, std::sync::mpsc::Receiver<String>) {
    spawn_listening("sync", node, db, extra)
}

/// Spawns `btqkit index <cmd> --rpc <node> --db <db> --listen 127.0.0.1:0 ...`; returns the
/// child, the HTTP address it printed and its remaining stderr.
fn spawn_listening(
    cmd: &str,
    node: std::net::SocketAddr,
    db: &std::path::Path,
    extra: &[&str],
) -> (KillOnDrop, String, std::sync::mpsc::Receiver<String>) {
    let url = format!("http://{node}/");
    let mut args = vec![
        "index",
        cmd,
        "--rpc",
        &url,
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--network",
        "regtest",
    ];
    args.extend_from_slice(extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_btqkit"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let child = KillOnDrop(child);
    let addr = loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
        if let Some(a) = line.strip_prefix("serving on http://") {
            break a.to_owned();
        }
    };
    (child, addr, rx)
}

/// Polls `/blocks/tip/height` until it says `height`; returns how long that took.
fn wait_for_height(addr: &str, height: usize, within: std::time::Duration) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        let (s, body) = http_get(addr, "/blocks/tip/height");
        if s == 200 && body == height.to_string() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "tip {body:?} (status {s}), want {height}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The confirmed balance of every scriptPubKey on `blocks`, from scratch.
fn balances(
    blocks: &[btq_core::block::Block],
) -> std::collections::HashMap<btq_core::script::ScriptBuf, u64> {
    let mut utxos = std::collections::HashMap::new();
    for b in blocks {
        for t in &b.txdata {
            for i in &t.input {
                utxos.remove(&i.previous_output);
            }
            for (n, o) in t.output.iter().enumerate() {
                let op = btq_core::tx::OutPoint {
                    txid: t.txid(),
                    vout: u32::try_from(n).unwrap(),
                };
                utxos.insert(op, (o.script_pubkey.clone(), o.value));
            }
        }
    }
    let mut bal = std::collections::HashMap::new();
    for (spk, v) in utxos.into_values() {
        *bal.entry(spk).or_insert(0) += v;
    }
    bal
}

#[test]
fn index_sync_listen_serves_from_the_same_process() {
    let (mut builder, chain, node) = chain_and_node(7, 40, 12, 5);
    let dir = tempfile_dir("sync-listen");
    let db = dir.join("i.redb");
    let (mut child, addr, _rx) = spawn_sync_listen(node, &db, &["--poll-secs", "1"]);

    wait_for_height(&addr, 11, std::time::Duration::from_secs(30));
    let (s, hash) = http_get(&addr, "/blocks/tip/hash");
    assert_eq!(
        (s, hash),
        (200, builder.blocks()[11].block_hash().to_string())
    );
    // The node grows; the same process follows and serves the new tip.
    builder.push_block(5);
    *chain.lock().unwrap() = builder.blocks().to_vec();
    wait_for_height(&addr, 12, std::time::Duration::from_secs(30));

    // An address's balance and stats, against the chain.
    let bal = balances(builder.blocks());
    let (spk, want) = bal
        .iter()
        .filter(|(spk, _)| {
            btq_core::Address::from_script(spk, btq_core::params::Network::Regtest).is_ok()
        })
        .max_by_key(|(_, v)| **v)
        .unwrap();
    let a = btq_core::Address::from_script(spk, btq_core::params::Network::Regtest).unwrap();
    let (s, body) = http_get(&addr, &format!("/address/{a}"));
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["balance"], *want);
    assert_eq!(v["address"], a.to_string());
    let (s, body) = http_get(&addr, &format!("/address/{a}/balance"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((s, v["balance"].as_u64().unwrap()), (200, *want));

    // Full transactions from the sync's node.
    let tx = &builder.blocks()[9].txdata[2].clone();
    let raw = btq_core::hex::encode(&btq_core::encoding::encode_to_vec(tx));
    assert_tx_served(&addr, tx, &raw);

    // A second process serves the same redb file read-only while the sync writes it, and
    // follows its commits; a second writer cannot open it.
    {
        let (_serve, addr2, _rx2) = spawn_listening("serve", node, &db, &[]);
        let (s, hash) = http_get(&addr2, "/blocks/tip/hash");
        assert_eq!(
            (s, hash),
            (200, builder.blocks()[12].block_hash().to_string())
        );
        builder.push_block(5);
        *chain.lock().unwrap() = builder.blocks().to_vec();
        wait_for_height(&addr2, 13, std::time::Duration::from_secs(30));
        let (s, hash) = http_get(&addr2, "/blocks/tip/hash");
        assert_eq!(
            (s, hash),
            (200, builder.blocks()[13].block_hash().to_string())
        );
        assert_tx_served(&addr2, tx, &raw);
    }
    let err = fails_cleanly(&[
        "index",
        "sync",
        "--rpc",
        &format!("http://{node}/"),
        "--db",
        db.to_str().unwrap(),
        "--once",
    ]);
    assert!(err.contains("opening"), "{err}");
    drop(child.0.kill());
    let _ = child.0.wait();
    drop(child);

    // With --once, the process syncs, and the server stops with it.
    let out = btqkit(&[
        "index",
        "sync",
        "--rpc",
        &format!("http://{node}/"),
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--once",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `index serve --rpc`: a separate server asks the node for transactions too.
    let (_serve, addr, _rx) = spawn_listening("serve", node, &db, &[]);
    assert_tx_served(&addr, tx, &raw);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `/tx/:txid` is the full transaction and `/tx/:txid/hex` its serialization.
fn assert_tx_served(addr: &str, tx: &btq_core::tx::Transaction, raw: &str) {
    let (s, body) = http_get(addr, &format!("/tx/{}", tx.txid()));
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["txid"], tx.txid().to_string());
    assert_eq!(v["vin"].as_array().unwrap().len(), tx.input.len());
    assert_eq!(v["vout"][0]["value"], tx.output[0].value);
    assert_eq!(v["status"]["block_height"], 9);
    assert_eq!(
        http_get(addr, &format!("/tx/{}/hex", tx.txid())),
        (200, raw.to_owned())
    );
}

/// A test chain of `blocks` blocks of `txs` transactions over `scripts` scripts, and a fake
/// node serving it (the chain can grow while the node runs).
fn chain_and_node(
    seed: u64,
    scripts: u64,
    blocks: usize,
    txs: usize,
) -> (
    btq_index::testkit::ChainBuilder,
    node::Chain,
    std::net::SocketAddr,
) {
    let mut builder = btq_index::testkit::ChainBuilder::new(seed, scripts);
    for _ in 0..blocks {
        builder.push_block(txs);
    }
    let chain: node::Chain = std::sync::Arc::new(std::sync::Mutex::new(builder.blocks().to_vec()));
    let node = node::start(std::sync::Arc::clone(&chain));
    (builder, chain, node)
}

/// A fresh directory under the system temp dir.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("btqkit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn index_sync_wakes_on_zmq_hashblock() {
    use zeromq::{Socket, SocketSend};
    let (mut builder, chain, node) = chain_and_node(9, 20, 6, 3);
    // The node's ZMQ publisher.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut publisher = zeromq::PubSocket::new();
    let endpoint = rt
        .block_on(publisher.bind("tcp://127.0.0.1:0"))
        .unwrap()
        .to_string();
    let dir = tempfile_dir("zmq");
    // A 60 s poll: only the notification explains a new tip within seconds.
    let (_child, addr, rx) = spawn_sync_listen(
        node,
        &dir.join("i.redb"),
        &["--poll-secs", "60", "--zmq-block", &endpoint],
    );
    wait_for_height(&addr, 5, std::time::Duration::from_secs(30));
    let subscribed = std::time::Instant::now();
    while !rx
        .recv_timeout(std::time::Duration::from_secs(1))
        .is_ok_and(|l| l.starts_with("zmq: subscribed"))
    {
        assert!(subscribed.elapsed() < std::time::Duration::from_secs(20));
    }

    let mut seq = 0u32;
    let mut notify_until =
        |publisher: &mut zeromq::PubSocket, hash: btq_core::hash::BlockHash, height: &str| {
            let start = std::time::Instant::now();
            // A PUB socket drops messages until the subscription reached it: publish until seen.
            loop {
                let mut m = zeromq::ZmqMessage::from("hashblock");
                m.push_back(hash.to_byte_array().to_vec().into());
                m.push_back(seq.to_le_bytes().to_vec().into());
                seq += 1;
                rt.block_on(publisher.send(m)).unwrap();
                let (s, body) = http_get(&addr, "/blocks/tip/height");
                if (s, body.as_str()) == (200, height) {
                    return start.elapsed();
                }
                assert!(
                    start.elapsed() < std::time::Duration::from_secs(10),
                    "no sync within 10 s of the notification (tip {body})"
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        };
    let hash = builder.push_block(3).block_hash();
    *chain.lock().unwrap() = builder.blocks().to_vec();
    notify_until(&mut publisher, hash, "6");
    // Noise on the topic (a short hash) is ignored and does not end the subscription.
    let mut noise = zeromq::ZmqMessage::from("hashblock");
    noise.push_back(vec![1, 2, 3].into());
    rt.block_on(publisher.send(noise)).unwrap();
    let hash = builder.push_block(3).block_hash();
    *chain.lock().unwrap() = builder.blocks().to_vec();
    notify_until(&mut publisher, hash, "7");
    let _ = std::fs::remove_dir_all(&dir);
}
