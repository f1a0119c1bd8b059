//! The logical tables every store holds, their key layouts and their record encodings.
//!
//! Every table maps byte keys to byte values. Integers in keys are big-endian so that byte order
//! is numeric order; values are little-endian. Stores only see `(Table, key, value)` rows, so the
//! three backends hold byte-identical data and one checksum covers all of them.

use core::fmt;
use core::str::FromStr;

use btq_core::block::BlockHeader;
use btq_core::hash::{BlockHash, Txid};
use btq_core::pow::{U256, Work};
use serde::{Serialize, Serializer};
use thiserror::Error;

/// A logical table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Table {
    /// `"tip"` → the tip record.
    Meta,
    /// height (u32 BE) → block record.
    Headers,
    /// block hash → height.
    BlockHeight,
    /// height (u32 BE) → the block's txids in block order, 32 bytes each (one row per block).
    BlockTxs,
    /// txid → tx record (height, index, weight, size, fee).
    Txs,
    /// txid ‖ vout → UTXO record (script hash, value, height).
    Utxos,
    /// script hash ‖ height ‖ txid ‖ vout → value.
    SpkUtxos,
    /// script hash ‖ height ‖ index → history record (txid, funded, spent, balance after).
    History,
    /// script hash → per-script statistics.
    Stats,
    /// script hash → scriptPubKey bytes.
    Scripts,
    /// (`u64::MAX` − balance) BE ‖ script hash → empty; the rich list in balance order.
    Rich,
    /// pool key → number of blocks.
    Pools,
    /// bucket start (unix seconds, u64 BE) → number of blocks.
    TimeBuckets,
    /// height → the inverse rows of that block (kept for the reorg depth limit).
    Undo,
}

impl Table {
    /// Every table, in id order.
    pub const ALL: [Self; 14] = [
        Self::Meta,
        Self::Headers,
        Self::BlockHeight,
        Self::BlockTxs,
        Self::Txs,
        Self::Utxos,
        Self::SpkUtxos,
        Self::History,
        Self::Stats,
        Self::Scripts,
        Self::Rich,
        Self::Pools,
        Self::TimeBuckets,
        Self::Undo,
    ];

    /// Returns the table's stable numeric id.
    pub const fn id(self) -> u8 {
        match self {
            Self::Meta => 0,
            Self::Headers => 1,
            Self::BlockHeight => 2,
            Self::BlockTxs => 3,
            Self::Txs => 4,
            Self::Utxos => 5,
            Self::SpkUtxos => 6,
            Self::History => 7,
            Self::Stats => 8,
            Self::Scripts => 9,
            Self::Rich => 10,
            Self::Pools => 11,
            Self::TimeBuckets => 12,
            Self::Undo => 13,
        }
    }

    /// Returns the table with id `id`.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    /// Returns the table's name (used for redb tables and PostgreSQL table names).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Meta => "meta",
            Self::Headers => "headers",
            Self::BlockHeight => "block_height",
            Self::BlockTxs => "block_txs",
            Self::Txs => "txs",
            Self::Utxos => "utxos",
            Self::SpkUtxos => "spk_utxos",
            Self::History => "history",
            Self::Stats => "stats",
            Self::Scripts => "scripts",
            Self::Rich => "rich",
            Self::Pools => "pools",
            Self::TimeBuckets => "time_buckets",
            Self::Undo => "undo",
        }
    }
}

/// A record that does not decode: the store holds bytes this version did not write.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("corrupt {table:?} record: {what}")]
pub struct CorruptRecordError {
    /// The table.
    pub table: Table,
    /// What is wrong.
    pub what: &'static str,
}

pub(crate) const fn corrupt(table: Table, what: &'static str) -> CorruptRecordError {
    CorruptRecordError { table, what }
}

/// SHA-256 of a scriptPubKey: the key of every per-script table (Electrum's "scripthash").
///
/// Displayed and parsed in Electrum's byte order (reversed), as Esplora's `/scripthash/:hash`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScriptHash([u8; 32]);

impl ScriptHash {
    /// Hashes a scriptPubKey.
    pub fn of(script_pubkey: &[u8]) -> Self {
        Self(btq_core::hash::sha256(script_pubkey))
    }

    /// Wraps raw (unreversed) SHA-256 bytes.
    pub const fn from_byte_array(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// Returns the raw (unreversed) SHA-256 bytes.
    pub const fn to_byte_array(self) -> [u8; 32] {
        self.0
    }

    /// Borrows the raw bytes.
    pub const fn as_byte_array(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ScriptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut r = self.0;
        r.reverse();
        f.write_str(&hex::encode(r))
    }
}

impl fmt::Debug for ScriptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScriptHash({self})")
    }
}

/// A script hash string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid script hash: expected 64 hex digits")]
pub struct ParseScriptHashError;

impl FromStr for ScriptHash {
    type Err = ParseScriptHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b: [u8; 32] = btq_core::hex::decode_array(s).map_err(|_| ParseScriptHashError)?;
        b.reverse();
        Ok(Self(b))
    }
}

impl Serialize for ScriptHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A block identified by height and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BlockRef {
    /// The height.
    pub height: u32,
    /// The hash.
    pub hash: BlockHash,
}

/// The indexed tip: the last block whose changeset committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// The tip block.
    pub block: BlockRef,
    /// Total chain work up to and including the tip.
    pub chain_work: Work,
}

pub(crate) const TIP_KEY: &[u8] = b"tip";

// ---------- little helpers that cannot panic ----------

pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    table: Table,
}

impl<'a> Cursor<'a> {
    pub(crate) const fn new(buf: &'a [u8], table: Table) -> Self {
        Self { buf, table }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptRecordError> {
        let (a, b) = self
            .buf
            .split_at_checked(n)
            .ok_or(corrupt(self.table, "truncated"))?;
        self.buf = b;
        Ok(a)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CorruptRecordError> {
        let s = self.take(N)?;
        <[u8; N]>::try_from(s).map_err(|_| corrupt(self.table, "truncated"))
    }
    pub(crate) fn u32_be(&mut self) -> Result<u32, CorruptRecordError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32_le(&mut self) -> Result<u32, CorruptRecordError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64_le(&mut self) -> Result<u64, CorruptRecordError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn u8(&mut self) -> Result<u8, CorruptRecordError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }
    pub(crate) fn hash32(&mut self) -> Result<[u8; 32], CorruptRecordError> {
        self.array()
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }
    pub(crate) fn end(&self) -> Result<(), CorruptRecordError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(corrupt(self.table, "trailing bytes"))
        }
    }
}

pub(crate) fn work_to_bytes(w: Work) -> [u8; 32] {
    w.to_u256().to_be_bytes()
}

pub(crate) fn work_from_bytes(b: [u8; 32]) -> Work {
    Work::from_u256(U256::from_be_bytes(b))
}

/// Returns the smallest key greater than every key starting with `prefix` (None: no bound).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut v = prefix.to_vec();
    while let Some(last) = v.pop() {
        if last < u8::MAX {
            v.push(last.wrapping_add(1));
            return Some(v);
        }
    }
    None
}

// ---------- keys ----------

pub(crate) fn height_key(h: u32) -> [u8; 4] {
    h.to_be_bytes()
}

pub(crate) fn pos_key(h: u32, i: u32) -> [u8; 8] {
    let mut k = [0u8; 8];
    let (a, b) = k.split_at_mut(4);
    a.copy_from_slice(&h.to_be_bytes());
    b.copy_from_slice(&i.to_be_bytes());
    k
}

pub(crate) fn outpoint_key(txid: &Txid, vout: u32) -> [u8; 36] {
    let mut k = [0u8; 36];
    let (a, b) = k.split_at_mut(32);
    a.copy_from_slice(txid.as_byte_array());
    b.copy_from_slice(&vout.to_be_bytes());
    k
}

pub(crate) fn spk_utxo_key(sh: &ScriptHash, height: u32, txid: &Txid, vout: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(72);
    k.extend_from_slice(sh.as_byte_array());
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(&outpoint_key(txid, vout));
    k
}

pub(crate) fn history_key(sh: &ScriptHash, height: u32, index: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(40);
    k.extend_from_slice(sh.as_byte_array());
    k.extend_from_slice(&pos_key(height, index));
    k
}

pub(crate) fn rich_key(balance: u64, sh: &ScriptHash) -> Vec<u8> {
    let mut k = Vec::with_capacity(40);
    k.extend_from_slice(&(u64::MAX - balance).to_be_bytes());
    k.extend_from_slice(sh.as_byte_array());
    k
}

// ---------- records ----------

/// Writes a fixed-size record into an array (no allocation).
struct ArrayWriter<const N: usize> {
    buf: [u8; N],
    pos: usize,
}

impl<const N: usize> ArrayWriter<N> {
    const fn new() -> Self {
        Self {
            buf: [0; N],
            pos: 0,
        }
    }
    fn put(&mut self, b: &[u8]) -> &mut Self {
        let end = self.pos.saturating_add(b.len());
        if let Some(d) = self.buf.get_mut(self.pos..end) {
            d.copy_from_slice(b);
        }
        self.pos = end;
        self
    }
    fn finish(&self) -> [u8; N] {
        debug_assert_eq!(self.pos, N, "record length");
        self.buf
    }
}

pub(crate) fn encode_tip(t: &Tip) -> Vec<u8> {
    let mut v = Vec::with_capacity(68);
    v.extend_from_slice(&t.block.height.to_le_bytes());
    v.extend_from_slice(t.block.hash.as_byte_array());
    v.extend_from_slice(&work_to_bytes(t.chain_work));
    v
}

pub(crate) fn decode_tip(b: &[u8]) -> Result<Tip, CorruptRecordError> {
    let mut c = Cursor::new(b, Table::Meta);
    let height = c.u32_le()?;
    let hash = BlockHash::from_byte_array(c.hash32()?);
    let chain_work = work_from_bytes(c.hash32()?);
    c.end()?;
    Ok(Tip {
        block: BlockRef { height, hash },
        chain_work,
    })
}

/// Who mined a block, as the configured pool list attributes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PoolKey {
    /// A pool of the configured list.
    Named(String),
    /// Not in the list: grouped by the coinbase's payout script.
    Unknown(ScriptHash),
    /// A coinbase without a spendable output.
    NoPayout,
}

impl PoolKey {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Named(n) => {
                let mut v = b"n".to_vec();
                v.extend_from_slice(n.as_bytes());
                v
            }
            Self::Unknown(sh) => {
                let mut v = b"u".to_vec();
                v.extend_from_slice(sh.as_byte_array());
                v
            }
            Self::NoPayout => b"x".to_vec(),
        }
    }

    pub(crate) fn from_bytes(b: &[u8], table: Table) -> Result<Self, CorruptRecordError> {
        match b.split_first() {
            Some((b'n', rest)) => core::str::from_utf8(rest)
                .map(|s| Self::Named(s.to_owned()))
                .map_err(|_| corrupt(table, "pool name is not utf-8")),
            Some((b'u', rest)) => <[u8; 32]>::try_from(rest)
                .map(|a| Self::Unknown(ScriptHash(a)))
                .map_err(|_| corrupt(table, "bad pool script hash")),
            Some((b'x', [])) => Ok(Self::NoPayout),
            _ => Err(corrupt(table, "bad pool key")),
        }
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(n) => f.write_str(n),
            Self::Unknown(sh) => write!(f, "unknown:{sh}"),
            Self::NoPayout => f.write_str("unknown:no-payout"),
        }
    }
}

impl Serialize for PoolKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What the index stores per block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockRecord {
    pub(crate) hash: BlockHash,
    pub(crate) header: BlockHeader,
    pub(crate) chain_work: Work,
    pub(crate) tx_count: u32,
    pub(crate) size: u32,
    pub(crate) weight: u64,
    pub(crate) pool: PoolKey,
}

impl BlockRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let pool = self.pool.to_bytes();
        let mut v = Vec::with_capacity(164 + pool.len());
        v.extend_from_slice(self.hash.as_byte_array());
        v.extend_from_slice(&self.header.to_bytes());
        v.extend_from_slice(&work_to_bytes(self.chain_work));
        v.extend_from_slice(&self.tx_count.to_le_bytes());
        v.extend_from_slice(&self.size.to_le_bytes());
        v.extend_from_slice(&self.weight.to_le_bytes());
        v.extend_from_slice(&pool);
        v
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, CorruptRecordError> {
        let t = Table::Headers;
        let mut c = Cursor::new(b, t);
        let hash = BlockHash::from_byte_array(c.hash32()?);
        let header = BlockHeader::from_bytes(&c.array::<80>()?);
        let chain_work = work_from_bytes(c.hash32()?);
        let tx_count = c.u32_le()?;
        let size = c.u32_le()?;
        let weight = c.u64_le()?;
        let pool = PoolKey::from_bytes(c.rest(), t)?;
        Ok(Self {
            hash,
            header,
            chain_work,
            tx_count,
            size,
            weight,
            pool,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxRecord {
    pub(crate) height: u32,
    pub(crate) index: u32,
    pub(crate) weight: u64,
    pub(crate) size: u32,
    pub(crate) fee: u64,
}

impl TxRecord {
    pub(crate) fn encode_array(&self) -> [u8; 28] {
        ArrayWriter::<28>::new()
            .put(&self.height.to_le_bytes())
            .put(&self.index.to_le_bytes())
            .put(&self.weight.to_le_bytes())
            .put(&self.size.to_le_bytes())
            .put(&self.fee.to_le_bytes())
            .finish()
    }
    pub(crate) fn decode(b: &[u8]) -> Result<Self, CorruptRecordError> {
        let mut c = Cursor::new(b, Table::Txs);
        let r = Self {
            height: c.u32_le()?,
            index: c.u32_le()?,
            weight: c.u64_le()?,
            size: c.u32_le()?,
            fee: c.u64_le()?,
        };
        c.end()?;
        Ok(r)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UtxoRecord {
    pub(crate) script: ScriptHash,
    pub(crate) value: u64,
    pub(crate) height: u32,
    pub(crate) coinbase: bool,
}

impl UtxoRecord {
    pub(crate) fn encode_array(&self) -> [u8; 45] {
        ArrayWriter::<45>::new()
            .put(self.script.as_byte_array())
            .put(&self.value.to_le_bytes())
            .put(&self.height.to_le_bytes())
            .put(&[u8::from(self.coinbase)])
            .finish()
    }
    pub(crate) fn decode(b: &[u8]) -> Result<Self, CorruptRecordError> {
        let mut c = Cursor::new(b, Table::Utxos);
        let r = Self {
            script: ScriptHash(c.hash32()?),
            value: c.u64_le()?,
            height: c.u32_le()?,
            coinbase: c.u8()? != 0,
        };
        c.end()?;
        Ok(r)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HistoryRecord {
    pub(crate) txid: Txid,
    pub(crate) funded: u64,
    pub(crate) spent: u64,
    pub(crate) balance_after: u64,
}

impl HistoryRecord {
    pub(crate) fn encode_array(&self) -> [u8; 56] {
        ArrayWriter::<56>::new()
            .put(self.txid.as_byte_array())
            .put(&self.funded.to_le_bytes())
            .put(&self.spent.to_le_bytes())
            .put(&self.balance_after.to_le_bytes())
            .finish()
    }
    pub(crate) fn decode(b: &[u8]) -> Result<Self, CorruptRecordError> {
        let mut c = Cursor::new(b, Table::History);
        let r = Self {
            txid: Txid::from_byte_array(c.hash32()?),
            funded: c.u64_le()?,
            spent: c.u64_le()?,
            balance_after: c.u64_le()?,
        };
        c.end()?;
        Ok(r)
    }
}

/// Confirmed statistics of one scriptPubKey (Esplora's `chain_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ScriptStats {
    /// Outputs paying to the script.
    pub funded_txo_count: u64,
    /// Their total value in satoshis.
    pub funded_txo_sum: u64,
    /// Those outputs spent.
    pub spent_txo_count: u64,
    /// Their total value in satoshis.
    pub spent_txo_sum: u64,
    /// Transactions that fund or spend the script.
    pub tx_count: u64,
}

impl ScriptStats {
    /// Returns the confirmed balance: funded minus spent.
    pub const fn balance(&self) -> u64 {
        self.funded_txo_sum.saturating_sub(self.spent_txo_sum)
    }

    pub(crate) fn encode_array(&self) -> [u8; 40] {
        let mut w = ArrayWriter::<40>::new();
        for x in [
            self.funded_txo_count,
            self.funded_txo_sum,
            self.spent_txo_count,
            self.spent_txo_sum,
            self.tx_count,
        ] {
            w.put(&x.to_le_bytes());
        }
        w.finish()
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, CorruptRecordError> {
        let mut c = Cursor::new(b, Table::Stats);
        let r = Self {
            funded_txo_count: c.u64_le()?,
            funded_txo_sum: c.u64_le()?,
            spent_txo_count: c.u64_le()?,
            spent_txo_sum: c.u64_le()?,
            tx_count: c.u64_le()?,
        };
        c.end()?;
        Ok(r)
    }
}

pub(crate) fn decode_u64(b: &[u8], table: Table) -> Result<u64, CorruptRecordError> {
    let mut c = Cursor::new(b, table);
    let v = c.u64_le()?;
    c.end()?;
    Ok(v)
}

pub(crate) fn decode_u32(b: &[u8], table: Table) -> Result<u32, CorruptRecordError> {
    let mut c = Cursor::new(b, table);
    let v = c.u32_le()?;
    c.end()?;
    Ok(v)
}
