//! Following the node's chain without doing I/O: the query/resolve state machine.

use btq_core::block::Block;
use btq_core::hash::{BlockHash, Txid};
use btq_core::tx::Transaction;
use thiserror::Error;

use crate::changeset::ChangeSet;
use crate::indexer::{IndexError, Indexer, read_tip};
use crate::schema::{BlockRecord, Table, height_key};
use crate::view::{Overlay, ReadView, StoreError};

/// What [`ChainSync`] needs to know from the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncQuery {
    /// The node's best height and hash (`getblockchaininfo`).
    NodeTip,
    /// The hash of the node's block at a height (`getblockhash`); `None` if above its tip.
    BlockHashAt(u32),
    /// A block's bytes (`getblock <hash> 0`).
    Block {
        /// Its height.
        height: u32,
        /// Its hash.
        hash: BlockHash,
    },
}

/// The driver's answer to a [`SyncQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncAnswer {
    /// Answers [`SyncQuery::NodeTip`].
    NodeTip {
        /// Best height.
        height: u32,
        /// Best hash.
        hash: BlockHash,
    },
    /// Answers [`SyncQuery::BlockHashAt`].
    BlockHashAt {
        /// The height asked.
        height: u32,
        /// The node's hash there, `None` above its tip.
        hash: Option<BlockHash>,
    },
    /// Answers [`SyncQuery::Block`].
    Block(Box<Block>),
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum SyncStep {
    /// Ask the node and pass the answer to [`ChainSync::resolve`].
    Query(SyncQuery),
    /// Commit (or stage) this changeset applying the next block.
    Apply {
        /// The changeset.
        changeset: ChangeSet,
        /// Transactions in the block.
        tx_count: usize,
        /// Serialized size of the block.
        size: usize,
    },
    /// The next block was applied into the staged changeset
    /// ([`ChainSync::poll_staged`] only).
    Staged {
        /// Transactions in the block.
        tx_count: usize,
        /// Serialized size of the block.
        size: usize,
    },
    /// Commit (or stage) this changeset undoing the tip block (a reorg).
    Undo(ChangeSet),
    /// The index equals the node's chain; poll again later.
    CaughtUp,
}

/// An error following the node.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The fork point is deeper than the reorg depth limit.
    #[error(
        "reorg deeper than the limit: at least {depth_at_least} blocks to undo, limit {limit}; \
         resync from the fork point (`--resync-on-deep-reorg`)"
    )]
    ReorgTooDeep {
        /// Blocks that would have to be undone, at least.
        depth_at_least: u32,
        /// The configured limit.
        limit: u32,
    },
    /// The undo record needed to reach the fork point is not kept (the fork is deeper than the
    /// undo data, or it was pruned on a branch a previous reorg to a lower tip abandoned): only
    /// a reindex reaches the fork point.
    #[error("no undo data for height {height}: the index must be rebuilt (clear and reindex)")]
    UndoUnavailable {
        /// The height whose undo record is missing.
        height: u32,
    },
    /// The node sent a block other than the one asked for, or one whose transactions do not
    /// match its merkle root.
    #[error("node sent a bad block at height {height}: {reason}")]
    BadBlock {
        /// The height.
        height: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// The answer does not match the pending query.
    #[error("answer does not match the pending query")]
    UnexpectedAnswer,
    /// Applying or undoing failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        Self::Index(IndexError::Store(e))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Start,
    AwaitNodeTip,
    Plan,
    Fetch(u32),
    AwaitHash(u32),
    AwaitBlock {
        height: u32,
        hash: BlockHash,
    },
    GotBlock {
        height: u32,
        block: Box<Block>,
        txids: Vec<Txid>,
    },
    ForkCheck(u32),
    AwaitFork {
        height: u32,
        ours: Option<BlockHash>,
    },
    /// Undo down to the fork height (`None`: below genesis, undo everything).
    Undoing(Option<u32>),
}

/// Follows the node's chain: asks for hashes and blocks, detects reorgs, finds the fork point
/// and emits undo then apply changesets.
///
/// Call order: `poll(view)` with a view of the current (committed or staged) state; on
/// [`SyncStep::Query`] call `resolve` with the answer; on `Apply`/`Undo` commit or stage the
/// changeset and pass a view including it to the next `poll`; on `CaughtUp` wait, then poll
/// again (it asks for the node's tip anew).
///
/// ```
/// use btq_index::{ChainSync, Indexer, MemoryStore, Store, SyncAnswer, SyncQuery, SyncStep};
/// use btq_core::params::Network;
/// let genesis = Network::Regtest.params().genesis_block().clone();
/// let store = MemoryStore::new();
/// let mut sync = ChainSync::new(Indexer::default());
/// loop {
///     let step = sync.poll(&store.snapshot()?)?;
///     match step {
///         SyncStep::Query(SyncQuery::NodeTip) => sync.resolve(SyncAnswer::NodeTip {
///             height: 0,
///             hash: genesis.block_hash(),
///         })?,
///         SyncStep::Query(SyncQuery::BlockHashAt(h)) => sync.resolve(SyncAnswer::BlockHashAt {
///             height: h,
///             hash: (h == 0).then(|| genesis.block_hash()),
///         })?,
///         SyncStep::Query(SyncQuery::Block { .. }) => {
///             sync.resolve(SyncAnswer::Block(Box::new(genesis.clone())))?
///         }
///         SyncStep::Apply { changeset, .. } | SyncStep::Undo(changeset) => {
///             store.commit(&changeset)?
///         }
///         SyncStep::CaughtUp => break,
///         _ => unreachable!(),
///     }
/// }
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChainSync {
    indexer: Indexer,
    state: State,
    node_tip: Option<(u32, BlockHash)>,
    /// A reorg deeper than the limit may proceed as far as the undo data reaches.
    deep_allowed: bool,
}

impl ChainSync {
    /// Creates the state machine.
    pub const fn new(indexer: Indexer) -> Self {
        Self {
            indexer,
            state: State::Start,
            node_tip: None,
            deep_allowed: false,
        }
    }

    /// Returns the indexer.
    pub const fn indexer(&self) -> &Indexer {
        &self.indexer
    }

    /// Returns the node's tip height last reported.
    pub fn node_height(&self) -> Option<u32> {
        self.node_tip.map(|t| t.0)
    }

    /// Forgets any pending work (after the driver cleared or replaced the store).
    pub fn reset(&mut self) {
        self.state = State::Start;
        self.deep_allowed = false;
    }

    /// Lets the pending reorg, which failed with [`SyncError::ReorgTooDeep`], go deeper than
    /// the limit: the fork point is searched and the index undone to it as far as the undo
    /// data reaches ([`Indexer::undo_retention`], twice the limit), then the node's branch is
    /// applied: a resync from the fork point. Deeper still, polling fails with
    /// [`SyncError::UndoUnavailable`] and only a reindex helps. The permission ends when the
    /// index has caught up with the node.
    pub fn allow_deep_reorg(&mut self) {
        self.deep_allowed = true;
    }

    /// Returns whether a reorg deeper than the limit is allowed (see
    /// [`ChainSync::allow_deep_reorg`]).
    pub const fn deep_reorg_allowed(&self) -> bool {
        self.deep_allowed
    }

    fn limit(&self) -> u32 {
        self.indexer.config().reorg_depth_limit
    }

    fn check_depth(&self, tip_height: u32, fork: Option<u32>) -> Result<(), SyncError> {
        let depth = match fork {
            Some(f) => tip_height.saturating_sub(f),
            None => tip_height.saturating_add(1),
        };
        if self.deep_allowed {
            let keep = self.indexer.undo_retention();
            if depth > keep {
                // The oldest undo record the index can hold.
                return Err(SyncError::UndoUnavailable {
                    height: tip_height.saturating_sub(keep),
                });
            }
            Ok(())
        } else if depth > self.limit() {
            Err(SyncError::ReorgTooDeep {
                depth_at_least: depth,
                limit: self.limit(),
            })
        } else {
            Ok(())
        }
    }

    /// Returns the next step for the state in `view`.
    ///
    /// # Errors
    /// A reorg deeper than the limit, a bad block from the node, or an index/store failure.
    pub fn poll(&mut self, view: &(impl ReadView + ?Sized)) -> Result<SyncStep, SyncError> {
        let mut cs = ChangeSet::default();
        Ok(match self.poll_staged(view, &mut cs)? {
            SyncStep::Staged { tx_count, size } => SyncStep::Apply {
                changeset: cs,
                tx_count,
                size,
            },
            other => other,
        })
    }

    /// [`ChainSync::poll`] for a driver that batches: the state is `base` with the uncommitted
    /// changeset `staged` on top, and the next block is applied into `staged` in place
    /// ([`SyncStep::Staged`] instead of [`SyncStep::Apply`]; see [`Indexer::stage_block`]).
    /// An [`SyncStep::Undo`] changeset is for the driver to merge into `staged` (or commit).
    ///
    /// # Errors
    /// As [`ChainSync::poll`]; `staged` is unchanged then.
    pub fn poll_staged(
        &mut self,
        base: &(impl ReadView + ?Sized),
        staged: &mut ChangeSet,
    ) -> Result<SyncStep, SyncError> {
        loop {
            let view = &Overlay::new(base, staged);
            match core::mem::replace(&mut self.state, State::Start) {
                State::Start | State::AwaitNodeTip => {
                    self.state = State::AwaitNodeTip;
                    return Ok(SyncStep::Query(SyncQuery::NodeTip));
                }
                State::Plan => {
                    let (nh, nhash) = self.node_tip.ok_or(SyncError::UnexpectedAnswer)?;
                    match read_tip(view)? {
                        None => self.state = State::Fetch(0),
                        Some(t) if t.block.height < nh => {
                            self.state = State::Fetch(t.block.height.saturating_add(1));
                        }
                        Some(t) if t.block.height == nh && t.block.hash == nhash => {
                            self.state = State::Start;
                            self.deep_allowed = false;
                            return Ok(SyncStep::CaughtUp);
                        }
                        Some(t) => {
                            let k = t.block.height.min(nh);
                            self.check_depth(t.block.height, Some(k))?;
                            self.state = State::ForkCheck(k);
                        }
                    }
                }
                State::Fetch(n) | State::AwaitHash(n) => {
                    self.state = State::AwaitHash(n);
                    return Ok(SyncStep::Query(SyncQuery::BlockHashAt(n)));
                }
                State::AwaitBlock { height, hash } => {
                    self.state = State::AwaitBlock { height, hash };
                    return Ok(SyncStep::Query(SyncQuery::Block { height, hash }));
                }
                State::GotBlock {
                    height,
                    block,
                    txids,
                } => {
                    let ours = read_tip(view)?;
                    let expected = ours.map_or(0, |t| t.block.height.saturating_add(1));
                    if expected != height {
                        self.state = State::Plan;
                        continue;
                    }
                    if let Some(t) = ours
                        && block.header.prev_blockhash != t.block.hash
                    {
                        self.check_depth(t.block.height, Some(t.block.height))?;
                        self.state = State::ForkCheck(t.block.height);
                        continue;
                    }
                    // During an initial sync, a block whose undo record would be pruned before
                    // the index reaches the node's tip gets none.
                    let keep_undo = self.node_tip.is_none_or(|(nh, _)| {
                        height.saturating_add(self.indexer.undo_retention()) > nh
                    });
                    self.indexer
                        .stage_block_with_txids(base, staged, &block, &txids, keep_undo)?;
                    let more = self.node_tip.is_some_and(|(nh, _)| height < nh);
                    self.state = if more {
                        State::Fetch(height.saturating_add(1))
                    } else {
                        State::Start
                    };
                    return Ok(SyncStep::Staged {
                        tx_count: block.txdata.len(),
                        size: block.total_size(),
                    });
                }
                State::ForkCheck(k) | State::AwaitFork { height: k, .. } => {
                    if let Some(t) = read_tip(view)? {
                        self.check_depth(t.block.height, Some(k))?;
                    }
                    let ours = view
                        .get(Table::Headers, &height_key(k))?
                        .map(|b| BlockRecord::decode(&b).map(|r| r.hash))
                        .transpose()
                        .map_err(|e| SyncError::from(StoreError::Corrupt(e)))?;
                    self.state = State::AwaitFork { height: k, ours };
                    return Ok(SyncStep::Query(SyncQuery::BlockHashAt(k)));
                }
                State::Undoing(fork) => {
                    let ours = read_tip(view)?;
                    let above = match (ours, fork) {
                        (Some(t), Some(f)) => t.block.height > f,
                        (Some(_), None) => true,
                        (None, _) => false,
                    };
                    if above {
                        if let Some(t) = ours {
                            self.check_depth(t.block.height, fork)?;
                        }
                        self.state = State::Undoing(fork);
                        return match self.indexer.undo_tip(view) {
                            Ok(cs) => Ok(SyncStep::Undo(cs)),
                            Err(IndexError::NoUndoData { height }) => {
                                Err(SyncError::UndoUnavailable { height })
                            }
                            Err(e) => Err(e.into()),
                        };
                    }
                    self.state = State::Plan;
                }
            }
        }
    }

    /// Passes the node's answer to the pending query.
    ///
    /// # Errors
    /// [`SyncError::UnexpectedAnswer`] if it answers another query; [`SyncError::BadBlock`] for
    /// a block that is not the one asked for; [`SyncError::ReorgTooDeep`] when the fork search
    /// passes the depth limit.
    pub fn resolve(&mut self, answer: SyncAnswer) -> Result<(), SyncError> {
        let state = core::mem::replace(&mut self.state, State::Start);
        match (state, answer) {
            (State::AwaitNodeTip, SyncAnswer::NodeTip { height, hash }) => {
                self.node_tip = Some((height, hash));
                self.state = State::Plan;
            }
            (State::AwaitHash(n), SyncAnswer::BlockHashAt { height, hash }) if n == height => {
                self.state = match hash {
                    Some(hash) => State::AwaitBlock { height, hash },
                    None => State::Start,
                };
            }
            (State::AwaitBlock { height, hash }, SyncAnswer::Block(block)) => {
                if block.block_hash() != hash {
                    return Err(SyncError::BadBlock {
                        height,
                        reason: "hash differs from the one asked for",
                    });
                }
                // Every transaction is hashed once, here: the merkle check and the indexer
                // share the txids.
                let txids: Vec<Txid> = block.txdata.iter().map(Transaction::txid).collect();
                if !merkle_root_matches(&txids, block.header.merkle_root.to_byte_array()) {
                    return Err(SyncError::BadBlock {
                        height,
                        reason: "transactions do not match the merkle root",
                    });
                }
                self.state = State::GotBlock {
                    height,
                    block,
                    txids,
                };
            }
            (State::AwaitFork { height: k, ours }, SyncAnswer::BlockHashAt { height, hash })
                if k == height =>
            {
                if ours.is_some() && hash == ours {
                    self.state = State::Undoing(Some(k));
                } else if let Some(prev) = k.checked_sub(1) {
                    self.state = State::ForkCheck(prev);
                } else {
                    self.state = State::Undoing(None);
                }
            }
            (state, _) => {
                self.state = state;
                return Err(SyncError::UnexpectedAnswer);
            }
        }
        Ok(())
    }
}

/// Returns whether `txids` hash to `root` through a tree that is not mutated (CVE-2012-2459),
/// as `Block::check_merkle_root` does.
fn merkle_root_matches(txids: &[Txid], root: [u8; 32]) -> bool {
    let leaves: Vec<[u8; 32]> = txids.iter().map(|t| t.to_byte_array()).collect();
    btq_core::block::merkle_root_unmutated(&leaves) == Some(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ChainBuilder;

    #[test]
    fn merkle_check_matches_core() {
        let mut c = ChainBuilder::new(3, 50);
        for n in 0..12 {
            c.push_block(n);
        }
        for b in c.blocks() {
            let txids: Vec<Txid> = b.txdata.iter().map(Transaction::txid).collect();
            let root = b.header.merkle_root.to_byte_array();
            assert_eq!(merkle_root_matches(&txids, root), b.check_merkle_root());
            assert!(merkle_root_matches(&txids, root));
            let mut bad = b.clone();
            if let Some(last) = bad.txdata.last().cloned() {
                bad.txdata.push(last);
            }
            let txids: Vec<Txid> = bad.txdata.iter().map(Transaction::txid).collect();
            assert_eq!(merkle_root_matches(&txids, root), bad.check_merkle_root());
        }
        assert!(!merkle_root_matches(&[], [0; 32]));
    }
}
