//! The HTTP JSON API, modelled on Esplora's REST API, plus explorer endpoints.
//!
//! Every request reads one store snapshot (on a blocking thread), so the parts of one answer
//! agree. Differences from Esplora: history entries carry the funded/spent amounts and the
//! balance after each transaction; `mempool_stats` is always zero (the index is confirmed-only);
//! `scriptpubkey_type` is the node's RPC type name and there is no `scriptpubkey_asm`.
//!
//! **Transactions.** The index does not store raw transactions. With a node
//! ([`router_with_node`]), `/tx/:txid` fetches the transaction with
//! `getrawtransaction <txid> false <blockhash>` (the index knows the block of every txid) and
//! answers Esplora's transaction JSON; prevouts come from their own blocks, in batches of
//! [`PREVOUT_BATCH`], for at most [`MAX_PREVOUT_TXS`] distinct parent transactions — inputs
//! past that cap have `"prevout": null`. Without a node, `/tx/:txid` answers what the index
//! has (where it confirmed, weight, vsize ⌈weight/16⌉, size and fee) and `/tx/:txid/hex` and
//! `/tx/:txid/raw` answer 503. Node calls run on blocking threads with the client's timeout;
//! an unreachable or failing node gets 502, never a hang of the runtime.
//!
//! | path | answer |
//! | --- | --- |
//! | `/blocks/tip/height`, `/blocks/tip/hash` | text |
//! | `/block/:hash`, `/block/:hash/txids`, `/block-height/:height` (text hash) | block |
//! | `/tx/:txid` | Esplora's transaction (with a node) or position, weight, vsize, fee |
//! | `/tx/:txid/hex`, `/tx/:txid/raw` | the serialized transaction (needs a node) |
//! | `/tx/:txid/status` | `confirmed`, `block_height`, `block_hash`, `block_time` |
//! | `/address/:a`, `/scripthash/:h` | `chain_stats`, balance |
//! | `…/txs` (`?before_height=&before_index=` or `…/txs/chain/:last_seen_txid`), `…/utxo`, `…/balance?height=` | |
//! | `/explorer/difficulty?from=&to=&step=`, `/explorer/pools`, `/explorer/blocks-per-bucket?from=&to=`, `/explorer/richlist?limit=` | aggregates |
//!
//! Bad input gets 400, unknown things 404, node failures 502, a missing node 503, all with
//! `{"error": "..."}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use btq_core::Address;
use btq_core::hash::{BlockHash, Txid};
use btq_core::params::Network;
use btq_core::tx::{Transaction, TxOut};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::query::{self, HistoryCursor, QueryError};
use crate::rpc::{RpcClient, RpcError};
use crate::schema::ScriptHash;
use crate::store::Store;

/// Page size of history lists (Esplora's 25, larger on request up to this).
pub const MAX_HISTORY_PAGE: usize = 100;

/// Most distinct parent transactions fetched for the prevouts of one `/tx/:txid`; inputs
/// spending other parents get `"prevout": null`.
pub const MAX_PREVOUT_TXS: usize = 500;

/// Parent transactions asked for in one JSON-RPC batch.
pub const PREVOUT_BATCH: usize = 50;

/// Idle node clients kept for reuse.
const IDLE_CLIENTS: usize = 8;

/// An API error: a status and a message rendered as `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
}

impl ApiError {
    fn bad(m: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: m.into(),
        }
    }
    fn not_found(m: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: m.into(),
        }
    }
    fn bad_gateway(m: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            message: m.into(),
        }
    }
    fn worker_failed() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "worker failed".into(),
        }
    }
}

impl From<RpcError> for ApiError {
    fn from(e: RpcError) -> Self {
        Self::bad_gateway(format!("node: {e}"))
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"error": self.message}))).into_response()
    }
}

/// Node clients: one per concurrent request, reused.
struct Node {
    template: RpcClient,
    idle: Mutex<Vec<RpcClient>>,
}

impl Node {
    /// Runs `f` with an idle client (or a new clone); blocking.
    fn with<T>(&self, f: impl FnOnce(&mut RpcClient) -> T) -> T {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut c = idle.unwrap_or_else(|| self.template.clone());
        let r = f(&mut c);
        if let Ok(mut v) = self.idle.lock()
            && v.len() < IDLE_CLIENTS
        {
            v.push(c);
        }
        r
    }
}

struct Api<S> {
    store: Arc<S>,
    network: Network,
    node: Option<Node>,
}

type Shared<S> = Arc<Api<S>>;

/// Builds the router over `store`, rendering addresses for `network`, without a node:
/// `/tx/:txid` answers only what the index has.
pub fn router<S: Store + 'static>(store: Arc<S>, network: Network) -> Router {
    router_with_node(store, network, None)
}

/// Builds the router over `store`; with `node`, `/tx/:txid` answers full transactions and
/// `/tx/:txid/hex` and `/raw` work. Create the client outside the async runtime (it is a
/// blocking client); its timeout bounds every node call.
pub fn router_with_node<S: Store + 'static>(
    store: Arc<S>,
    network: Network,
    node: Option<RpcClient>,
) -> Router {
    let node = node.map(|template| Node {
        template,
        idle: Mutex::new(Vec::new()),
    });
    let api = Arc::new(Api {
        store,
        network,
        node,
    });
    Router::new()
        .route("/blocks/tip/height", get(tip_height::<S>))
        .route("/blocks/tip/hash", get(tip_hash::<S>))
        .route("/block/{hash}", get(block::<S>))
        .route("/block/{hash}/txids", get(block_txids::<S>))
        .route("/block-height/{height}", get(block_height::<S>))
        .route("/tx/{txid}", get(tx::<S>))
        .route("/tx/{txid}/status", get(tx_status::<S>))
        .route("/tx/{txid}/hex", get(tx_hex::<S>))
        .route("/tx/{txid}/raw", get(tx_raw::<S>))
        .route("/address/{addr}", get(addr_stats::<S>))
        .route("/address/{addr}/txs", get(addr_txs::<S>))
        .route("/address/{addr}/txs/chain/{last}", get(addr_txs_after::<S>))
        .route("/address/{addr}/utxo", get(addr_utxo::<S>))
        .route("/address/{addr}/balance", get(addr_balance::<S>))
        .route("/scripthash/{sh}", get(sh_stats::<S>))
        .route("/scripthash/{sh}/txs", get(sh_txs::<S>))
        .route("/scripthash/{sh}/txs/chain/{last}", get(sh_txs_after::<S>))
        .route("/scripthash/{sh}/utxo", get(sh_utxo::<S>))
        .route("/scripthash/{sh}/balance", get(sh_balance::<S>))
        .route("/explorer/difficulty", get(difficulty::<S>))
        .route("/explorer/pools", get(pools::<S>))
        .route("/explorer/blocks-per-bucket", get(buckets::<S>))
        .route("/explorer/richlist", get(richlist::<S>))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .with_state(api)
}

/// Serves `router` on `listener` until `shutdown` resolves.
///
/// # Errors
/// An I/O error of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Runs `f` on a fresh snapshot on a blocking thread.
async fn with_snap<S, T, F>(api: &Shared<S>, f: F) -> Result<T, ApiError>
where
    S: Store + 'static,
    T: Send + 'static,
    F: FnOnce(&S::Snapshot<'_>, Network) -> Result<T, ApiError> + Send + 'static,
{
    let api = Arc::clone(api);
    tokio::task::spawn_blocking(move || {
        let snap = api.store.snapshot().map_err(QueryError::from)?;
        f(&snap, api.network)
    })
    .await
    .map_err(|_| ApiError::worker_failed())?
}

/// Runs `f` with a node client on a blocking thread; 503 without a node.
async fn with_node<S, T, F>(api: &Shared<S>, f: F) -> Result<T, ApiError>
where
    S: Store + 'static,
    T: Send + 'static,
    F: FnOnce(&mut RpcClient, Network) -> Result<T, ApiError> + Send + 'static,
{
    if api.node.is_none() {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "raw transactions need a node: start the server with --rpc".into(),
        });
    }
    let api = Arc::clone(api);
    tokio::task::spawn_blocking(move || match &api.node {
        Some(node) => node.with(|c| f(c, api.network)),
        None => Err(ApiError::worker_failed()),
    })
    .await
    .map_err(|_| ApiError::worker_failed())?
}

fn parse_block_hash(s: &str) -> Result<BlockHash, ApiError> {
    if s.len() != 64 {
        return Err(ApiError::bad("invalid block hash"));
    }
    s.parse().map_err(|_| ApiError::bad("invalid block hash"))
}

fn parse_txid(s: &str) -> Result<Txid, ApiError> {
    if s.len() != 64 {
        return Err(ApiError::bad("invalid txid"));
    }
    s.parse().map_err(|_| ApiError::bad("invalid txid"))
}

fn parse_address(s: &str, network: Network) -> Result<(ScriptHash, String), ApiError> {
    let a = Address::parse(s, network).map_err(|e| ApiError::bad(e.to_string()))?;
    Ok((ScriptHash::of(a.script_pubkey().as_bytes()), a.to_string()))
}

fn parse_sh(s: &str) -> Result<ScriptHash, ApiError> {
    s.parse().map_err(|_| ApiError::bad("invalid script hash"))
}

async fn tip_height<S: Store + 'static>(State(api): State<Shared<S>>) -> Result<String, ApiError> {
    with_snap(&api, |v, _| {
        query::tip(v)?
            .map(|t| t.block.height.to_string())
            .ok_or_else(|| ApiError::not_found("the index is empty"))
    })
    .await
}

async fn tip_hash<S: Store + 'static>(State(api): State<Shared<S>>) -> Result<String, ApiError> {
    with_snap(&api, |v, _| {
        query::tip(v)?
            .map(|t| t.block.hash.to_string())
            .ok_or_else(|| ApiError::not_found("the index is empty"))
    })
    .await
}

fn block_json(b: &query::BlockInfo) -> Value {
    json!({
        "id": b.block.hash,
        "height": b.block.height,
        "version": b.header.version,
        "timestamp": b.header.time,
        "tx_count": b.tx_count,
        "size": b.size,
        "weight": b.weight,
        "merkle_root": b.header.merkle_root.to_string(),
        "previousblockhash": b.header.prev_blockhash,
        "nonce": b.header.nonce,
        "bits": b.header.bits.to_consensus(),
        "difficulty": b.difficulty(),
        "chainwork": format!("{:x}", b.chain_work.to_u256()),
        "pool": b.pool,
    })
}

async fn block<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(hash): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let hash = parse_block_hash(&hash)?;
    with_snap(&api, move |v, _| {
        let b = query::block_by_hash(v, &hash)?
            .ok_or_else(|| ApiError::not_found("block not found"))?;
        Ok(axum::Json(block_json(&b)))
    })
    .await
}

async fn block_txids<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(hash): Path<String>,
) -> Result<axum::Json<Vec<Txid>>, ApiError> {
    let hash = parse_block_hash(&hash)?;
    with_snap(&api, move |v, _| {
        let h =
            query::height_of(v, &hash)?.ok_or_else(|| ApiError::not_found("block not found"))?;
        Ok(axum::Json(query::block_txids(v, h, 0, query::MAX_PAGE)?))
    })
    .await
}

async fn block_height<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(height): Path<String>,
) -> Result<String, ApiError> {
    let h: u32 = height
        .parse()
        .map_err(|_| ApiError::bad("invalid height"))?;
    with_snap(&api, move |v, _| {
        query::block_at(v, h)?
            .map(|b| b.block.hash.to_string())
            .ok_or_else(|| ApiError::not_found("block height out of range"))
    })
    .await
}

fn status_json(t: &query::TxInfo) -> Value {
    json!({"confirmed": true, "block_height": t.block.height,
           "block_hash": t.block.hash, "block_time": t.block_time})
}

/// The index's record of `txid`, or 404.
async fn tx_info<S: Store + 'static>(
    api: &Shared<S>,
    txid: &str,
) -> Result<query::TxInfo, ApiError> {
    let txid = parse_txid(txid)?;
    with_snap(api, move |v, _| {
        query::tx(v, &txid)?.ok_or_else(|| ApiError::not_found("transaction not found"))
    })
    .await
}

/// The serialized transaction `t` from the node, checked against its txid.
fn fetch_tx(c: &mut RpcClient, t: &query::TxInfo) -> Result<(Vec<u8>, Transaction), ApiError> {
    let raw = c.raw_transaction(&t.txid, &t.block.hash)?;
    let tx = decode_tx(&raw, &t.txid)?;
    Ok((raw, tx))
}

fn decode_tx(raw: &[u8], txid: &Txid) -> Result<Transaction, ApiError> {
    let tx: Transaction = btq_core::encoding::decode_from_slice(raw)
        .map_err(|e| ApiError::bad_gateway(format!("node sent an undecodable transaction: {e}")))?;
    if tx.txid() != *txid {
        return Err(ApiError::bad_gateway("node sent another transaction"));
    }
    Ok(tx)
}

async fn tx_status<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(txid): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(status_json(&tx_info(&api, &txid).await?)))
}

async fn tx_hex<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(txid): Path<String>,
) -> Result<String, ApiError> {
    let t = tx_info(&api, &txid).await?;
    with_node(&api, move |c, _| Ok(hex::encode(fetch_tx(c, &t)?.0))).await
}

async fn tx_raw<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(txid): Path<String>,
) -> Result<Response, ApiError> {
    let t = tx_info(&api, &txid).await?;
    let raw = with_node(&api, move |c, _| Ok(fetch_tx(c, &t)?.0)).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        raw,
    )
        .into_response())
}

async fn tx<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(txid): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let t = tx_info(&api, &txid).await?;
    if api.node.is_none() {
        return Ok(axum::Json(json!({
            "txid": t.txid,
            "status": status_json(&t),
            "index": t.index,
            "weight": t.weight,
            "vsize": t.vsize,
            "size": t.size,
            "fee": t.fee,
        })));
    }
    let tx = with_node(&api, move |c, _| Ok(fetch_tx(c, &t)?.1)).await?;
    // Where each parent confirmed (one snapshot), capped at MAX_PREVOUT_TXS parents.
    let mut parents: Vec<Txid> = Vec::new();
    for i in tx.input.iter().filter(|_| !tx.is_coinbase()) {
        let p = i.previous_output.txid;
        if parents.len() < MAX_PREVOUT_TXS && !parents.contains(&p) {
            parents.push(p);
        }
    }
    let located = with_snap(&api, move |v, _| {
        let mut out = Vec::with_capacity(parents.len());
        for p in parents {
            if let Some(pt) = query::tx(v, &p)? {
                out.push((p, pt.block.hash));
            }
        }
        Ok(out)
    })
    .await?;
    let prevs = with_node(&api, move |c, _| {
        let mut prevs: HashMap<Txid, Transaction> = HashMap::with_capacity(located.len());
        for chunk in located.chunks(PREVOUT_BATCH) {
            for ((p, _), raw) in chunk.iter().zip(c.raw_transactions(chunk)?) {
                prevs.insert(*p, decode_tx(&raw?, p)?);
            }
        }
        Ok(prevs)
    })
    .await?;
    Ok(axum::Json(tx_json(&tx, &t, &prevs, api.network)))
}

fn txout_json(o: &TxOut, network: Network) -> Value {
    let mut j = json!({
        "scriptpubkey": hex::encode(o.script_pubkey.as_bytes()),
        "scriptpubkey_type": o.script_pubkey.script_type().rpc_name(),
        "value": o.value,
    });
    if let (Ok(a), Some(m)) = (
        Address::from_script(&o.script_pubkey, network),
        j.as_object_mut(),
    ) {
        m.insert("scriptpubkey_address".into(), Value::String(a.to_string()));
    }
    j
}

/// Esplora's transaction JSON.
fn tx_json(
    tx: &Transaction,
    t: &query::TxInfo,
    prevs: &HashMap<Txid, Transaction>,
    network: Network,
) -> Value {
    let coinbase = tx.is_coinbase();
    let vin: Vec<Value> = tx
        .input
        .iter()
        .map(|i| {
            let op = &i.previous_output;
            let prevout = prevs
                .get(&op.txid)
                .and_then(|p| p.output.get(usize::try_from(op.vout).ok()?))
                .map_or(Value::Null, |o| txout_json(o, network));
            json!({
                "txid": op.txid,
                "vout": op.vout,
                "prevout": if coinbase { Value::Null } else { prevout },
                "scriptsig": hex::encode(i.script_sig.as_bytes()),
                "witness": i.witness.items().iter().map(hex::encode).collect::<Vec<_>>(),
                "is_coinbase": coinbase,
                "sequence": i.sequence,
            })
        })
        .collect();
    let vout: Vec<Value> = tx.output.iter().map(|o| txout_json(o, network)).collect();
    json!({
        "txid": t.txid,
        "version": tx.version,
        "locktime": tx.lock_time,
        "vin": vin,
        "vout": vout,
        "size": t.size,
        "weight": t.weight,
        "vsize": t.vsize,
        "fee": t.fee,
        "index": t.index,
        "status": status_json(t),
    })
}

fn stats_json(
    v: &impl crate::view::ReadView,
    sh: &ScriptHash,
    address: Option<String>,
) -> Result<Value, ApiError> {
    let st = query::script_stats(v, sh)?;
    let zero = crate::schema::ScriptStats::default();
    let mut o = json!({
        "scripthash": sh,
        "chain_stats": st,
        "mempool_stats": zero,
        "balance": st.balance(),
    });
    if let (Some(a), Some(m)) = (address, o.as_object_mut()) {
        m.insert("address".into(), Value::String(a));
    }
    Ok(o)
}

#[derive(Debug, Deserialize)]
struct TxsParams {
    before_height: Option<u32>,
    before_index: Option<u32>,
    limit: Option<usize>,
}

fn history_json(
    v: &impl crate::view::ReadView,
    sh: &ScriptHash,
    before: Option<HistoryCursor>,
    limit: Option<usize>,
) -> Result<Value, ApiError> {
    let limit = limit.unwrap_or(25).clamp(1, MAX_HISTORY_PAGE);
    let h = query::history(v, sh, before, limit)?;
    let mut out = Vec::with_capacity(h.len());
    let mut cache: Option<(u32, query::BlockInfo)> = None;
    for e in h {
        let blk = match &cache {
            Some((ch, b)) if *ch == e.height => b.clone(),
            _ => {
                let b = query::block_at(v, e.height)?.ok_or_else(|| {
                    ApiError::from(QueryError::Store(
                        crate::schema::corrupt(
                            crate::schema::Table::History,
                            "history row above the tip",
                        )
                        .into(),
                    ))
                })?;
                cache = Some((e.height, b.clone()));
                b
            }
        };
        out.push(json!({
            "txid": e.txid,
            "status": {"confirmed": true, "block_height": e.height,
                       "block_hash": blk.block.hash, "block_time": blk.header.time},
            "index": e.index,
            "funded": e.funded,
            "spent": e.spent,
            "balance_after": e.balance_after,
        }));
    }
    Ok(Value::Array(out))
}

fn cursor_of_txid(v: &impl crate::view::ReadView, last: &str) -> Result<HistoryCursor, ApiError> {
    let txid = parse_txid(last)?;
    let t = query::tx(v, &txid)?.ok_or_else(|| ApiError::not_found("last_seen_txid not found"))?;
    Ok(HistoryCursor {
        height: t.block.height,
        index: t.index,
    })
}

fn cursor_of(p: &TxsParams) -> Result<Option<HistoryCursor>, ApiError> {
    match (p.before_height, p.before_index) {
        (Some(height), Some(index)) => Ok(Some(HistoryCursor { height, index })),
        (None, None) => Ok(None),
        _ => Err(ApiError::bad("give both before_height and before_index")),
    }
}

fn utxo_json(v: &impl crate::view::ReadView, sh: &ScriptHash) -> Result<Value, ApiError> {
    let u = query::utxos(v, sh, query::MAX_PAGE)?;
    Ok(Value::Array(
        u.into_iter()
            .map(|u| {
                json!({"txid": u.txid, "vout": u.vout, "value": u.value,
                       "status": {"confirmed": true, "block_height": u.height}})
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
struct BalanceParams {
    height: Option<u32>,
}

fn balance_json(
    v: &impl crate::view::ReadView,
    sh: &ScriptHash,
    height: Option<u32>,
) -> Result<Value, ApiError> {
    let tip = query::tip(v)?;
    match height {
        None => Ok(json!({"balance": query::balance(v, sh)?,
                          "height": tip.map(|t| t.block.height)})),
        Some(h) => {
            if tip.is_none_or(|t| h > t.block.height) {
                return Err(ApiError::not_found("height above the indexed tip"));
            }
            Ok(json!({"balance": query::balance_at(v, sh, h)?, "height": h}))
        }
    }
}

async fn addr_stats<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(a): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let (sh, s) = parse_address(&a, api.network)?;
    with_snap(&api, move |v, _| {
        stats_json(v, &sh, Some(s)).map(axum::Json)
    })
    .await
}

async fn addr_txs<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(a): Path<String>,
    Query(p): Query<TxsParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let (sh, _) = parse_address(&a, api.network)?;
    let c = cursor_of(&p)?;
    with_snap(&api, move |v, _| {
        history_json(v, &sh, c, p.limit).map(axum::Json)
    })
    .await
}

async fn addr_txs_after<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path((a, last)): Path<(String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    let (sh, _) = parse_address(&a, api.network)?;
    with_snap(&api, move |v, _| {
        let c = cursor_of_txid(v, &last)?;
        history_json(v, &sh, Some(c), None).map(axum::Json)
    })
    .await
}

async fn addr_utxo<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(a): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let (sh, _) = parse_address(&a, api.network)?;
    with_snap(&api, move |v, _| utxo_json(v, &sh).map(axum::Json)).await
}

async fn addr_balance<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(a): Path<String>,
    Query(p): Query<BalanceParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let (sh, _) = parse_address(&a, api.network)?;
    with_snap(&api, move |v, _| {
        balance_json(v, &sh, p.height).map(axum::Json)
    })
    .await
}

async fn sh_stats<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(s): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let sh = parse_sh(&s)?;
    with_snap(&api, move |v, net| {
        let addr = query::script(v, &sh)?
            .and_then(|spk| Address::from_script(&spk, net).ok())
            .map(|a| a.to_string());
        stats_json(v, &sh, addr).map(axum::Json)
    })
    .await
}

async fn sh_txs<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(s): Path<String>,
    Query(p): Query<TxsParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let sh = parse_sh(&s)?;
    let c = cursor_of(&p)?;
    with_snap(&api, move |v, _| {
        history_json(v, &sh, c, p.limit).map(axum::Json)
    })
    .await
}

async fn sh_txs_after<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path((s, last)): Path<(String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    let sh = parse_sh(&s)?;
    with_snap(&api, move |v, _| {
        let c = cursor_of_txid(v, &last)?;
        history_json(v, &sh, Some(c), None).map(axum::Json)
    })
    .await
}

async fn sh_utxo<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(s): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let sh = parse_sh(&s)?;
    with_snap(&api, move |v, _| utxo_json(v, &sh).map(axum::Json)).await
}

async fn sh_balance<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(s): Path<String>,
    Query(p): Query<BalanceParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let sh = parse_sh(&s)?;
    with_snap(&api, move |v, _| {
        balance_json(v, &sh, p.height).map(axum::Json)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct RangeParams {
    from: Option<u64>,
    to: Option<u64>,
    step: Option<u32>,
    limit: Option<usize>,
}

async fn difficulty<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Query(p): Query<RangeParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let from =
        u32::try_from(p.from.unwrap_or(0)).map_err(|_| ApiError::bad("from out of range"))?;
    let to = u32::try_from(p.to.unwrap_or(u64::from(u32::MAX)))
        .map_err(|_| ApiError::bad("to out of range"))?;
    if from > to {
        return Err(ApiError::bad("from > to"));
    }
    let step = p.step.unwrap_or(1).max(1);
    with_snap(&api, move |v, _| {
        let s = query::difficulty_series(v, from, to, step)?;
        Ok(axum::Json(serde_json::to_value(s).unwrap_or(Value::Null)))
    })
    .await
}

async fn pools<S: Store + 'static>(
    State(api): State<Shared<S>>,
) -> Result<axum::Json<Value>, ApiError> {
    with_snap(&api, move |v, net| {
        let d = query::pool_distribution(v)?;
        let total: u64 = d.iter().map(|x| x.1).sum();
        let rows: Vec<Value> = d
            .into_iter()
            .map(|(k, n)| {
                let payout = match &k {
                    crate::schema::PoolKey::Unknown(sh) => query::script(v, sh)
                        .ok()
                        .flatten()
                        .and_then(|s| Address::from_script(&s, net).ok())
                        .map(|a| a.to_string()),
                    _ => None,
                };
                json!({"pool": k, "blocks": n, "payout_address": payout})
            })
            .collect();
        Ok(axum::Json(json!({"blocks": total, "pools": rows})))
    })
    .await
}

async fn buckets<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Query(p): Query<RangeParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let from = p.from.unwrap_or(0);
    let to = p.to.unwrap_or(u64::MAX);
    with_snap(&api, move |v, _| {
        let b = query::blocks_per_bucket(v, from, to)?;
        Ok(axum::Json(Value::Array(
            b.into_iter()
                .map(|(t, n)| json!({"start": t, "blocks": n}))
                .collect(),
        )))
    })
    .await
}

async fn richlist<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Query(p): Query<RangeParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    with_snap(&api, move |v, net| {
        let r = query::rich_list(v, limit)?;
        Ok(axum::Json(Value::Array(
            r.into_iter()
                .map(|e| {
                    let addr = Address::from_script(&e.script_pubkey, net)
                        .ok()
                        .map(|a| a.to_string());
                    json!({"scripthash": e.scripthash, "address": addr,
                           "script_pubkey": hex::encode(e.script_pubkey.as_bytes()),
                           "balance": e.balance})
                })
                .collect(),
        )))
    })
    .await
}
