//! Block assembly from a block-finding share, local checks before submission, `submitblock`
//! results as typed outcomes, and tracking of found blocks through confirmation, orphaning and
//! coinbase maturity.

use std::collections::VecDeque;

use btq_core::block::{Block, BlockHeader};
use btq_core::encoding;
use btq_core::hash::BlockHash;
use btq_core::params::{COINBASE_MATURITY, ChainParams};
use btq_core::tx::{Transaction, Weight, Witness};
use thiserror::Error;

use crate::share::BlockCandidate;
use crate::template::Template;

/// A local check that failed; each names the node's reject reason it prevents.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BlockCheckError {
    /// The coinbase bytes do not decode (our bug).
    #[error("coinbase does not decode: {0}")]
    CoinbaseDecode(encoding::DecodeError),
    /// Weight above the limit (`bad-blk-weight`).
    #[error("block weight {weight} exceeds {limit}")]
    Weight {
        /// The weight.
        weight: u64,
        /// The limit.
        limit: u64,
    },
    /// Header merkle root does not match (`bad-txnmrklroot`).
    #[error("merkle root mismatch")]
    MerkleRoot,
    /// Witness commitment wrong (`bad-witness-merkle-match`).
    #[error("witness commitment mismatch")]
    WitnessCommitment,
    /// Coinbase pays more than allowed (`bad-cb-amount`).
    #[error("coinbase pays {paid} sat, at most {allowed} allowed")]
    CoinbaseValue {
        /// Paid.
        paid: u64,
        /// Allowed.
        allowed: u64,
    },
    /// The BIP34 height is missing or wrong (`bad-cb-height`).
    #[error("coinbase height {found:?}, expected {expected}")]
    CoinbaseHeight {
        /// Found.
        found: Option<u32>,
        /// Expected.
        expected: u32,
    },
    /// Proof of work fails (`high-hash`).
    #[error("header hash above target")]
    HighHash,
    /// A transaction fails context-free checks.
    #[error("transaction {index} fails checks: {reason}")]
    Transaction {
        /// Index in the block.
        index: usize,
        /// The failure.
        reason: btq_core::tx::TxCheckError,
    },
}

/// Assembles the full block of a block-finding share: the coinbase with its witness
/// reserved value, then the template's transactions.
///
/// # Errors
/// [`BlockCheckError::CoinbaseDecode`] if the coinbase bytes do not decode (a pool bug).
pub fn assemble_block(candidate: &BlockCandidate) -> Result<Block, BlockCheckError> {
    let job = &candidate.job;
    let bytes = job.coinbase_bytes(
        candidate.extranonce1.as_bytes(),
        candidate.extranonce2.as_bytes(),
    );
    let mut coinbase: Transaction =
        encoding::decode_from_slice(&bytes).map_err(BlockCheckError::CoinbaseDecode)?;
    if let Some(input) = coinbase.input.first_mut() {
        input.witness = Witness::from_items(vec![job.witness_reserved_value().to_vec()]);
    }
    let template = job.template();
    let mut txdata = Vec::with_capacity(template.transactions.len() + 1);
    txdata.push(coinbase);
    txdata.extend(template.transactions.iter().map(|t| t.tx.clone()));
    Ok(Block {
        header: candidate.header,
        txdata,
    })
}

/// Checks an assembled block before submission: PoW, merkle root, witness commitment,
/// BIP34 height, weight, coinbase value ≤ subsidy + fees (and ≤ the template's
/// `coinbasevalue`), and the context-free transaction checks.
///
/// # Errors
/// The first failing [`BlockCheckError`].
pub fn check_block(
    block: &Block,
    template: &Template,
    params: &ChainParams,
) -> Result<(), BlockCheckError> {
    if !block.header.check_pow(params.pow_limit) {
        return Err(BlockCheckError::HighHash);
    }
    if !block.check_merkle_root() {
        return Err(BlockCheckError::MerkleRoot);
    }
    if !block.check_witness_commitment() {
        return Err(BlockCheckError::WitnessCommitment);
    }
    let found = block.bip34_height();
    if found != Some(template.height) {
        return Err(BlockCheckError::CoinbaseHeight {
            found,
            expected: template.height,
        });
    }
    let weight = block.weight().to_wu();
    let limit = template.weight_limit.min(Weight::MAX_BLOCK.to_wu());
    if weight > limit {
        return Err(BlockCheckError::Weight { weight, limit });
    }
    for (index, tx) in block.txdata.iter().enumerate() {
        tx.check()
            .map_err(|reason| BlockCheckError::Transaction { index, reason })?;
    }
    let fees = template.total_fees().unwrap_or(u64::MAX);
    let allowed = params
        .subsidy(template.height)
        .to_sat()
        .saturating_add(fees)
        .min(template.coinbase_value);
    let paid = block
        .txdata
        .first()
        .map(|cb| {
            cb.output
                .iter()
                .fold(0u64, |a, o| a.saturating_add(o.value))
        })
        .unwrap_or(0);
    if paid > allowed {
        return Err(BlockCheckError::CoinbaseValue { paid, allowed });
    }
    Ok(())
}

/// A `submitblock` reject reason, as the node names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// `bad-cb-height`.
    BadCbHeight,
    /// `bad-cb-amount`.
    BadCbAmount,
    /// `bad-cb-length`.
    BadCbLength,
    /// `high-hash`.
    HighHash,
    /// `bad-diffbits`.
    BadDiffbits,
    /// `bad-blk-length`.
    BadBlkLength,
    /// `bad-blk-weight`.
    BadBlkWeight,
    /// `bad-txnmrklroot`.
    BadTxnMrklRoot,
    /// `bad-witness-merkle-match`.
    BadWitnessMerkleMatch,
    /// `bad-prevblk` or `prev-blk-not-found`.
    BadPrevblk,
    /// `time-too-old`.
    TimeTooOld,
    /// `time-too-new`.
    TimeTooNew,
    /// `inconclusive-not-best-prevblk` and other stale-tip reasons.
    NotBestPrevblk,
    /// Any other reason string, kept verbatim.
    Other(String),
}

impl RejectReason {
    /// Maps the node's reason string.
    pub fn from_node(s: &str) -> Self {
        match s {
            "bad-cb-height" => Self::BadCbHeight,
            "bad-cb-amount" => Self::BadCbAmount,
            "bad-cb-length" => Self::BadCbLength,
            "high-hash" => Self::HighHash,
            "bad-diffbits" => Self::BadDiffbits,
            "bad-blk-length" => Self::BadBlkLength,
            "bad-blk-weight" => Self::BadBlkWeight,
            "bad-txnmrklroot" => Self::BadTxnMrklRoot,
            "bad-witness-merkle-match" => Self::BadWitnessMerkleMatch,
            "bad-prevblk" | "prev-blk-not-found" => Self::BadPrevblk,
            "time-too-old" => Self::TimeTooOld,
            "time-too-new" => Self::TimeTooNew,
            "inconclusive-not-best-prevblk" => Self::NotBestPrevblk,
            other => Self::Other(other.chars().take(200).collect()),
        }
    }

    /// Returns the node's string for this reason.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BadCbHeight => "bad-cb-height",
            Self::BadCbAmount => "bad-cb-amount",
            Self::BadCbLength => "bad-cb-length",
            Self::HighHash => "high-hash",
            Self::BadDiffbits => "bad-diffbits",
            Self::BadBlkLength => "bad-blk-length",
            Self::BadBlkWeight => "bad-blk-weight",
            Self::BadTxnMrklRoot => "bad-txnmrklroot",
            Self::BadWitnessMerkleMatch => "bad-witness-merkle-match",
            Self::BadPrevblk => "bad-prevblk",
            Self::TimeTooOld => "time-too-old",
            Self::TimeTooNew => "time-too-new",
            Self::NotBestPrevblk => "inconclusive-not-best-prevblk",
            Self::Other(s) => s,
        }
    }
}

/// The outcome of `submitblock`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitOutcome {
    /// `null`: accepted.
    Accepted,
    /// `duplicate`: already known (and valid).
    Duplicate,
    /// `inconclusive`: accepted but not (yet) on the best chain.
    Inconclusive,
    /// A reject reason.
    Rejected(RejectReason),
}

impl SubmitOutcome {
    /// Maps a `submitblock` JSON result.
    pub fn from_rpc_result(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Self::Accepted,
            serde_json::Value::String(s) => Self::from_node_str(s),
            other => Self::Rejected(RejectReason::Other(
                other.to_string().chars().take(200).collect(),
            )),
        }
    }

    /// Maps a `submitblock` string result.
    pub fn from_node_str(s: &str) -> Self {
        match s {
            "duplicate" => Self::Duplicate,
            "inconclusive" => Self::Inconclusive,
            "duplicate-inconclusive" => Self::Inconclusive,
            "duplicate-invalid" => Self::Rejected(RejectReason::Other(s.to_owned())),
            r => Self::Rejected(RejectReason::from_node(r)),
        }
    }

    /// Returns the JSON result the node would give.
    pub fn to_rpc_result(&self) -> serde_json::Value {
        match self {
            Self::Accepted => serde_json::Value::Null,
            Self::Duplicate => "duplicate".into(),
            Self::Inconclusive => "inconclusive".into(),
            Self::Rejected(r) => r.as_str().into(),
        }
    }

    /// Returns true if the node holds the block.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted | Self::Duplicate | Self::Inconclusive)
    }
}

/// The state of a found block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FoundBlockState {
    /// On the main chain with this many confirmations (1 = the tip).
    Confirmed(u32),
    /// No longer on the main chain.
    Orphaned,
    /// Its coinbase is spendable ([`COINBASE_MATURITY`] confirmations).
    Mature,
}

/// A found block being tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundBlock {
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Its coinbase value.
    pub reward: u64,
    /// Its state.
    pub state: FoundBlockState,
}

/// A state change of a found block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundBlockEvent {
    /// The block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// The new state.
    pub state: FoundBlockState,
}

/// Tracks found blocks through confirmation, orphaning and maturity; bounded to `cap`
/// blocks (the oldest settled blocks are dropped first).
///
/// Feed it [`FoundBlockTracker::handle_tip`] with the tip height and a lookup of the main
/// chain's hash at a height (answered by the driver from the node or the embedded chain).
#[derive(Debug, Clone)]
pub struct FoundBlockTracker {
    blocks: VecDeque<FoundBlock>,
    cap: usize,
}

impl FoundBlockTracker {
    /// Creates a tracker keeping at most `cap` blocks.
    pub fn new(cap: usize) -> Self {
        Self {
            blocks: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Starts tracking an accepted block.
    pub fn handle_found(&mut self, header: &BlockHeader, height: u32, reward: u64) {
        let hash = header.block_hash();
        if self.blocks.iter().any(|b| b.hash == hash) {
            return;
        }
        if self.blocks.len() >= self.cap {
            let settled = self.blocks.iter().position(|b| {
                matches!(b.state, FoundBlockState::Mature | FoundBlockState::Orphaned)
            });
            match settled {
                Some(i) => {
                    self.blocks.remove(i);
                }
                None => {
                    self.blocks.pop_front();
                }
            }
        }
        self.blocks.push_back(FoundBlock {
            hash,
            height,
            reward,
            state: FoundBlockState::Confirmed(1),
        });
    }

    /// Updates every unsettled block for a new tip; returns the changes.
    pub fn handle_tip(
        &mut self,
        tip_height: u32,
        hash_at: impl Fn(u32) -> Option<BlockHash>,
    ) -> Vec<FoundBlockEvent> {
        let mut events = Vec::new();
        for b in &mut self.blocks {
            if matches!(b.state, FoundBlockState::Mature) {
                continue;
            }
            let new_state = if hash_at(b.height) == Some(b.hash) {
                let confs = tip_height.saturating_sub(b.height).saturating_add(1);
                if confs >= COINBASE_MATURITY {
                    FoundBlockState::Mature
                } else {
                    FoundBlockState::Confirmed(confs)
                }
            } else {
                FoundBlockState::Orphaned
            };
            if new_state != b.state {
                b.state = new_state;
                events.push(FoundBlockEvent {
                    hash: b.hash,
                    height: b.height,
                    state: new_state,
                });
            }
        }
        events
    }

    /// Returns the tracked blocks, oldest first.
    pub fn blocks(&self) -> impl Iterator<Item = &FoundBlock> {
        self.blocks.iter()
    }
}
