//! The HTTP JSON API, modelled on Esplora's REST API, plus explorer endpoints.
//!
//! Every request reads one store snapshot (on a blocking thread), so the parts of one answer
//! agree. Differences from Esplora: transactions are not stored, so `/tx/:txid` returns where
//! the transaction confirmed with its weight, vsize (⌈weight/16⌉) and fee, and history entries
//! carry the funded/spent amounts and the balance after each transaction; `mempool_stats` is
//! always zero (the index is confirmed-only).
//!
//! | path | answer |
//! | --- | --- |
//! | `/blocks/tip/height`, `/blocks/tip/hash` | text |
//! | `/block/:hash`, `/block/:hash/txids`, `/block-height/:height` (text hash) | block |
//! | `/tx/:txid` | position, weight, vsize, fee |
//! | `/address/:a`, `/scripthash/:h` | `chain_stats`, balance |
//! | `…/txs` (`?before_height=&before_index=` or `…/txs/chain/:last_seen_txid`), `…/utxo`, `…/balance?height=` | |
//! | `/explorer/difficulty?from=&to=&step=`, `/explorer/pools`, `/explorer/blocks-per-bucket?from=&to=`, `/explorer/richlist?limit=` | aggregates |
//!
//! Bad input gets 400, unknown things 404, both with `{"error": "..."}`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use btq_core::Address;
use btq_core::hash::{BlockHash, Txid};
use btq_core::params::Network;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::query::{self, HistoryCursor, QueryError};
use crate::schema::ScriptHash;
use crate::store::Store;

/// Page size of history lists (Esplora's 25, larger on request up to this).
pub const MAX_HISTORY_PAGE: usize = 100;

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

struct Api<S> {
    store: Arc<S>,
    network: Network,
}

type Shared<S> = Arc<Api<S>>;

/// Builds the router over `store`, rendering addresses for `network`.
pub fn router<S: Store + 'static>(store: Arc<S>, network: Network) -> Router {
    let api = Arc::new(Api { store, network });
    Router::new()
        .route("/blocks/tip/height", get(tip_height::<S>))
        .route("/blocks/tip/hash", get(tip_hash::<S>))
        .route("/block/{hash}", get(block::<S>))
        .route("/block/{hash}/txids", get(block_txids::<S>))
        .route("/block-height/{height}", get(block_height::<S>))
        .route("/tx/{txid}", get(tx::<S>))
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
    .map_err(|_| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: "worker failed".into(),
    })?
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

async fn tx<S: Store + 'static>(
    State(api): State<Shared<S>>,
    Path(txid): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let txid = parse_txid(&txid)?;
    with_snap(&api, move |v, _| {
        let t = query::tx(v, &txid)?.ok_or_else(|| ApiError::not_found("transaction not found"))?;
        Ok(axum::Json(json!({
            "txid": t.txid,
            "status": {"confirmed": true, "block_height": t.block.height,
                       "block_hash": t.block.hash, "block_time": t.block_time},
            "index": t.index,
            "weight": t.weight,
            "vsize": t.vsize,
            "size": t.size,
            "fee": t.fee,
        })))
    })
    .await
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
