//! The Sans-IO indexer: a block (and the committed state it extends) in, a [`ChangeSet`] out.

use btq_core::block::Block;
use btq_core::hash::{BlockHash, Txid};
use btq_core::script::{ScriptBuf, opcodes};
use btq_core::tx::{OutPoint, Transaction};
use serde::Deserialize;
use thiserror::Error;

use crate::changeset::{ChangeSet, Key, Row, Rows, Seq, Val};
use crate::schema::{
    BlockRecord, BlockRef, CorruptRecordError, Cursor, HistoryRecord, PoolKey, ScriptHash,
    ScriptStats, TIP_KEY, Table, Tip, TxRecord, UtxoRecord, corrupt, decode_tip, decode_u64,
    encode_tip, height_key, history_key, outpoint_key, rich_key, spk_utxo_key,
};
use crate::view::{Overlay, ReadView, StoreError};

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

impl From<CorruptRecordError> for IndexError {
    fn from(e: CorruptRecordError) -> Self {
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
        if let Some(p) = payout
            && let Some(pool) = self
                .config
                .pools
                .iter()
                .find(|x| x.payout_scripts.contains(p))
        {
            return PoolKey::Named(pool.name.clone());
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
        let mut cs = ChangeSet::default();
        self.stage_block(view, &mut cs, block)?;
        Ok(cs)
    }

    /// Applies `block` in place onto `staged`, a changeset of uncommitted blocks computed on
    /// top of `base`: afterwards `staged` equals `staged.merge(apply_block(base + staged))`,
    /// without building and merging a second changeset. This is how the driver indexes a batch
    /// of blocks before one commit.
    ///
    /// # Errors
    /// As [`Indexer::apply_block`]; `staged` is then left exactly as it was.
    pub fn stage_block(
        &self,
        base: &(impl ReadView + ?Sized),
        staged: &mut ChangeSet,
        block: &Block,
    ) -> Result<(), IndexError> {
        let txids: Vec<Txid> = block.txdata.iter().map(Transaction::txid).collect();
        self.stage_block_with_txids(base, staged, block, &txids, true)
    }

    /// [`Indexer::stage_block`] with the block's txids already computed (each transaction is
    /// hashed once: the driver computes them to check the merkle root). Without `keep_undo`
    /// no undo record is written: for a block so deep below the node's tip that its record
    /// would be pruned before the index reaches that tip (an initial sync).
    pub(crate) fn stage_block_with_txids(
        &self,
        base: &(impl ReadView + ?Sized),
        staged: &mut ChangeSet,
        block: &Block,
        txids: &[Txid],
        keep_undo: bool,
    ) -> Result<(), IndexError> {
        let tip = read_tip(&Overlay::new(base, staged))?;
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
        let tx_count = u32::try_from(block.txdata.len()).map_err(|_| IndexError::HeightOverflow)?;
        let size = u32::try_from(block.total_size()).map_err(|_| IndexError::HeightOverflow)?;

        let was_empty = staged.rows.is_empty();
        let mut st = Stager::new(base, staged, block.txdata.len());
        let staged_rows = (|| -> Result<(), IndexError> {
            let mut all_txids = Vec::with_capacity(block.txdata.len().saturating_mul(32));
            for (index, tx) in block.txdata.iter().enumerate() {
                let txid = match txids.get(index) {
                    Some(t) => *t,
                    None => tx.txid(),
                };
                let index = u32::try_from(index).map_err(|_| IndexError::HeightOverflow)?;
                apply_tx(&mut st, height, index, tx, txid)?;
                all_txids.extend_from_slice(txid.as_byte_array());
            }
            st.put_new(Table::BlockTxs, &height_key(height), all_txids.into())?;
            // Header, block index and aggregates.
            let pool = self.attribute(block);
            let record = BlockRecord {
                hash,
                header: block.header,
                chain_work,
                tx_count,
                size,
                weight: block.weight().to_wu(),
                pool: pool.clone(),
            };
            // Rows keyed by a height above the tip, or by this block's hash, do not exist yet.
            st.put_new(Table::Headers, &height_key(height), record.encode().into())?;
            st.put_new(
                Table::BlockHeight,
                hash.as_byte_array(),
                Val::new(&height.to_le_bytes()),
            )?;
            st.add_counter(Table::Pools, &pool.to_bytes(), 1)?;
            let bucket = self.bucket(block.header.time);
            st.add_counter(Table::TimeBuckets, &bucket.to_be_bytes(), 1)?;
            st.set(
                Table::Meta,
                TIP_KEY,
                Some(encode_tip(&new_tip).into()),
                Known(tip.map(|t| encode_tip(&t).into())),
            )?;
            Ok(())
        })();
        if let Err(e) = staged_rows {
            st.rollback();
            return Err(e);
        }
        let (staged, inverse) = st.finish();
        let undo_key = (Table::Undo, Key::new(&height_key(height)));
        let undo_val: Option<Val> = keep_undo.then(|| encode_undo(&inverse).into());
        // Undo rows exist only at heights up to the tip; one above the tip may still be staged
        // as deleted (a reorg in this batch).
        match staged.rows.get_mut(&undo_key) {
            Some(r) => r.value = undo_val,
            None => {
                if undo_val.is_some() {
                    staged.rows.insert(undo_key, Row::new(undo_val, false));
                }
            }
        }
        if let Some(old) = height.checked_sub(self.undo_retention()) {
            let key = (Table::Undo, Key::new(&height_key(old)));
            match staged.rows.get_mut(&key) {
                Some(r) => r.value = None,
                None => {
                    staged.rows.insert(key, Row::new(None, true));
                }
            }
        }
        if was_empty {
            staged.parent = tip.map(|t| t.block);
        }
        staged.tip = Some(new_tip.block);
        Ok(())
    }

    /// Blocks of undo data kept: twice the reorg depth limit, so that a reorg to a lower tip
    /// still leaves a full depth limit of undo data below it.
    pub const fn undo_retention(&self) -> u32 {
        self.config.reorg_depth_limit.saturating_mul(2)
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
        let mut rows: Rows = decode_undo(&undo)?
            .into_iter()
            .map(|(k, value)| (k, Row::new(value, true)))
            .collect();
        rows.insert(
            (Table::Undo, Key::new(&height_key(h))),
            Row::new(None, true),
        );
        let new_tip = match rows.get(&(Table::Meta, Key::new(TIP_KEY))) {
            Some(Row { value: Some(b), .. }) => Some(decode_tip(b.as_slice())?.block),
            _ => None,
        };
        Ok(ChangeSet {
            parent: Some(tip.block),
            tip: new_tip,
            rows,
            seq: Seq::default(),
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
struct Delta<'a> {
    funded: u64,
    funded_n: u64,
    spent: u64,
    spent_n: u64,
    /// The scriptPubKey, when the transaction pays to it.
    script: Option<&'a [u8]>,
}

/// Adds to the delta of `sh` (a transaction touches a handful of scripts: a linear search).
fn add_delta<'a>(
    deltas: &mut Vec<(ScriptHash, Delta<'a>)>,
    sh: ScriptHash,
    f: impl FnOnce(&mut Delta<'a>) -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    if let Some((_, d)) = deltas.iter_mut().find(|(s, _)| *s == sh) {
        return f(d);
    }
    let mut d = Delta::default();
    f(&mut d)?;
    deltas.push((sh, d));
    Ok(())
}

fn apply_tx<V: ReadView + ?Sized>(
    st: &mut Stager<'_, V>,
    height: u32,
    index: u32,
    tx: &Transaction,
    txid: Txid,
) -> Result<(), IndexError> {
    let bad = || IndexError::BadValues(txid);
    let mut deltas: Vec<(ScriptHash, Delta<'_>)> = Vec::with_capacity(8);
    let coinbase = tx.is_coinbase();
    // A confirmed txid must not be indexed again (BIP30). Only a coinbase can repeat one: any
    // other transaction with a confirmed txid spends the same outputs, which its first copy
    // already spent (`MissingPrevout` below). Checked before anything is staged.
    if coinbase && st.exists(Table::Txs, txid.as_byte_array())? {
        return Err(IndexError::DuplicateTxid(txid));
    }
    let mut in_sum: u64 = 0;
    if !coinbase {
        for input in &tx.input {
            let op = input.previous_output;
            let key = outpoint_key(&op.txid, op.vout);
            let rec = st
                .get(Table::Utxos, &key)?
                .ok_or(IndexError::MissingPrevout(op))?;
            let u = UtxoRecord::decode(rec.as_slice())?;
            st.del(Table::Utxos, &key, Known(Some(rec)))?;
            // The output exists, so does its per-script row (with its value).
            st.del(
                Table::SpkUtxos,
                &spk_utxo_key(&u.script, u.height, &op.txid, op.vout),
                Known(Some(Val::new(&u.value.to_le_bytes()))),
            )?;
            add_delta(&mut deltas, u.script, |d| {
                d.spent = d.spent.checked_add(u.value).ok_or_else(bad)?;
                d.spent_n = d.spent_n.saturating_add(1);
                Ok(())
            })?;
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
        let u = UtxoRecord {
            script: sh,
            value: out.value,
            height,
            coinbase,
        };
        // A confirmed txid is never indexed twice (checked below), so its outputs and their
        // per-script rows (keyed by this height) are new.
        st.put_new(
            Table::Utxos,
            &outpoint_key(&txid, vout),
            Val::new(&u.encode_array()),
        )?;
        st.put_new(
            Table::SpkUtxos,
            &spk_utxo_key(&sh, height, &txid, vout),
            Val::new(&out.value.to_le_bytes()),
        )?;
        add_delta(&mut deltas, sh, |d| {
            d.funded = d.funded.checked_add(out.value).ok_or_else(bad)?;
            d.funded_n = d.funded_n.saturating_add(1);
            d.script = Some(out.script_pubkey.as_bytes());
            Ok(())
        })?;
    }
    let fee = if coinbase {
        0
    } else {
        in_sum.checked_sub(out_sum).ok_or_else(bad)?
    };
    for (sh, d) in deltas {
        let sk = sh.as_byte_array();
        let old_raw = st.get(Table::Stats, sk)?;
        let old = match &old_raw {
            Some(b) => ScriptStats::decode(b.as_slice())?,
            None => {
                // A script's statistics and its scriptPubKey row are created together, by the
                // first output paying to it (a script without statistics is never spent).
                if let Some(script) = d.script {
                    st.put_new(Table::Scripts, sk, Val::new(script))?;
                }
                ScriptStats::default()
            }
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
        st.set(
            Table::Stats,
            sk,
            Some(Val::new(&new.encode_array())),
            Known(old_raw),
        )?;
        st.put_new(
            Table::History,
            &history_key(&sh, height, index),
            Val::new(
                &HistoryRecord {
                    txid,
                    funded: d.funded,
                    spent: d.spent,
                    balance_after: nb,
                }
                .encode_array(),
            ),
        )?;
        if ob != nb {
            // A script has exactly one rich-list row, at its current balance when positive.
            if ob > 0 {
                st.del(Table::Rich, &rich_key(ob, &sh), Known(Some(Val::new(&[]))))?;
            }
            if nb > 0 {
                st.put_new(Table::Rich, &rich_key(nb, &sh), Val::new(&[]))?;
            }
        }
    }
    let tk = txid.as_byte_array();
    let w = tx.weight().to_wu();
    st.set(
        Table::Txs,
        tk,
        Some(Val::new(
            &TxRecord {
                height,
                index,
                weight: w,
                size: u32::try_from(tx.total_size()).map_err(|_| bad())?,
                fee,
            }
            .encode_array(),
        )),
        Known(None),
    )?;
    Ok(())
}

/// The rows a block wrote with their values before it.
type UndoRows = Vec<((Table, Key), Option<Val>)>;

/// What a row held in the base, for a row not staged yet: just read, or implied by the
/// index's invariants (checked against the base view in debug builds).
struct Known(Option<Val>);

/// The first change a block makes to a row: what the row was before the block, to undo it (the
/// undo record) or to roll the block back (a failed apply).
struct Journal {
    key: (Table, Key),
    /// The row's value before the block.
    before: Option<Val>,
    /// The staged row's `may_exist` and `stamp` before the block (its value is `before`);
    /// `None`: the row was not staged (read from the base).
    prev: Option<(bool, u32)>,
}

/// Stages one block's writes in place into a changeset of earlier, uncommitted blocks over a
/// base view, journaling every row the first time the block touches it.
///
/// A row is staged once per batch however many blocks touch it; its previous value costs a
/// lookup in the base only if it is not staged yet and does not follow from the index's
/// invariants (a new height, a new txid, an output just read).
struct Stager<'v, V: ?Sized> {
    base: &'v V,
    staged: &'v mut ChangeSet,
    stamp: u32,
    journal: Vec<Journal>,
}

impl<'v, V: ReadView + ?Sized> Stager<'v, V> {
    fn new(base: &'v V, staged: &'v mut ChangeSet, txs: usize) -> Self {
        // Stamps identify the block within the changeset; 0 marks rows merged in.
        staged.seq.0 = staged.seq.0.wrapping_add(1).max(1);
        let stamp = staged.seq.0;
        // About 30 rows per transaction.
        staged.rows.reserve(txs.saturating_mul(24));
        Self {
            base,
            staged,
            stamp,
            journal: Vec::with_capacity(txs.saturating_mul(24)),
        }
    }

    /// Returns the current value of a row.
    fn get(&self, t: Table, k: &[u8]) -> Result<Option<Val>, StoreError> {
        if let Some(r) = self.staged.rows.get(&(t, Key::new(k))) {
            return Ok(r.value.clone());
        }
        let mut v = None;
        self.base.get_with(t, k, &mut |b| v = Some(Val::new(b)))?;
        Ok(v)
    }

    /// Returns whether a row exists.
    fn exists(&self, t: Table, k: &[u8]) -> Result<bool, StoreError> {
        if let Some(r) = self.staged.rows.get(&(t, Key::new(k))) {
            return Ok(r.value.is_some());
        }
        self.base.get_with(t, k, &mut |_| {})
    }

    /// Sets a row to `after`; `before` is its value in the base if it is not staged yet.
    fn set(
        &mut self,
        t: Table,
        k: &[u8],
        after: Option<Val>,
        Known(before): Known,
    ) -> Result<(), StoreError> {
        let stamp = self.stamp;
        match self.staged.rows.entry((t, Key::new(k))) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                if e.get().stamp != stamp {
                    let prev = e.get();
                    self.journal.push(Journal {
                        key: e.key().clone(),
                        before: prev.value.clone(),
                        prev: Some((prev.may_exist, prev.stamp)),
                    });
                    e.get_mut().stamp = stamp;
                }
                e.get_mut().value = after;
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                #[cfg(debug_assertions)]
                {
                    let actual = self.base.get(t, k)?.map(Val::from);
                    debug_assert_eq!(
                        before,
                        actual,
                        "{t:?} row {} before the block",
                        hex::encode(k)
                    );
                }
                self.journal.push(Journal {
                    key: e.key().clone(),
                    prev: None,
                    before: before.clone(),
                });
                e.insert(Row {
                    value: after,
                    may_exist: before.is_some(),
                    stamp,
                });
            }
        }
        Ok(())
    }

    /// Writes a row that did not exist before the block.
    fn put_new(&mut self, t: Table, k: &[u8], v: Val) -> Result<(), StoreError> {
        self.set(t, k, Some(v), Known(None))
    }

    fn del(&mut self, t: Table, k: &[u8], before: Known) -> Result<(), StoreError> {
        self.set(t, k, None, before)
    }

    fn add_counter(&mut self, t: Table, k: &[u8], n: u64) -> Result<(), StoreError> {
        let old_raw = self.get(t, k)?;
        let old = match &old_raw {
            Some(b) => decode_u64(b.as_slice(), t)?,
            None => 0,
        };
        self.set(
            t,
            k,
            Some(Val::new(&old.saturating_add(n).to_le_bytes())),
            Known(old_raw),
        )
    }

    /// Puts every row the block touched back as it was: the changeset is as before the block.
    fn rollback(self) {
        for j in self.journal.into_iter().rev() {
            match j.prev {
                Some((may_exist, stamp)) => {
                    self.staged.rows.insert(
                        j.key,
                        Row {
                            value: j.before,
                            may_exist,
                            stamp,
                        },
                    );
                }
                None => {
                    self.staged.rows.remove(&j.key);
                }
            }
        }
    }

    /// Returns the changeset and the values before the block of the rows it wrote, in the
    /// order the block first wrote them (the undo record; deterministic, since the block is
    /// applied in order). A row created and deleted again within the block is listed too:
    /// undoing it deletes a row that does not exist, which changes nothing.
    fn finish(self) -> (&'v mut ChangeSet, UndoRows) {
        let inverse = self
            .journal
            .into_iter()
            .map(|j| (j.key, j.before))
            .collect();
        (self.staged, inverse)
    }
}

// ---------- undo records ----------
//
// An undo record lists the rows the block wrote, in the order it first wrote them, with their values
// before the block: `count` then per row `table id (u8) ‖ key length ‖ key ‖ 0 (absent) or
// 1 ‖ value length ‖ value`, every count and length a LEB128 varint.

fn put_varint(v: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        v.push(u8::try_from(n & 0x7f).unwrap_or_default() | 0x80);
        n >>= 7;
    }
    v.push(u8::try_from(n).unwrap_or_default());
}

fn get_varint(c: &mut Cursor<'_>) -> Result<u64, CorruptRecordError> {
    let mut n: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = c.u8()?;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(corrupt(Table::Undo, "varint too long"))
}

fn encode_undo(rows: &[((Table, Key), Option<Val>)]) -> Vec<u8> {
    let size: usize = rows
        .iter()
        .map(|((_, k), v)| {
            4 + k.as_slice().len() + v.as_ref().map_or(0, |v| v.as_slice().len() + 3)
        })
        .sum();
    let mut v = Vec::with_capacity(size.saturating_add(10));
    put_varint(&mut v, rows.len() as u64);
    for ((t, k), val) in rows {
        v.push(t.id());
        put_varint(&mut v, k.as_slice().len() as u64);
        v.extend_from_slice(k.as_slice());
        match val {
            Some(val) => {
                v.push(1);
                put_varint(&mut v, val.as_slice().len() as u64);
                v.extend_from_slice(val.as_slice());
            }
            None => v.push(0),
        }
    }
    v
}

fn decode_undo(b: &[u8]) -> Result<UndoRows, CorruptRecordError> {
    let t = Table::Undo;
    let mut c = Cursor::new(b, t);
    let n = get_varint(&mut c)?;
    let len = |c: &mut Cursor<'_>| -> Result<usize, _> {
        usize::try_from(get_varint(c)?).map_err(|_| corrupt(t, "length"))
    };
    // Every row takes at least 3 bytes: do not trust `n` for the allocation.
    let mut rows = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(b.len() / 3));
    for _ in 0..n {
        let table = Table::from_id(c.u8()?).ok_or(corrupt(t, "unknown table id"))?;
        let kl = len(&mut c)?;
        let k = Key::new(c.take(kl)?);
        let val = match c.u8()? {
            0 => None,
            1 => {
                let vl = len(&mut c)?;
                Some(Val::new(c.take(vl)?))
            }
            _ => return Err(corrupt(t, "bad presence flag")),
        };
        rows.push(((table, k), val));
    }
    c.end()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_roundtrip() {
        let rows = vec![
            ((Table::Stats, Key::new(&[1, 2])), Some(Val::new(&[3; 300]))),
            ((Table::Utxos, Key::new(&[])), None),
            ((Table::Undo, Key::new(&[7; 200])), Some(Val::new(&[]))),
        ];
        assert_eq!(decode_undo(&encode_undo(&rows)), Ok(rows));
        assert!(decode_undo(&[1, 2, 3]).is_err());
        assert!(decode_undo(&[0xff; 12]).is_err());
        for n in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut v = Vec::new();
            put_varint(&mut v, n);
            assert_eq!(get_varint(&mut Cursor::new(&v, Table::Undo)), Ok(n));
        }
    }
}
