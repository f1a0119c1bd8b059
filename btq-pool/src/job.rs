//! Block templates to Stratum jobs: the coinbase (BIP34 height, pool tag, extranonce space,
//! payouts, witness commitment), its split into coinb1/coinb2, the merkle branch and the
//! `mining.notify` parameters.
//!
//! Byte orders follow Stratum V1 as miners speak it: prevhash is the internal hash with every
//! 32-bit word byte-swapped, version/nbits/ntime are 8-hex big-endian, merkle branch entries are
//! internal-order hashes, and coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2 is the non-witness
//! coinbase whose sha256d is the first merkle leaf.

use core::fmt;
use core::str::FromStr;
use std::sync::Arc;

use bitcoin_hashes::{HashEngine as _, sha256};
use btq_core::block::coinbase_merkle_branch;
use btq_core::encoding;
use btq_core::hash::BlockHash;
use btq_core::hex as bhex;
use btq_core::pow::{CompactTarget, Target};
use btq_core::script::{self, ScriptBuf};
use btq_core::tx::{OutPoint, Transaction, TxIn, TxOut, Witness};
use thiserror::Error;

use crate::template::Template;

/// Largest extranonce1 or extranonce2 size in bytes.
pub const MAX_EXTRANONCE_SIZE: usize = 16;
/// Smallest coinbase scriptSig (`bad-cb-length`).
pub const MIN_COINBASE_SCRIPT_SIG: usize = 2;
/// Largest coinbase scriptSig (`bad-cb-length`).
pub const MAX_COINBASE_SCRIPT_SIG: usize = 100;
/// Largest pool tag in bytes.
pub const MAX_POOL_TAG: usize = 64;

/// An error building a job.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JobError {
    /// The coinbase scriptSig would be outside 2..=100 bytes.
    #[error("coinbase scriptSig of {len} bytes is outside {min}..={max}")]
    ScriptSigLength {
        /// The length.
        len: usize,
        /// The minimum.
        min: usize,
        /// The maximum.
        max: usize,
    },
    /// An extranonce size is above [`MAX_EXTRANONCE_SIZE`] (or extranonce2 is zero).
    #[error("extranonce size {got} is outside {min}..={max}")]
    ExtranonceSize {
        /// The size.
        got: usize,
        /// The minimum.
        min: usize,
        /// The maximum.
        max: usize,
    },
    /// The pool tag is longer than [`MAX_POOL_TAG`].
    #[error("pool tag of {len} bytes exceeds {limit}")]
    PoolTagTooLong {
        /// The length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Fixed payouts exceed the template's coinbase value.
    #[error("payouts of {payouts} sat exceed the coinbase value of {available} sat")]
    PayoutsExceedValue {
        /// The sum of fixed payouts.
        payouts: u64,
        /// The coinbase value.
        available: u64,
    },
    /// The template height cannot be encoded.
    #[error("template height {0} cannot be encoded")]
    BadHeight(u32),
}

/// A job id: a counter, rendered as lower-case hex in `mining.notify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(u64);

impl JobId {
    /// Creates a job id from its counter value.
    pub const fn from_u64(v: u64) -> Self {
        Self(v)
    }
    /// Returns the counter value.
    pub const fn to_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// An unparsable job id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("job id is not 1 to 16 hex digits")]
pub struct ParseJobIdError;

impl FromStr for JobId {
    type Err = ParseJobIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 16 {
            return Err(ParseJobIdError);
        }
        u64::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| ParseJobIdError)
    }
}

/// How the pool's coinbase is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConfig {
    /// The script receiving the coinbase value left after `fixed_payouts` (output 0).
    pub payout_script: ScriptBuf,
    /// Outputs with fixed amounts (satoshis) after output 0, e.g. coinbase payouts.
    pub fixed_payouts: Vec<(ScriptBuf, u64)>,
    /// Bytes pushed after the BIP34 height (empty: no push).
    pub pool_tag: Vec<u8>,
    /// Whether a push opcode of the extranonce length precedes the extranonces (otherwise the
    /// extranonce bytes follow the tag raw, as the node-checked vector does).
    pub push_extranonce: bool,
    /// Bytes of extranonce1 (per session).
    pub extranonce1_size: usize,
    /// Bytes of extranonce2 (rolled by the miner).
    pub extranonce2_size: usize,
    /// The coinbase transaction version.
    pub coinbase_version: i32,
    /// The coinbase lock time.
    pub coinbase_lock_time: u32,
    /// The coinbase input's sequence.
    pub coinbase_sequence: u32,
    /// The 32-byte witness reserved value (the coinbase witness; zero by convention).
    pub witness_reserved_value: [u8; 32],
}

impl JobConfig {
    /// A config paying everything to `payout_script` with tag `/btq-kit/`, a pushed 4+4-byte
    /// extranonce, coinbase version 2.
    pub fn new(payout_script: ScriptBuf) -> Self {
        Self {
            payout_script,
            fixed_payouts: Vec::new(),
            pool_tag: b"/btq-kit/".to_vec(),
            push_extranonce: true,
            extranonce1_size: 4,
            extranonce2_size: 4,
            coinbase_version: 2,
            coinbase_lock_time: 0,
            coinbase_sequence: u32::MAX,
            witness_reserved_value: [0; 32],
        }
    }

    /// Checks the sizes.
    ///
    /// # Errors
    /// [`JobError`] for an out-of-range extranonce size or pool tag.
    pub fn validate(&self) -> Result<(), JobError> {
        if self.extranonce1_size > MAX_EXTRANONCE_SIZE {
            return Err(JobError::ExtranonceSize {
                got: self.extranonce1_size,
                min: 0,
                max: MAX_EXTRANONCE_SIZE,
            });
        }
        if self.extranonce2_size == 0 || self.extranonce2_size > MAX_EXTRANONCE_SIZE {
            return Err(JobError::ExtranonceSize {
                got: self.extranonce2_size,
                min: 1,
                max: MAX_EXTRANONCE_SIZE,
            });
        }
        if self.pool_tag.len() > MAX_POOL_TAG {
            return Err(JobError::PoolTagTooLong {
                len: self.pool_tag.len(),
                limit: MAX_POOL_TAG,
            });
        }
        Ok(())
    }
}

/// The `mining.notify` parameters of a job, rendered as Stratum expects them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyParams {
    /// Job id (hex).
    pub job_id: String,
    /// Previous block hash in Stratum word order.
    pub prevhash: String,
    /// Coinbase part before the extranonces (hex).
    pub coinb1: String,
    /// Coinbase part after the extranonces (hex).
    pub coinb2: String,
    /// Merkle branch, internal-order hashes (hex).
    pub merkle_branch: Vec<String>,
    /// Block version, 8-hex big-endian.
    pub version: String,
    /// nBits, 8-hex big-endian.
    pub nbits: String,
    /// nTime, 8-hex big-endian.
    pub ntime: String,
    /// Whether miners must drop older jobs.
    pub clean_jobs: bool,
}

impl NotifyParams {
    /// Returns the params as the JSON array of a `mining.notify` notification.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!([
            self.job_id,
            self.prevhash,
            self.coinb1,
            self.coinb2,
            self.merkle_branch,
            self.version,
            self.nbits,
            self.ntime,
            self.clean_jobs
        ])
    }
}

/// Renders a hash in Stratum's prevhash order: internal bytes with each 32-bit word
/// byte-swapped.
pub fn stratum_prevhash(hash: &BlockHash) -> String {
    let mut b = hash.to_byte_array();
    for w in b.chunks_exact_mut(4) {
        w.reverse();
    }
    bhex::encode(&b)
}

/// Parses Stratum's prevhash order back into a hash.
///
/// # Errors
/// Bad hex or length.
pub fn parse_stratum_prevhash(s: &str) -> Result<BlockHash, bhex::HexError> {
    let mut b = bhex::decode_array::<32>(s)?;
    for w in b.chunks_exact_mut(4) {
        w.reverse();
    }
    Ok(BlockHash::from_byte_array(b))
}

/// A job: one template turned into work for miners, with the per-job constants that share
/// validation needs precomputed.
#[derive(Debug, Clone)]
pub struct Job {
    id: JobId,
    template: Arc<Template>,
    coinb1: Vec<u8>,
    coinb2: Vec<u8>,
    merkle_branch: Vec<[u8; 32]>,
    clean_jobs: bool,
    extranonce1_size: usize,
    extranonce2_size: usize,
    witness_reserved_value: [u8; 32],
    network_target: Target,
    network_difficulty: f64,
    /// SHA-256 engine after coinb1 (its full 64-byte blocks compressed, the rest buffered).
    coinb1_engine: sha256::HashEngine,
}

impl Job {
    /// Returns the job id.
    pub fn id(&self) -> JobId {
        self.id
    }
    /// Returns the template the job was built from.
    pub fn template(&self) -> &Arc<Template> {
        &self.template
    }
    /// Returns coinb1.
    pub fn coinb1(&self) -> &[u8] {
        &self.coinb1
    }
    /// Returns coinb2.
    pub fn coinb2(&self) -> &[u8] {
        &self.coinb2
    }
    /// Returns the merkle branch (internal order).
    pub fn merkle_branch(&self) -> &[[u8; 32]] {
        &self.merkle_branch
    }
    /// Returns whether the job cleans older ones (a new tip).
    pub fn clean_jobs(&self) -> bool {
        self.clean_jobs
    }
    /// Returns the extranonce1 size.
    pub fn extranonce1_size(&self) -> usize {
        self.extranonce1_size
    }
    /// Returns the extranonce2 size.
    pub fn extranonce2_size(&self) -> usize {
        self.extranonce2_size
    }
    /// Returns the coinbase witness reserved value.
    pub fn witness_reserved_value(&self) -> &[u8; 32] {
        &self.witness_reserved_value
    }
    /// Returns the network target.
    pub fn network_target(&self) -> Target {
        self.network_target
    }
    /// Returns the network difficulty (relative to `0x1d00ffff`).
    pub fn network_difficulty(&self) -> f64 {
        self.network_difficulty
    }
    /// Returns the previous block hash.
    pub fn prev_blockhash(&self) -> BlockHash {
        self.template.prev_blockhash
    }
    /// Returns the block height.
    pub fn height(&self) -> u32 {
        self.template.height
    }
    /// Returns the template's block version.
    pub fn version(&self) -> i32 {
        self.template.version
    }
    /// Returns the template's nBits.
    pub fn bits(&self) -> CompactTarget {
        self.template.bits
    }
    /// Returns the template's time (`curtime`), the job's ntime.
    pub fn ntime(&self) -> u32 {
        self.template.cur_time
    }

    /// Returns the `mining.notify` parameters.
    pub fn notify_params(&self) -> NotifyParams {
        NotifyParams {
            job_id: self.id.to_string(),
            prevhash: stratum_prevhash(&self.template.prev_blockhash),
            coinb1: bhex::encode(&self.coinb1),
            coinb2: bhex::encode(&self.coinb2),
            merkle_branch: self.merkle_branch.iter().map(|h| bhex::encode(h)).collect(),
            version: format!("{:08x}", self.template.version),
            nbits: format!("{:08x}", self.template.bits.to_consensus()),
            ntime: format!("{:08x}", self.template.cur_time),
            clean_jobs: self.clean_jobs,
        }
    }

    /// Computes the coinbase txid (internal order) for the given extranonces from the
    /// precomputed coinb1 state: only the extranonces and coinb2 are hashed.
    pub fn coinbase_txid(&self, extranonce1: &[u8], extranonce2: &[u8]) -> [u8; 32] {
        let mut e = self.coinb1_engine.clone();
        e.input(extranonce1);
        e.input(extranonce2);
        e.input(&self.coinb2);
        sha256::Hash::from_engine(e).hash_again().to_byte_array()
    }

    /// Computes the merkle root (internal order) for the given extranonces.
    pub fn merkle_root(&self, extranonce1: &[u8], extranonce2: &[u8]) -> [u8; 32] {
        btq_core::block::fold_merkle_branch(
            self.coinbase_txid(extranonce1, extranonce2),
            &self.merkle_branch,
        )
    }

    /// Returns the non-witness coinbase bytes for the given extranonces.
    pub fn coinbase_bytes(&self, extranonce1: &[u8], extranonce2: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(
            self.coinb1.len() + extranonce1.len() + extranonce2.len() + self.coinb2.len(),
        );
        v.extend_from_slice(&self.coinb1);
        v.extend_from_slice(extranonce1);
        v.extend_from_slice(extranonce2);
        v.extend_from_slice(&self.coinb2);
        v
    }
}

/// Builds jobs from templates; tracks the tip to decide `clean_jobs`.
///
/// Call [`JobFactory::build`] for every new template: a template on a new tip gives a job with
/// `clean_jobs = true`; a new template on the same tip (new transactions, new time) gives one
/// with `clean_jobs = false`, so miners keep working on older jobs too.
#[derive(Debug, Clone)]
pub struct JobFactory {
    config: JobConfig,
    next_id: u64,
    tip: Option<BlockHash>,
}

impl JobFactory {
    /// Creates a factory.
    ///
    /// # Errors
    /// An invalid config ([`JobConfig::validate`]).
    pub fn new(config: JobConfig) -> Result<Self, JobError> {
        config.validate()?;
        Ok(Self {
            config,
            next_id: 1,
            tip: None,
        })
    }

    /// Returns the config.
    pub fn config(&self) -> &JobConfig {
        &self.config
    }

    /// Replaces the payout outputs for the next jobs.
    pub fn set_payouts(&mut self, payout_script: ScriptBuf, fixed_payouts: Vec<(ScriptBuf, u64)>) {
        self.config.payout_script = payout_script;
        self.config.fixed_payouts = fixed_payouts;
    }

    /// Builds the coinbase transaction (with witness) for `template` with the given extranonce
    /// bytes, and the byte offset of the extranonces in its non-witness serialization.
    ///
    /// # Errors
    /// [`JobError`] when the scriptSig or outputs cannot be built.
    pub fn build_coinbase(
        &self,
        template: &Template,
        extranonce: &[u8],
    ) -> Result<(Transaction, usize), JobError> {
        let c = &self.config;
        let height = template.height;
        let mut prefix = Vec::with_capacity(16 + c.pool_tag.len());
        script::push_int(&mut prefix, i64::from(height));
        if !c.pool_tag.is_empty() {
            script::push_slice(&mut prefix, &c.pool_tag);
        }
        let en_len = extranonce.len();
        if c.push_extranonce {
            let n = u8::try_from(en_len).map_err(|_| JobError::ExtranonceSize {
                got: en_len,
                min: 1,
                max: MAX_EXTRANONCE_SIZE * 2,
            })?;
            if n == 0 || n > 0x4b {
                return Err(JobError::ExtranonceSize {
                    got: en_len,
                    min: 1,
                    max: MAX_EXTRANONCE_SIZE * 2,
                });
            }
            prefix.push(n);
        }
        let script_len = prefix.len() + en_len;
        if !(MIN_COINBASE_SCRIPT_SIG..=MAX_COINBASE_SCRIPT_SIG).contains(&script_len) {
            return Err(JobError::ScriptSigLength {
                len: script_len,
                min: MIN_COINBASE_SCRIPT_SIG,
                max: MAX_COINBASE_SCRIPT_SIG,
            });
        }
        let mut script_sig = prefix.clone();
        script_sig.extend_from_slice(extranonce);

        let fixed: u64 = c
            .fixed_payouts
            .iter()
            .try_fold(0u64, |a, (_, v)| a.checked_add(*v))
            .unwrap_or(u64::MAX);
        let rest =
            template
                .coinbase_value
                .checked_sub(fixed)
                .ok_or(JobError::PayoutsExceedValue {
                    payouts: fixed,
                    available: template.coinbase_value,
                })?;
        let mut output = Vec::with_capacity(c.fixed_payouts.len() + 2);
        output.push(TxOut {
            value: rest,
            script_pubkey: c.payout_script.clone(),
        });
        for (s, v) in &c.fixed_payouts {
            output.push(TxOut {
                value: *v,
                script_pubkey: s.clone(),
            });
        }
        let commitment = template
            .default_witness_commitment
            .clone()
            .unwrap_or_else(|| template.compute_witness_commitment(&c.witness_reserved_value));
        output.push(TxOut {
            value: 0,
            script_pubkey: commitment,
        });
        let tx = Transaction {
            version: c.coinbase_version,
            input: vec![TxIn {
                previous_output: OutPoint::NULL,
                script_sig: ScriptBuf::from_bytes(script_sig),
                sequence: c.coinbase_sequence,
                witness: Witness::from_items(vec![c.witness_reserved_value.to_vec()]),
            }],
            output,
            lock_time: c.coinbase_lock_time,
        };
        // version(4) ‖ input count(1) ‖ prevout(36) ‖ scriptSig length ‖ prefix
        let offset = 4 + 1 + 36 + encoding::compact_size_len(script_len as u64) + prefix.len();
        Ok((tx, offset))
    }

    /// Builds the next job from `template`.
    ///
    /// # Errors
    /// [`JobError`] when the coinbase cannot be built (the factory's tip is unchanged then).
    pub fn build(&mut self, template: Arc<Template>) -> Result<Job, JobError> {
        let c = &self.config;
        let en_total = c.extranonce1_size + c.extranonce2_size;
        let placeholder = [0u8; MAX_EXTRANONCE_SIZE * 2];
        let (tx, offset) =
            self.build_coinbase(&template, placeholder.get(..en_total).unwrap_or(&[]))?;
        let mut stripped = Vec::with_capacity(tx.stripped_size());
        tx.encode_stripped(&mut stripped);
        let coinb1 = stripped.get(..offset).unwrap_or(&[]).to_vec();
        let coinb2 = stripped.get(offset + en_total..).unwrap_or(&[]).to_vec();
        debug_assert_eq!(coinb1.len() + en_total + coinb2.len(), stripped.len());
        let merkle_branch = coinbase_merkle_branch(&template.txid_leaves());
        let mut coinb1_engine = sha256::HashEngine::new();
        coinb1_engine.input(&coinb1);
        let network_target = template.target;
        let clean_jobs = self.tip != Some(template.prev_blockhash);
        self.tip = Some(template.prev_blockhash);
        let id = JobId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        Ok(Job {
            id,
            network_difficulty: template.bits.difficulty(),
            template,
            coinb1,
            coinb2,
            merkle_branch,
            clean_jobs,
            extranonce1_size: c.extranonce1_size,
            extranonce2_size: c.extranonce2_size,
            witness_reserved_value: c.witness_reserved_value,
            network_target,
            coinb1_engine,
        })
    }
}
