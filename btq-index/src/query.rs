//! Queries over one consistent view: balances, history, UTXOs, transactions, blocks and the
//! explorer aggregates.
//!
//! Open one snapshot per request and run every query of that request on it; the answers then
//! agree with each other (a balance equals the sum of the history it came with).

use btq_core::block::BlockHeader;
use btq_core::hash::{BlockHash, Txid};
use btq_core::script::ScriptBuf;
use serde::Serialize;
use thiserror::Error;

use crate::indexer::read_tip;
use crate::schema::{
    BlockRecord, BlockRef, HistoryRecord, PoolKey, ScriptHash, ScriptStats, Table, Tip, TxRecord,
    decode_u32, decode_u64, height_key, history_key, prefix_end,
};
use crate::view::{Direction, ReadView, StoreError};

/// Largest page any list query returns.
pub const MAX_PAGE: usize = 10_000;

/// An error answering a query.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::schema::CorruptRecordError> for QueryError {
    fn from(e: crate::schema::CorruptRecordError) -> Self {
        Self::Store(StoreError::Corrupt(e))
    }
}

type R<T> = Result<T, QueryError>;

/// One transaction in a script's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The transaction.
    pub txid: Txid,
    /// The height of its block.
    pub height: u32,
    /// Its position in the block.
    pub index: u32,
    /// Satoshis it paid to the script.
    pub funded: u64,
    /// Satoshis of the script it spent.
    pub spent: u64,
    /// The script's balance after it.
    pub balance_after: u64,
}

/// A position in a history, for paging: entries strictly older than it are returned next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HistoryCursor {
    /// Block height.
    pub height: u32,
    /// Position in the block.
    pub index: u32,
}

/// An unspent output of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Utxo {
    /// The transaction.
    pub txid: Txid,
    /// The output index.
    pub vout: u32,
    /// The value in satoshis.
    pub value: u64,
    /// The height of the block that created it.
    pub height: u32,
}

/// Where a transaction confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TxInfo {
    /// The transaction.
    pub txid: Txid,
    /// Its block.
    pub block: BlockRef,
    /// Its block's time.
    pub block_time: u32,
    /// Its position in the block.
    pub index: u32,
    /// Its weight.
    pub weight: u64,
    /// Its virtual size, ⌈weight / 16⌉ (not the node's RPC `vsize`, which prints the weight).
    pub vsize: u64,
    /// Its serialized size.
    pub size: u32,
    /// Its fee in satoshis (0 for the coinbase).
    pub fee: u64,
}

/// A block as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    /// Height and hash.
    pub block: BlockRef,
    /// The header.
    pub header: BlockHeader,
    /// Chain work up to and including this block.
    pub chain_work: btq_core::pow::Work,
    /// Number of transactions.
    pub tx_count: u32,
    /// Serialized size.
    pub size: u32,
    /// Weight.
    pub weight: u64,
    /// Who mined it.
    pub pool: PoolKey,
}

impl BlockInfo {
    /// Returns the difficulty of the block's target.
    pub fn difficulty(&self) -> f64 {
        self.header.difficulty()
    }

    fn from_record(height: u32, r: BlockRecord) -> Self {
        Self {
            block: BlockRef {
                height,
                hash: r.hash,
            },
            header: r.header,
            chain_work: r.chain_work,
            tx_count: r.tx_count,
            size: r.size,
            weight: r.weight,
            pool: r.pool,
        }
    }
}

/// One point of the difficulty and chain-work series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DifficultyPoint {
    /// Height.
    pub height: u32,
    /// Block time.
    pub time: u32,
    /// Difficulty.
    pub difficulty: f64,
    /// Chain work, hex.
    pub chain_work: String,
}

/// A rich-list entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RichEntry {
    /// The script hash.
    pub scripthash: ScriptHash,
    /// The scriptPubKey (hex in JSON).
    #[serde(serialize_with = "ser_script")]
    pub script_pubkey: ScriptBuf,
    /// The balance in satoshis.
    pub balance: u64,
}

fn ser_script<S: serde::Serializer>(s: &ScriptBuf, ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_str(&hex::encode(s.as_bytes()))
}

/// Returns the tip.
///
/// # Errors
/// A store failure.
pub fn tip(v: &(impl ReadView + ?Sized)) -> R<Option<Tip>> {
    Ok(read_tip(v)?)
}

/// Returns a script's confirmed statistics (zero for an unknown script).
///
/// # Errors
/// A store failure.
pub fn script_stats(v: &(impl ReadView + ?Sized), sh: &ScriptHash) -> R<ScriptStats> {
    match v.get(Table::Stats, sh.as_byte_array())? {
        Some(b) => Ok(ScriptStats::decode(&b)?),
        None => Ok(ScriptStats::default()),
    }
}

/// Returns a script's confirmed balance.
///
/// # Errors
/// A store failure.
pub fn balance(v: &(impl ReadView + ?Sized), sh: &ScriptHash) -> R<u64> {
    Ok(script_stats(v, sh)?.balance())
}

/// Returns a script's balance after the block at `height` (its balance as of that height).
///
/// # Errors
/// A store failure.
pub fn balance_at(v: &(impl ReadView + ?Sized), sh: &ScriptHash, height: u32) -> R<u64> {
    let start = sh.as_byte_array().to_vec();
    let end = match height.checked_add(1) {
        Some(h) => Some(history_key(sh, h, 0)),
        None => prefix_end(&start),
    };
    let rows = v.scan(
        Table::History,
        &start,
        end.as_deref(),
        Direction::Reverse,
        1,
    )?;
    match rows.first() {
        Some((_, val)) => Ok(HistoryRecord::decode(val)?.balance_after),
        None => Ok(0),
    }
}

fn split_pos(key: &[u8], table: Table) -> R<(u32, u32)> {
    let tail = key
        .len()
        .checked_sub(8)
        .and_then(|s| key.get(s..))
        .ok_or(crate::schema::corrupt(table, "short key"))?;
    let mut c = crate::schema::Cursor::new(tail, table);
    Ok((c.u32_be()?, c.u32_be()?))
}

/// Returns up to `limit` (at most [`MAX_PAGE`]) history entries of a script, newest first,
/// strictly older than `before` when given.
///
/// # Errors
/// A store failure.
pub fn history(
    v: &(impl ReadView + ?Sized),
    sh: &ScriptHash,
    before: Option<HistoryCursor>,
    limit: usize,
) -> R<Vec<HistoryEntry>> {
    let start = sh.as_byte_array().to_vec();
    let end = match before {
        Some(c) => Some(history_key(sh, c.height, c.index)),
        None => prefix_end(&start),
    };
    let rows = v.scan(
        Table::History,
        &start,
        end.as_deref(),
        Direction::Reverse,
        limit.min(MAX_PAGE),
    )?;
    rows.into_iter()
        .map(|(k, val)| {
            let (height, index) = split_pos(&k, Table::History)?;
            let r = HistoryRecord::decode(&val)?;
            Ok(HistoryEntry {
                txid: r.txid,
                height,
                index,
                funded: r.funded,
                spent: r.spent,
                balance_after: r.balance_after,
            })
        })
        .collect()
}

/// Returns up to `limit` (at most [`MAX_PAGE`]) unspent outputs of a script, oldest first.
///
/// # Errors
/// A store failure.
pub fn utxos(v: &(impl ReadView + ?Sized), sh: &ScriptHash, limit: usize) -> R<Vec<Utxo>> {
    let start = sh.as_byte_array().to_vec();
    let end = prefix_end(&start);
    let rows = v.scan(
        Table::SpkUtxos,
        &start,
        end.as_deref(),
        Direction::Forward,
        limit.min(MAX_PAGE),
    )?;
    rows.into_iter()
        .map(|(k, val)| {
            let t = Table::SpkUtxos;
            let mut c = crate::schema::Cursor::new(&k, t);
            c.hash32()?;
            let height = c.u32_be()?;
            let txid = Txid::from_byte_array(c.hash32()?);
            let vout = c.u32_be()?;
            Ok(Utxo {
                txid,
                vout,
                value: decode_u64(&val, t)?,
                height,
            })
        })
        .collect()
}

/// Returns the scriptPubKey of a script hash the index has seen.
///
/// # Errors
/// A store failure.
pub fn script(v: &(impl ReadView + ?Sized), sh: &ScriptHash) -> R<Option<ScriptBuf>> {
    Ok(v.get(Table::Scripts, sh.as_byte_array())?
        .map(ScriptBuf::from_bytes))
}

/// Returns the block at `height` of the indexed chain.
///
/// # Errors
/// A store failure.
pub fn block_at(v: &(impl ReadView + ?Sized), height: u32) -> R<Option<BlockInfo>> {
    match v.get(Table::Headers, &height_key(height))? {
        Some(b) => Ok(Some(BlockInfo::from_record(
            height,
            BlockRecord::decode(&b)?,
        ))),
        None => Ok(None),
    }
}

/// Returns the height of a block of the indexed chain.
///
/// # Errors
/// A store failure.
pub fn height_of(v: &(impl ReadView + ?Sized), hash: &BlockHash) -> R<Option<u32>> {
    match v.get(Table::BlockHeight, hash.as_byte_array())? {
        Some(b) => Ok(Some(decode_u32(&b, Table::BlockHeight)?)),
        None => Ok(None),
    }
}

/// Returns a block of the indexed chain by hash.
///
/// # Errors
/// A store failure.
pub fn block_by_hash(v: &(impl ReadView + ?Sized), hash: &BlockHash) -> R<Option<BlockInfo>> {
    match height_of(v, hash)? {
        Some(h) => block_at(v, h),
        None => Ok(None),
    }
}

/// Returns up to `limit` (at most [`MAX_PAGE`]) txids of the block at `height` from position
/// `start`.
///
/// # Errors
/// A store failure.
pub fn block_txids(
    v: &(impl ReadView + ?Sized),
    height: u32,
    start: u32,
    limit: usize,
) -> R<Vec<Txid>> {
    let Some(row) = v.get(Table::BlockTxs, &height_key(height))? else {
        return Ok(Vec::new());
    };
    if row.len() % 32 != 0 {
        return Err(
            crate::schema::corrupt(Table::BlockTxs, "length is not a multiple of 32").into(),
        );
    }
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    Ok(row
        .chunks_exact(32)
        .skip(start)
        .take(limit.min(MAX_PAGE))
        .filter_map(|c| <[u8; 32]>::try_from(c).ok().map(Txid::from_byte_array))
        .collect())
}

/// Returns where a transaction confirmed.
///
/// # Errors
/// A store failure.
pub fn tx(v: &(impl ReadView + ?Sized), txid: &Txid) -> R<Option<TxInfo>> {
    let Some(b) = v.get(Table::Txs, txid.as_byte_array())? else {
        return Ok(None);
    };
    let r = TxRecord::decode(&b)?;
    let blk = block_at(v, r.height)?.ok_or(crate::schema::corrupt(
        Table::Txs,
        "transaction of a block not in the index",
    ))?;
    Ok(Some(TxInfo {
        txid: *txid,
        block: blk.block,
        block_time: blk.header.time,
        index: r.index,
        weight: r.weight,
        vsize: r.weight.div_ceil(btq_core::tx::WITNESS_SCALE_FACTOR),
        size: r.size,
        fee: r.fee,
    }))
}

/// Returns the difficulty and chain-work series for heights `from..=to`, one point every
/// `step` blocks (at most [`MAX_PAGE`] points).
///
/// # Errors
/// A store failure.
pub fn difficulty_series(
    v: &(impl ReadView + ?Sized),
    from: u32,
    to: u32,
    step: u32,
) -> R<Vec<DifficultyPoint>> {
    let step = step.max(1);
    let mut out = Vec::new();
    let mut h = from;
    while h <= to && out.len() < MAX_PAGE {
        match block_at(v, h)? {
            Some(b) => out.push(DifficultyPoint {
                height: h,
                time: b.header.time,
                difficulty: b.difficulty(),
                chain_work: format!("{:x}", b.chain_work.to_u256()),
            }),
            None => break,
        }
        match h.checked_add(step) {
            Some(n) => h = n,
            None => break,
        }
    }
    Ok(out)
}

/// Returns the number of blocks per pool, most blocks first.
///
/// # Errors
/// A store failure.
pub fn pool_distribution(v: &(impl ReadView + ?Sized)) -> R<Vec<(PoolKey, u64)>> {
    let rows = v.scan(Table::Pools, &[], None, Direction::Forward, usize::MAX)?;
    let mut out = rows
        .into_iter()
        .map(|(k, val)| {
            Ok((
                PoolKey::from_bytes(&k, Table::Pools)?,
                decode_u64(&val, Table::Pools)?,
            ))
        })
        .collect::<R<Vec<_>>>()?;
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

/// Returns (bucket start, blocks) for buckets starting in `from..to` (unix seconds), oldest
/// first, at most [`MAX_PAGE`].
///
/// # Errors
/// A store failure.
pub fn blocks_per_bucket(v: &(impl ReadView + ?Sized), from: u64, to: u64) -> R<Vec<(u64, u64)>> {
    let rows = v.scan(
        Table::TimeBuckets,
        &from.to_be_bytes(),
        Some(&to.to_be_bytes()),
        Direction::Forward,
        MAX_PAGE,
    )?;
    rows.into_iter()
        .map(|(k, val)| {
            let a = <[u8; 8]>::try_from(k.as_slice())
                .map_err(|_| crate::schema::corrupt(Table::TimeBuckets, "bad key"))?;
            Ok((u64::from_be_bytes(a), decode_u64(&val, Table::TimeBuckets)?))
        })
        .collect()
}

/// Returns the `limit` (at most [`MAX_PAGE`]) scripts with the largest balances.
///
/// # Errors
/// A store failure.
pub fn rich_list(v: &(impl ReadView + ?Sized), limit: usize) -> R<Vec<RichEntry>> {
    let rows = v.scan(
        Table::Rich,
        &[],
        None,
        Direction::Forward,
        limit.min(MAX_PAGE),
    )?;
    rows.into_iter()
        .map(|(k, _)| {
            let t = Table::Rich;
            let mut c = crate::schema::Cursor::new(&k, t);
            let inv = u64::from_be_bytes(c.array()?);
            let sh = ScriptHash::from_byte_array(c.hash32()?);
            let script_pubkey = script(v, &sh)?.unwrap_or_default();
            Ok(RichEntry {
                scripthash: sh,
                script_pubkey,
                balance: u64::MAX - inv,
            })
        })
        .collect()
}

/// Returns SHA-256 over every row of every table, in order: equal checksums mean equal stores.
///
/// # Errors
/// A store failure.
pub fn checksum(v: &(impl ReadView + ?Sized)) -> R<[u8; 32]> {
    checksum_of(v, &Table::ALL)
}

/// Returns SHA-256 over every row of the given tables, in order.
///
/// # Errors
/// A store failure.
pub fn checksum_of(v: &(impl ReadView + ?Sized), tables: &[Table]) -> R<[u8; 32]> {
    let mut buf = Vec::new();
    for &t in tables {
        for (k, val) in v.scan(t, &[], None, Direction::Forward, usize::MAX)? {
            buf.push(t.id());
            buf.extend_from_slice(&(k.len() as u64).to_le_bytes());
            buf.extend_from_slice(&k);
            buf.extend_from_slice(&(val.len() as u64).to_le_bytes());
            buf.extend_from_slice(&val);
        }
    }
    Ok(btq_core::hash::sha256(&buf))
}
