//! The runtime adapters on 127.0.0.1: the RPC client syncs from a fake node (JSON-RPC with
//! user/password and cookie auth, including a reorg), then every HTTP endpoint answers,
//! including bad input (400) and unknown things (404) with a JSON error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::double_ended_iterator_last,
    reason = "test code"
)]
#![cfg(all(feature = "runtime-tokio", feature = "backend-redb"))]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use btq_core::Address;
use btq_core::block::Block;
use btq_core::params::Network;
use btq_core::tx::{OutPoint, TxOut};
use btq_index::driver::{SyncOptions, Syncer};
use btq_index::rpc::{RpcAuth, RpcClient, RpcError};
use btq_index::{ChainSync, MemoryStore, RedbStore, ScriptHash, Store, query};
use serde_json::{Value, json};

type Chain = Arc<Mutex<Vec<Block>>>;

/// One JSON-RPC call answered from `blocks`: status and the answer object.
fn answer(blocks: &[Block], req: &Value) -> (StatusCode, Value) {
    let id = req["id"].clone();
    let ok = |r: Value| {
        (
            StatusCode::OK,
            json!({"result": r, "error": null, "id": id}),
        )
    };
    let err = |status, code: i64, message: &str| {
        (
            status,
            json!({"result": null, "error": {"code": code, "message": message}, "id": id}),
        )
    };
    match req["method"].as_str().unwrap() {
        "getblockchaininfo" => ok(json!({
            "blocks": blocks.len() - 1,
            "bestblockhash": blocks.last().unwrap().block_hash().to_string(),
        })),
        "getblockhash" => {
            let h = req["params"][0].as_u64().unwrap() as usize;
            match blocks.get(h) {
                Some(b) => ok(json!(b.block_hash().to_string())),
                None => err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    -8,
                    "Block height out of range",
                ),
            }
        }
        "getblock" => {
            let hash = req["params"][0].as_str().unwrap();
            let b = blocks
                .iter()
                .find(|b| b.block_hash().to_string() == hash)
                .unwrap();
            ok(json!(hex::encode(btq_core::encoding::encode_to_vec(b))))
        }
        // `getrawtransaction <txid> false <blockhash>`: only from the named block.
        "getrawtransaction" => {
            let (txid, block) = (
                req["params"][0].as_str().unwrap(),
                req["params"][2].as_str().unwrap(),
            );
            assert_eq!(req["params"][1], false);
            match blocks
                .iter()
                .filter(|b| b.block_hash().to_string() == block)
                .flat_map(|b| &b.txdata)
                .find(|t| t.txid().to_string() == txid)
            {
                Some(t) => ok(json!(hex::encode(btq_core::encoding::encode_to_vec(t)))),
                None => err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    -5,
                    "No such transaction found in the provided block",
                ),
            }
        }
        _ => err(StatusCode::NOT_FOUND, -32601, "no"),
    }
}

/// The fake node: user "u", password "p"; batches answered item by item.
async fn rpc(
    State(chain): State<Chain>,
    headers: HeaderMap,
    Json(req): Json<Value>,
) -> (StatusCode, Json<Value>) {
    // user "u", password "p" (base64 "dTpw")
    if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some("Basic dTpw") {
        return (StatusCode::UNAUTHORIZED, Json(Value::Null));
    }
    let blocks = chain.lock().unwrap().clone();
    match &req {
        Value::Array(calls) => (
            StatusCode::OK,
            Json(calls.iter().map(|c| answer(&blocks, c).1).collect()),
        ),
        one => {
            let (status, v) = answer(&blocks, one);
            (status, Json(v))
        }
    }
}

fn get(base: &str, path: &str) -> (u16, Value, String) {
    let r = reqwest::blocking::get(format!("{base}{path}")).unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, v, text)
}

/// Starts the fake node on `rt`; returns its URL.
fn start_node(rt: &tokio::runtime::Runtime, chain: &Chain) -> String {
    let node = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let node_addr = node.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/", post(rpc))
        .with_state(Arc::clone(chain));
    rt.spawn(async move { axum::serve(node, app).await.unwrap() });
    format!("http://{node_addr}/")
}

/// Serves `router` on `rt`; returns the base URL.
fn start_api(rt: &tokio::runtime::Runtime, router: axum::Router) -> String {
    let api = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", api.local_addr().unwrap());
    rt.spawn(btq_index::http::serve(api, router, std::future::pending()));
    base
}

#[test]
fn rpc_sync_and_every_http_endpoint() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let chain_b = common::chain(31, 40, 6);
    let chain: Chain = Arc::new(Mutex::new(chain_b.blocks().to_vec()));
    let url = start_node(&rt, &chain);

    // Wrong credentials: a clear HTTP status error.
    let mut bad = RpcClient::new(&url, RpcAuth::None, Duration::from_secs(10)).unwrap();
    assert_eq!(
        bad.call("getblockchaininfo", json!([])),
        Err(RpcError::Status(401))
    );

    // Sync over RPC with a cookie file.
    let dir = tempfile::tempdir().unwrap();
    let cookie = dir.path().join(".cookie");
    std::fs::write(&cookie, "u:p").unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("i.redb")).unwrap());
    let client = RpcClient::new(&url, RpcAuth::Cookie(cookie), Duration::from_secs(10)).unwrap();
    let mut syncer = Syncer::new(
        &*store,
        client,
        ChainSync::new(common::indexer(100)),
        SyncOptions::default(),
    );
    syncer.sync_to_tip(&mut |_| {}).unwrap();
    assert_eq!(syncer.progress().blocks, 40);
    // The node reorgs 3 blocks onto a longer branch; polling again follows it.
    let mut fork = chain_b.fork_at(36, 5);
    for _ in 0..5 {
        fork.push_block(6);
    }
    *chain.lock().unwrap() = fork.blocks().to_vec();
    syncer.sync_to_tip(&mut |_| {}).unwrap();
    assert_eq!(syncer.progress().undone, 3);
    let blocks = fork.blocks().to_vec();
    common::assert_matches_model(&store.snapshot().unwrap(), &blocks);
    drop(syncer);

    // Serve it.
    let router = btq_index::http::router(Arc::clone(&store), Network::Regtest);
    let base = start_api(&rt, router);

    let tip = blocks.last().unwrap();
    let (s, _, t) = get(&base, "/blocks/tip/height");
    assert_eq!((s, t.as_str()), (200, "41"));
    let (s, _, t) = get(&base, "/blocks/tip/hash");
    assert_eq!((s, t), (200, tip.block_hash().to_string()));
    let (s, v, _) = get(&base, &format!("/block/{}", tip.block_hash()));
    assert_eq!(s, 200);
    assert_eq!(v["height"], 41);
    assert_eq!(v["tx_count"], tip.txdata.len());
    let (s, v, _) = get(&base, &format!("/block/{}/txids", tip.block_hash()));
    assert_eq!(
        (s, v[0].as_str().unwrap().to_owned()),
        (200, tip.txdata[0].txid().to_string())
    );
    let (s, _, t) = get(&base, "/block-height/5");
    assert_eq!((s, t), (200, blocks[5].block_hash().to_string()));
    let tx = &blocks[10].txdata[1];
    let (s, v, _) = get(&base, &format!("/tx/{}", tx.txid()));
    assert_eq!(s, 200);
    assert_eq!(v["status"]["block_height"], 10);
    assert_eq!(v["vsize"], tx.weight().to_wu().div_ceil(16));

    // An address with history: P2WPKH (kind 1) scripts have an address form.
    let m = common::recompute(&blocks);
    let (sh, sm) = m
        .scripts
        .iter()
        .filter(|(sh, _)| {
            let spk = query::script(&store.snapshot().unwrap(), sh)
                .unwrap()
                .unwrap();
            Address::from_script(&spk, Network::Regtest).is_ok()
        })
        .max_by_key(|(_, s)| s.history.len())
        .unwrap();
    let spk = query::script(&store.snapshot().unwrap(), sh)
        .unwrap()
        .unwrap();
    let addr = Address::from_script(&spk, Network::Regtest)
        .unwrap()
        .to_string();
    let (s, v, _) = get(&base, &format!("/address/{addr}"));
    assert_eq!(s, 200);
    assert_eq!(v["chain_stats"]["funded_txo_sum"], sm.funded);
    assert_eq!(v["balance"], sm.funded - sm.spent);
    assert_eq!(v["chain_stats"]["tx_count"], sm.history.len());
    let (s, v, _) = get(&base, &format!("/address/{addr}/txs?limit=100"));
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), sm.history.len().min(100));
    assert_eq!(v[0]["txid"], sm.history.last().unwrap().txid.to_string());
    let first_page = get(&base, &format!("/address/{addr}/txs?limit=2")).1;
    let last_seen = first_page[1]["txid"].as_str().unwrap().to_owned();
    let (s, v, _) = get(&base, &format!("/address/{addr}/txs/chain/{last_seen}"));
    assert_eq!(s, 200);
    if sm.history.len() > 2 {
        assert_eq!(
            v[0]["txid"],
            sm.history[sm.history.len() - 3].txid.to_string()
        );
    }
    let (s, v, _) = get(&base, &format!("/address/{addr}/utxo"));
    assert_eq!((s, v.as_array().unwrap().len()), (200, sm.utxos.len()));
    let (s, v, _) = get(&base, &format!("/address/{addr}/balance?height=41"));
    assert_eq!(
        (s, v["balance"].as_u64().unwrap()),
        (200, sm.funded - sm.spent)
    );
    let (s, v, _) = get(&base, &format!("/scripthash/{sh}"));
    assert_eq!((s, v["address"].as_str().unwrap()), (200, addr.as_str()));
    let (s, v, _) = get(&base, &format!("/scripthash/{sh}/txs"));
    assert_eq!(
        (s, v.as_array().unwrap().len()),
        (200, sm.history.len().min(25))
    );
    let (s, v, _) = get(&base, &format!("/scripthash/{sh}/utxo"));
    assert_eq!((s, v.as_array().unwrap().len()), (200, sm.utxos.len()));

    // Explorer endpoints.
    let (s, v, _) = get(&base, "/explorer/difficulty?from=0&to=41&step=10");
    assert_eq!((s, v.as_array().unwrap().len()), (200, 5));
    let (s, v, _) = get(&base, "/explorer/pools");
    assert_eq!((s, v["blocks"].as_u64().unwrap()), (200, 42));
    let (s, v, _) = get(&base, "/explorer/blocks-per-bucket");
    assert_eq!(s, 200);
    assert_eq!(
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| b["blocks"].as_u64().unwrap())
            .sum::<u64>(),
        42
    );
    let (s, v, _) = get(&base, "/explorer/richlist?limit=5");
    assert_eq!((s, v.as_array().unwrap().len()), (200, 5));

    // Bad input: 400 with a JSON error; unknown: 404 with a JSON error.
    for path in [
        "/block/zz".to_owned(),
        "/block/00".to_owned(),
        "/block-height/abc".to_owned(),
        "/block-height/-1".to_owned(),
        "/tx/xyz".to_owned(),
        "/address/notanaddress".to_owned(),
        "/address/notanaddress/txs".to_owned(),
        "/address/notanaddress/utxo".to_owned(),
        "/scripthash/1234".to_owned(),
        format!("/address/{addr}/txs?before_height=3"),
        "/explorer/difficulty?from=10&to=2".to_owned(),
        "/address/qbtc1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq/txs".to_owned(),
    ] {
        let (s, v, _) = get(&base, &path);
        assert_eq!(s, 400, "{path}");
        assert!(v["error"].is_string(), "{path}");
    }
    let zero = "0".repeat(64);
    for path in [
        format!("/block/{zero}"),
        format!("/block/{zero}/txids"),
        "/block-height/100000".to_owned(),
        format!("/tx/{zero}"),
        format!("/address/{addr}/txs/chain/{zero}"),
        format!("/address/{addr}/balance?height=999"),
        "/no/such/endpoint".to_owned(),
    ] {
        let (s, v, _) = get(&base, &path);
        assert_eq!(s, 404, "{path}");
        assert!(v["error"].is_string(), "{path}");
    }
    // An unknown script has zero stats, not an error (Esplora behaviour).
    let unknown = ScriptHash::of(b"nothing");
    let (s, v, _) = get(&base, &format!("/scripthash/{unknown}"));
    assert_eq!((s, v["balance"].as_u64().unwrap()), (200, 0));
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// The output `op` spends, from the chain.
fn output_of(blocks: &[Block], op: &OutPoint) -> TxOut {
    blocks
        .iter()
        .flat_map(|b| &b.txdata)
        .find(|t| t.txid() == op.txid)
        .unwrap()
        .output[op.vout as usize]
        .clone()
}

/// Checks Esplora's output JSON against `o`.
fn assert_txout(j: &Value, o: &TxOut) {
    assert_eq!(j["value"], o.value);
    assert_eq!(j["scriptpubkey"], hex::encode(o.script_pubkey.as_bytes()));
    assert_eq!(
        j["scriptpubkey_type"],
        o.script_pubkey.script_type().rpc_name()
    );
    match Address::from_script(&o.script_pubkey, Network::Regtest) {
        Ok(a) => assert_eq!(j["scriptpubkey_address"], a.to_string()),
        Err(_) => assert!(j.get("scriptpubkey_address").is_none(), "{j}"),
    }
}

#[test]
fn full_transactions_from_the_node() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let blocks = common::chain(5, 20, 8).blocks().to_vec();
    let store = Arc::new(MemoryStore::new());
    common::sync(
        &*store,
        &common::MemNode {
            blocks: blocks.clone(),
        },
        100,
        7,
    );
    let chain: Chain = Arc::new(Mutex::new(blocks.clone()));
    let url = start_node(&rt, &chain);
    let auth = RpcAuth::UserPass {
        user: "u".into(),
        password: "p".into(),
    };
    // Blocking clients are made outside the runtime.
    let client = RpcClient::new(&url, auth.clone(), Duration::from_secs(10)).unwrap();
    let with_node = start_api(
        &rt,
        btq_index::http::router_with_node(Arc::clone(&store), Network::Regtest, Some(client)),
    );
    let no_node = start_api(
        &rt,
        btq_index::http::router(Arc::clone(&store), Network::Regtest),
    );
    let dead_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead = RpcClient::new(
        &format!("http://{dead_addr}/"),
        auth,
        Duration::from_secs(5),
    )
    .unwrap();
    let dead_node = start_api(
        &rt,
        btq_index::http::router_with_node(Arc::clone(&store), Network::Regtest, Some(dead)),
    );

    // Every transaction of some blocks, spends with several parents included.
    let mut checked_multi_parent = false;
    for (height, b) in blocks.iter().enumerate().skip(15) {
        for tx in &b.txdata {
            let (s, v, _) = get(&with_node, &format!("/tx/{}", tx.txid()));
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["txid"], tx.txid().to_string());
            assert_eq!(v["version"], tx.version);
            assert_eq!(v["locktime"], tx.lock_time);
            assert_eq!(v["size"], tx.total_size());
            assert_eq!(v["weight"], tx.weight().to_wu());
            assert_eq!(v["status"]["confirmed"], true);
            assert_eq!(v["status"]["block_height"], height);
            assert_eq!(v["status"]["block_hash"], b.block_hash().to_string());
            assert_eq!(v["status"]["block_time"], b.header.time);
            assert_eq!(v["vout"].as_array().unwrap().len(), tx.output.len());
            for (j, o) in v["vout"].as_array().unwrap().iter().zip(&tx.output) {
                assert_txout(j, o);
            }
            let vin = v["vin"].as_array().unwrap();
            assert_eq!(vin.len(), tx.input.len());
            let mut in_sum = 0;
            for (j, i) in vin.iter().zip(&tx.input) {
                assert_eq!(j["txid"], i.previous_output.txid.to_string());
                assert_eq!(j["vout"], i.previous_output.vout);
                assert_eq!(j["sequence"], i.sequence);
                assert_eq!(j["scriptsig"], hex::encode(i.script_sig.as_bytes()));
                let w: Vec<String> = i.witness.items().iter().map(hex::encode).collect();
                assert_eq!(j["witness"], json!(w));
                assert_eq!(j["is_coinbase"], tx.is_coinbase());
                if tx.is_coinbase() {
                    assert!(j["prevout"].is_null());
                } else {
                    let prev = output_of(&blocks, &i.previous_output);
                    assert_txout(&j["prevout"], &prev);
                    in_sum += prev.value;
                }
            }
            let out_sum: u64 = tx.output.iter().map(|o| o.value).sum();
            if tx.is_coinbase() {
                assert_eq!(v["fee"], 0);
            } else {
                assert_eq!(v["fee"], in_sum - out_sum);
                let parents: std::collections::HashSet<_> =
                    tx.input.iter().map(|i| i.previous_output.txid).collect();
                checked_multi_parent |= parents.len() > 1;
            }

            // The serialized forms and the status.
            let raw = btq_core::encoding::encode_to_vec(tx);
            let (s, _, t) = get(&with_node, &format!("/tx/{}/hex", tx.txid()));
            assert_eq!((s, t), (200, hex::encode(&raw)));
            let r = reqwest::blocking::get(format!("{with_node}/tx/{}/raw", tx.txid())).unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "application/octet-stream");
            assert_eq!(r.bytes().unwrap().as_ref(), raw.as_slice());
            let (s, v, _) = get(&no_node, &format!("/tx/{}/status", tx.txid()));
            assert_eq!(s, 200);
            assert_eq!(
                v,
                json!({"confirmed": true, "block_height": height,
                       "block_hash": b.block_hash().to_string(), "block_time": b.header.time})
            );
        }
    }
    assert!(checked_multi_parent, "no spend of several parents checked");

    // Without a node: what the index has, and 503 for the serialized forms.
    let tx = &blocks[12].txdata[2];
    let (s, v, _) = get(&no_node, &format!("/tx/{}", tx.txid()));
    assert_eq!(s, 200);
    assert_eq!(v["weight"], tx.weight().to_wu());
    assert_eq!(v["status"]["block_height"], 12);
    assert!(v.get("vin").is_none());
    for path in ["hex", "raw"] {
        let (s, v, _) = get(&no_node, &format!("/tx/{}/{path}", tx.txid()));
        assert_eq!(s, 503, "{path}");
        assert!(v["error"].as_str().unwrap().contains("node"), "{v}");
    }

    // The node down: 502 with a JSON error; the index's own answers still work.
    for path in ["", "/hex", "/raw"] {
        let (s, v, _) = get(&dead_node, &format!("/tx/{}{path}", tx.txid()));
        assert_eq!(s, 502, "{path}");
        assert!(v["error"].is_string(), "{path}");
    }
    let (s, _, _) = get(&dead_node, &format!("/tx/{}/status", tx.txid()));
    assert_eq!(s, 200);

    // Unknown and malformed txids, with and without a node.
    let zero = "0".repeat(64);
    for base in [&with_node, &no_node, &dead_node] {
        for path in ["", "/hex", "/raw", "/status"] {
            let (s, v, _) = get(base, &format!("/tx/{zero}{path}"));
            assert_eq!(s, 404, "{path}");
            assert!(v["error"].is_string());
            let (s, _, _) = get(base, &format!("/tx/xyz{path}"));
            assert_eq!(s, 400, "{path}");
        }
    }
    // A node that does not have the transaction (pruned, another chain): 502.
    chain.lock().unwrap().truncate(10);
    let (s, v, _) = get(&with_node, &format!("/tx/{}", tx.txid()));
    assert_eq!(s, 502);
    assert!(v["error"].as_str().unwrap().contains("-5"), "{v}");
    rt.shutdown_timeout(Duration::from_secs(1));
}
