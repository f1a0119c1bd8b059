//! The Sans-IO indexer: a block (and the committed state it extends) in, a [`ChangeSet`] out.

use std::collections::BTreeMap;

use btq_core::block::Block;
use btq_core::hash::{BlockHash, Txid};
use btq_core::script::{ScriptBuf, opcodes};
use btq_core::tx::{OutPoint, Transaction};
use serde::Deserialize;
use thiserror::Error;

use crate::changeset::ChangeSet;
use crate::schema::{
    BlockRecord, BlockRef, HistoryRecord, PoolKey, ScriptHash, ScriptStats, TIP_KEY, Table, Tip,
    TxRecord, UtxoRecord, decode_tip, decode_u64, encode_tip, height_key, history_key,
    outpoint_key, pos_key, rich_key, spk_utxo_key,
};
use crate::view::{ReadView, StoreError};

/// Default reorg depth limit (Fulcrum's `max_reorg` default).
pub const DEFAULT_REORG_DEPTH_LIMIT: u32 = 100;
/// Default width of the blocks-per-time-bucket aggregate, in seconds.
pub const DEFAULT_TIME_BUCKET_SECS: u64 = 3600;
/// Largest pool list accepted (entries).
pub const MAX_POOLS: usize = 10_000;

/// One mining pool of the attribution list (the shape of mempool's `pools-v2.json`, reduced).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Pool {
    /// The pool's display name.
    pub name: String,
    /// Byte strings searched for in the coinbase scriptSig.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Payout scriptPubKeys (hex in JSON); a payout match wins over a tag match.
    #[serde(default, deserialize_with = "de_scripts")]
    pub payout_scripts: Vec<ScriptBuf>,
}

fn de_scripts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ScriptBuf>, D::Error> {
    let v: Vec<String> = Vec::deserialize(d)?;
    v.iter()
        .map(|s| ScriptBuf::from_hex(s).map_err(serde::de::Error::custom))
        .collect()
}

/// The indexer's configuration. Every field changes what is stored: an index must be built and
/// served with one configuration (a change needs a reindex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Blocks of undo data kept; reorgs deeper than this need a resync.
    pub reorg_depth_limit: u32,
    /// Width of the blocks-per-time-bucket aggregate, in seconds (non-zero).
    pub time_bucket_secs: u64,
    /// Pools for block attribution.
    pub pools: Vec<Pool>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            reorg_depth_limit: DEFAULT_REORG_DEPTH_LIMIT,
            time_bucket_secs: DEFAULT_TIME_BUCKET_SECS,
            pools: Vec::new(),
        }
    }
}

/// An error applying or undoing a block.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The block does not extend the indexed tip.
    #[error("block {block} (parent {parent}) does not extend the tip {tip:?}")]
    NotExtendingTip {
        /// The block.
        block: BlockHash,
        /// Its parent.
        parent: BlockHash,
        /// The indexed tip.
        tip: Option<BlockRef>,
    },
    /// A block has no transactions.
    #[error("block {0} has no transactions")]
    EmptyBlock(BlockHash),
    /// An input spends an output the index does not hold.
    #[error("input spends unknown or spent output {0}")]
    MissingPrevout(OutPoint),
    /// A transaction id already confirmed (BIP30 duplicate).
    #[error("duplicate transaction {0}")]
    DuplicateTxid(Txid),
    /// Outputs exceed inputs, or a sum overflows.
    #[error("transaction {0} has invalid values")]
    BadValues(Txid),
    /// The block's header has an invalid compact target.
    #[error("block {0} has an invalid nBits")]
    BadTarget(BlockHash),
    /// Undo asked on an empty index.
    #[error("nothing to undo: the index is empty")]
    NothingToUndo,
    /// The undo record of a height was pruned (deeper than the depth limit) or is missing.
    #[error("no undo data for height {height}")]
    NoUndoData {
        /// The height.
        height: u32,
    },
    /// The height would overflow.
    #[error("height overflow")]
    HeightOverflow,
    /// A limit of the configuration was exceeded.
    #[error("{what}: {value} exceeds the limit {limit}")]
    TooLarge {
        /// What.
        what: &'static str,
        /// The value.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::schema::CorruptRecordError> for IndexError {
    fn from(e: crate::schema::CorruptRecordError) -> Self {
        Self::Store(StoreError::Corrupt(e))
    }
}

/// Returns the indexed tip of `view`.
///
/// # Errors
/// A backend failure or a corrupt tip record.
pub fn read_tip(view: &(impl ReadView + ?Sized)) -> Result<Option<Tip>, StoreError> {
    match view.get(Table::Meta, TIP_KEY)? {
        Some(b) => Ok(Some(decode_tip(&b)?)),
        None => Ok(None),
    }
}

/// The Sans-IO indexer. Holds only configuration: every call takes the state it reads as a
/// [`ReadView`] and returns a [`ChangeSet`] for the caller to commit.
///
/// Call order: `apply_block` for the block after the tip, `undo_tip` to remove the tip block;
/// commit each changeset (or a merge of consecutive ones) before computing on top of it, or pass
/// an [`Overlay`](crate::Overlay) of the staged changes as the view.
#[derive(Debug, Clone, Default)]
pub struct Indexer {
    config: Config,
}

impl Indexer {
    /// Creates an indexer.
    ///
    /// # Errors
    /// [`IndexError::TooLarge`] for a pool list over [`MAX_POOLS`] or a zero bucket width.
    pub fn new(config: Config) -> Result<Self, IndexError> {
        if config.pools.len() > MAX_POOLS {
            return Err(IndexError::TooLarge {
                what: "pool list",
                value: config.pools.len() as u64,
                limit: MAX_POOLS as u64,
            });
        }
        if config.time_bucket_secs == 0 {
            return Err(IndexError::TooLarge {
                what: "time bucket (0 is not allowed)",
                value: 0,
                limit: 0,
            });
        }
        Ok(Self { config })
    }

    /// Returns the configuration.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Attributes a block to a pool: payout script first, then coinbase tag, else its payout
    /// script.
    pub fn attribute(&self, block: &Block) -> PoolKey {
        let Some(cb) = block.txdata.first() else {
            return PoolKey::NoPayout;
        };
        let mut best: Option<&btq_core::tx::TxOut> = None;
        for o in cb
            .output
            .iter()
            .filter(|o| !is_unspendable(&o.script_pubkey))
        {
            if best.is_none_or(|b| o.value > b.value) {
                best = Some(o);
            }
        }
        let payout = best.map(|o| &o.script_pubkey);
        if let Some(p) = payout {
            if let Some(pool) = self
                .config
                .pools
                .iter()
                .find(|x| x.payout_scripts.contains(p))
            {
                return PoolKey::Named(pool.name.clone());
            }
        }
        let sig = cb
            .input
            .first()
            .map(|i| i.script_sig.as_bytes())
            .unwrap_or_default();
        if let Some(pool) = self.config.pools.iter().find(|x| {
            x.tags
                .iter()
                .any(|t| !t.is_empty() && contains(sig, t.as_bytes()))
        }) {
            return PoolKey::Named(pool.name.clone());
        }
        match payout {
            Some(p) => PoolKey::Unknown(ScriptHash::of(p.as_bytes())),
            None => PoolKey::NoPayout,
        }
    }

    /// Computes the changeset that applies `block` on top of the state in `view`.
    ///
    /// # Errors
    /// The block does not extend the tip, spends an unknown output, has invalid values, or the
    /// store fails.
    pub fn apply_block(
        &self,
        view: &(impl ReadView + ?Sized),
        block: &Block,
    ) -> Result<ChangeSet, IndexError> {
        let tip = read_tip(view)?;
        let hash = block.block_hash();
        let parent = block.header.prev_blockhash;
        let height = match tip {
            None => 0,
            Some(t) if t.block.hash == parent => t
                .block
                .height
                .checked_add(1)
                .ok_or(IndexError::HeightOverflow)?,
            Some(t) => {
                return Err(IndexError::NotExtendingTip {
                    block: hash,
                    parent,
                    tip: Some(t.block),
                });
            }
        };
        if block.txdata.is_empty() {
            return Err(IndexError::EmptyBlock(hash));
        }
        let work = block
            .header
            .target()
            .map_err(|_| IndexError::BadTarget(hash))?
            .to_work();
        let chain_work = tip.map_or(work, |t| t.chain_work.saturating_add(work));
        let new_tip = Tip {
            block: BlockRef { height, hash },
            chain_work,
        };

        let mut st = Stager::new(view);
        for (index, tx) in block.txdata.iter().enumerate() {
            let index = u32::try_from(index).map_err(|_| IndexError::HeightOverflow)?;
            apply_tx(&mut st, height, index, tx)?;
        }

        // Header, block index and aggregates.
        let pool = self.attribute(block);
        let record = BlockRecord {
            hash,
            header: block.header,
            chain_work,
            tx_count: u32::try_from(block.txdata.len()).map_err(|_| IndexError::HeightOverflow)?,
            size: u32::try_from(block.total_size()).map_err(|_| IndexError::HeightOverflow)?,
            weight: block.weight().to_wu(),
            pool: pool.clone(),
        };
        st.put(Table::Headers, height_key(height).to_vec(), record.encode())?;
        st.put(
            Table::BlockHeight,
            hash.to_byte_array().to_vec(),
            height.to_le_bytes().to_vec(),
        )?;
        st.add_counter(Table::Pools, pool.to_bytes(), 1)?;
        let bucket = self.bucket(block.header.time);
        st.add_counter(Table::TimeBuckets, bucket.to_be_bytes().to_vec(), 1)?;
        st.put(Table::Meta, TIP_KEY.to_vec(), encode_tip(&new_tip))?;

        let Stager { rows, inverse, .. } = st;
        let mut cs = ChangeSet {
            parent: tip.map(|t| t.block),
            tip: Some(new_tip.block),
            rows,
        };
        cs.rows.insert(
            (Table::Undo, height_key(height).to_vec()),
            Some(encode_undo(&inverse)),
        );
        if let Some(old) = height.checked_sub(self.config.reorg_depth_limit) {
            cs.rows
                .insert((Table::Undo, height_key(old).to_vec()), None);
        }
        Ok(cs)
    }

    /// Computes the changeset that removes the tip block, restoring the state before it.
    ///
    /// # Errors
    /// An empty index, a missing (pruned) undo record, or a store failure.
    pub fn undo_tip(&self, view: &(impl ReadView + ?Sized)) -> Result<ChangeSet, IndexError> {
        let tip = read_tip(view)?.ok_or(IndexError::NothingToUndo)?;
        let h = tip.block.height;
        let undo = view
            .get(Table::Undo, &height_key(h))?
            .ok_or(IndexError::NoUndoData { height: h })?;
        let mut rows = decode_undo(&undo)?;
        rows.insert((Table::Undo, height_key(h).to_vec()), None);
        let new_tip = match rows.get(&(Table::Meta, TIP_KEY.to_vec())) {
            Some(Some(b)) => Some(decode_tip(b)?.block),
            _ => None,
        };
        Ok(ChangeSet {
            parent: Some(tip.block),
            tip: new_tip,
            rows,
        })
    }

    /// Returns the start of the time bucket holding `time`.
    pub const fn bucket(&self, time: u32) -> u64 {
        let t = time as u64;
        let w = self.config.time_bucket_secs;
        if w == 0 { t } else { t - t % w }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Outputs that can never be spent and are not indexed: `OP_RETURN` data carriers.
pub(crate) fn is_unspendable(spk: &ScriptBuf) -> bool {
    spk.as_bytes().first() == Some(&opcodes::OP_RETURN)
}

#[derive(Default, Clone, Copy)]
struct Delta {
    funded: u64,
    funded_n: u64,
    spent: u64,
    spent_n: u64,
}

fn apply_tx<V: ReadView + ?Sized>(
    st: &mut Stager<'_, V>,
    height: u32,
    index: u32,
    tx: &Transaction,
) -> Result<(), IndexError> {
    let txid = tx.txid();
    let bad = || IndexError::BadValues(txid);
    let mut deltas: BTreeMap<ScriptHash, Delta> = BTreeMap::new();
    let coinbase = tx.is_coinbase();
    let mut in_sum: u64 = 0;
    if !coinbase {
        for input in &tx.input {
            let op = input.previous_output;
            let key = outpoint_key(&op.txid, op.vout);
            let rec = st
                .get(Table::Utxos, &key)?
                .ok_or(IndexError::MissingPrevout(op))?;
            let u = UtxoRecord::decode(&rec)?;
            st.del(Table::Utxos, key.to_vec())?;
            st.del(
                Table::SpkUtxos,
                spk_utxo_key(&u.script, u.height, &op.txid, op.vout),
            )?;
            let d = deltas.entry(u.script).or_default();
            d.spent = d.spent.checked_add(u.value).ok_or_else(bad)?;
            d.spent_n = d.spent_n.saturating_add(1);
            in_sum = in_sum.checked_add(u.value).ok_or_else(bad)?;
        }
    }
    let mut out_sum: u64 = 0;
    for (vout, out) in tx.output.iter().enumerate() {
        out_sum = out_sum.checked_add(out.value).ok_or_else(bad)?;
        if is_unspendable(&out.script_pubkey) {
            continue;
        }
        let vout = u32::try_from(vout).map_err(|_| bad())?;
        let sh = ScriptHash::of(out.script_pubkey.as_bytes());
        let sk = sh.to_byte_array().to_vec();
        if st.get(Table::Scripts, &sk)?.is_none() {
            st.put(Table::Scripts, sk, out.script_pubkey.as_bytes().to_vec())?;
        }
        let u = UtxoRecord {
            script: sh,
            value: out.value,
            height,
            coinbase,
        };
        st.put(Table::Utxos, outpoint_key(&txid, vout).to_vec(), u.encode())?;
        st.put(
            Table::SpkUtxos,
            spk_utxo_key(&sh, height, &txid, vout),
            out.value.to_le_bytes().to_vec(),
        )?;
        let d = deltas.entry(sh).or_default();
        d.funded = d.funded.checked_add(out.value).ok_or_else(bad)?;
        d.funded_n = d.funded_n.saturating_add(1);
    }
    let fee = if coinbase {
        0
    } else {
        in_sum.checked_sub(out_sum).ok_or_else(bad)?
    };
    for (sh, d) in deltas {
        let sk = sh.to_byte_array().to_vec();
        let old = match st.get(Table::Stats, &sk)? {
            Some(b) => ScriptStats::decode(&b)?,
            None => ScriptStats::default(),
        };
        let new = ScriptStats {
            funded_txo_count: old.funded_txo_count.saturating_add(d.funded_n),
            funded_txo_sum: old.funded_txo_sum.checked_add(d.funded).ok_or_else(bad)?,
            spent_txo_count: old.spent_txo_count.saturating_add(d.spent_n),
            spent_txo_sum: old.spent_txo_sum.checked_add(d.spent).ok_or_else(bad)?,
            tx_count: old.tx_count.saturating_add(1),
        };
        if new.spent_txo_sum > new.funded_txo_sum {
            return Err(bad());
        }
        let (ob, nb) = (old.balance(), new.balance());
        st.put(Table::Stats, sk, new.encode())?;
        st.put(
            Table::History,
            history_key(&sh, height, index),
            HistoryRecord {
                txid,
                funded: d.funded,
                spent: d.spent,
                balance_after: nb,
            }
            .encode(),
        )?;
        if ob != nb {
            if ob > 0 {
                st.del(Table::Rich, rich_key(ob, &sh))?;
            }
            if nb > 0 {
                st.put(Table::Rich, rich_key(nb, &sh), Vec::new())?;
            }
        }
    }
    let tk = txid.to_byte_array().to_vec();
    if st.get(Table::Txs, &tk)?.is_some() {
        return Err(IndexError::DuplicateTxid(txid));
    }
    let w = tx.weight().to_wu();
    st.put(
        Table::Txs,
        tk,
        TxRecord {
            height,
            index,
            weight: w,
            size: u32::try_from(tx.total_size()).map_err(|_| bad())?,
            fee,
        }
        .encode(),
    )?;
    st.put(
        Table::BlockTxs,
        pos_key(height, index).to_vec(),
        txid.to_byte_array().to_vec(),
    )?;
    Ok(())
}

/// Stages writes over a view and records, for every row it touches first, the value before.
struct Stager<'v, V: ?Sized> {
    view: &'v V,
    rows: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
    inverse: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
}

impl<'v, V: ReadView + ?Sized> Stager<'v, V> {
    fn new(view: &'v V) -> Self {
        Self {
            view,
            rows: BTreeMap::new(),
            inverse: BTreeMap::new(),
        }
    }

    fn get(&self, t: Table, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.rows.get(&(t, k.to_vec())) {
            Some(v) => Ok(v.clone()),
            None => self.view.get(t, k),
        }
    }

    fn record(&mut self, t: Table, k: &[u8]) -> Result<(), StoreError> {
        let key = (t, k.to_vec());
        if !self.inverse.contains_key(&key) {
            let before = match self.rows.get(&key) {
                Some(v) => v.clone(),
                None => self.view.get(t, k)?,
            };
            self.inverse.insert(key, before);
        }
        Ok(())
    }

    fn put(&mut self, t: Table, k: Vec<u8>, v: Vec<u8>) -> Result<(), StoreError> {
        self.record(t, &k)?;
        self.rows.insert((t, k), Some(v));
        Ok(())
    }

    fn del(&mut self, t: Table, k: Vec<u8>) -> Result<(), StoreError> {
        self.record(t, &k)?;
        self.rows.insert((t, k), None);
        Ok(())
    }

    fn add_counter(&mut self, t: Table, k: Vec<u8>, n: u64) -> Result<(), StoreError> {
        let old = match self.get(t, &k)? {
            Some(b) => decode_u64(&b, t)?,
            None => 0,
        };
        self.put(t, k, old.saturating_add(n).to_le_bytes().to_vec())
    }
}

fn encode_undo(rows: &BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    for ((t, k), val) in rows {
        v.push(t.id());
        v.extend_from_slice(&(k.len() as u64).to_le_bytes());
        v.extend_from_slice(k);
        match val {
            Some(val) => {
                v.push(1);
                v.extend_from_slice(&(val.len() as u64).to_le_bytes());
                v.extend_from_slice(val);
            }
            None => v.push(0),
        }
    }
    v
}

type Rows = BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>;

fn decode_undo(b: &[u8]) -> Result<Rows, crate::schema::CorruptRecordError> {
    use crate::schema::{Cursor, corrupt};
    let t = Table::Undo;
    let mut c = Cursor::new(b, t);
    let n = c.u64_le()?;
    let mut rows = BTreeMap::new();
    let len = |c: &mut Cursor<'_>| -> Result<usize, _> {
        usize::try_from(c.u64_le()?).map_err(|_| corrupt(t, "length"))
    };
    for _ in 0..n {
        let table = Table::from_id(c.u8()?).ok_or(corrupt(t, "unknown table id"))?;
        let kl = len(&mut c)?;
        let k = c.take(kl)?.to_vec();
        let val = match c.u8()? {
            0 => None,
            1 => {
                let vl = len(&mut c)?;
                Some(c.take(vl)?.to_vec())
            }
            _ => return Err(corrupt(t, "bad presence flag")),
        };
        rows.insert((table, k), val);
    }
    c.end()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_roundtrip() {
        let mut rows = Rows::new();
        rows.insert((Table::Stats, vec![1, 2]), Some(vec![3]));
        rows.insert((Table::Utxos, vec![]), None);
        assert_eq!(decode_undo(&encode_undo(&rows)), Ok(rows));
        assert!(decode_undo(&[1, 2, 3]).is_err());
    }
}
