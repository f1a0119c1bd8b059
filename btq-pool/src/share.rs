//! Share validation: rebuild the coinbase txid from the job's precomputed coinb1 state, fold
//! the merkle branch, build the 80-byte header, sha256d it and compare with the session's share
//! target and the network target.
//!
//! [`ShareValidator`] keeps the recent jobs (at most [`ValidatorConfig::max_jobs`]) and, per
//! job, a bounded set of accepted header hashes for duplicate detection (at most
//! [`ValidatorConfig::max_shares_per_job`]). Worst-case memory is about
//! `max_jobs × max_shares_per_job × 32` bytes for the duplicate sets plus the jobs themselves.

use core::hash::{BuildHasherDefault, Hasher};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bitcoin_hashes::{HashEngine as _, sha256};
use btq_core::block::BlockHeader;
use btq_core::hash::BlockHash;
use btq_core::hex as bhex;
use btq_core::pow::{ShareDifficulty, Target, U256};
use btq_core::time::UnixTime;
use thiserror::Error;

use crate::job::{Job, JobId, MAX_EXTRANONCE_SIZE};

/// BIP 310's default version-rolling mask (BIP 320 bits 13–28).
pub const DEFAULT_VERSION_MASK: u32 = 0x1fff_e000;
/// `MAX_FUTURE_BLOCK_TIME`: how far ntime may run ahead of the pool's clock (seconds).
pub const MAX_FUTURE_NTIME_SECS: u64 = 7200;

/// Why a share was rejected.
///
/// Groups by fault: `Malformed*` (bad bytes from the miner), protocol rejects (unknown or stale
/// job, duplicate, low difficulty, ntime, sizes, version bits) and [`ShareError::Internal`]
/// (our bug; never a reason to ban a miner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ShareError {
    /// A submit field is not valid hex of the right length.
    #[error("malformed submit field `{field}`")]
    Malformed {
        /// The field.
        field: &'static str,
    },
    /// No such job (never issued, or evicted).
    #[error("unknown job {0}")]
    UnknownJob(JobId),
    /// The job is for an old tip.
    #[error("stale job {0}")]
    StaleJob(JobId),
    /// The same header was already submitted for this job.
    #[error("duplicate share")]
    Duplicate,
    /// The header hash meets neither the share target nor the network target.
    #[error("low difficulty share")]
    LowDifficulty,
    /// ntime is below the template time.
    #[error("ntime {ntime} is below the minimum {min}")]
    NtimeTooOld {
        /// The submitted ntime.
        ntime: u32,
        /// The minimum.
        min: u32,
    },
    /// ntime is too far in the future.
    #[error("ntime {ntime} is above the maximum {max}")]
    NtimeTooNew {
        /// The submitted ntime.
        ntime: u32,
        /// The maximum.
        max: u64,
    },
    /// extranonce2 has the wrong size.
    #[error("extranonce2 of {got} bytes, expected {expected}")]
    Extranonce2Size {
        /// The expected size.
        expected: usize,
        /// The submitted size.
        got: usize,
    },
    /// Version bits outside the negotiated mask.
    #[error("version bits {bits:#010x} outside mask {mask:#010x}")]
    VersionBitsOutsideMask {
        /// The submitted bits.
        bits: u32,
        /// The session's mask.
        mask: u32,
    },
    /// The job's duplicate set is full; the miner must move to a newer job.
    #[error("job {0} has reached its share limit")]
    JobShareLimit(JobId),
    /// The session's extranonce1 does not fit the job (our caller's mistake).
    #[error("session extranonce1 of {got} bytes, job expects {expected}")]
    Extranonce1Size {
        /// The job's size.
        expected: usize,
        /// The session's size.
        got: usize,
    },
    /// A logic error in the pool.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// A Stratum reject: code and message (slush convention, `stratum-v1.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StratumReject {
    /// 20 other, 21 job not found (stale), 22 duplicate, 23 low difficulty.
    pub code: i32,
    /// The message.
    pub message: &'static str,
    /// Whether the miner is at fault (counts toward bans); internal errors never are.
    pub miner_fault: bool,
}

impl From<&ShareError> for StratumReject {
    fn from(e: &ShareError) -> Self {
        let (code, message, miner_fault) = match e {
            ShareError::Malformed { .. } => (20, "malformed share", true),
            ShareError::UnknownJob(_) => (21, "job not found", false),
            ShareError::StaleJob(_) | ShareError::JobShareLimit(_) => (21, "stale job", false),
            ShareError::Duplicate => (22, "duplicate share", true),
            ShareError::LowDifficulty => (23, "low difficulty share", true),
            ShareError::NtimeTooOld { .. } => (20, "ntime out of range", true),
            ShareError::NtimeTooNew { .. } => (20, "ntime out of range", true),
            ShareError::Extranonce2Size { .. } => (20, "incorrect extranonce2 size", true),
            ShareError::VersionBitsOutsideMask { .. } => (20, "version bits outside mask", true),
            ShareError::Extranonce1Size { .. } | ShareError::Internal(_) => {
                (20, "internal error", false)
            }
        };
        Self {
            code,
            message,
            miner_fault,
        }
    }
}

/// An extranonce of up to [`MAX_EXTRANONCE_SIZE`] bytes, stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtraNonce {
    bytes: [u8; MAX_EXTRANONCE_SIZE],
    len: u8,
}

impl core::fmt::Debug for ExtraNonce {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ExtraNonce({})", bhex::encode(self.as_bytes()))
    }
}

impl ExtraNonce {
    /// Creates an extranonce from bytes, or `None` if longer than [`MAX_EXTRANONCE_SIZE`].
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        let len = u8::try_from(b.len()).ok()?;
        let mut bytes = [0u8; MAX_EXTRANONCE_SIZE];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(Self { bytes, len })
    }

    /// Creates an extranonce of `size` bytes holding `value` big-endian (for counters).
    pub fn from_counter(value: u64, size: usize) -> Option<Self> {
        let be = value.to_be_bytes();
        let mut v = [0u8; MAX_EXTRANONCE_SIZE];
        let dst = v.get_mut(..size)?;
        let n = size.min(8);
        let src = be.get(8 - n..)?;
        dst.get_mut(size - n..)?.copy_from_slice(src);
        Self::from_slice(dst)
    }

    /// Parses hex of exactly `2 × size` digits.
    ///
    /// # Errors
    /// [`ShareError::Extranonce2Size`] for a wrong length, [`ShareError::Malformed`] for bad hex.
    pub fn from_hex(s: &str, size: usize) -> Result<Self, ShareError> {
        if s.len() != size.saturating_mul(2) {
            return Err(ShareError::Extranonce2Size {
                expected: size,
                got: s.len() / 2,
            });
        }
        let v =
            bhex::decode_bounded(s, MAX_EXTRANONCE_SIZE).map_err(|_| ShareError::Malformed {
                field: "extranonce2",
            })?;
        Self::from_slice(&v).ok_or(ShareError::Malformed {
            field: "extranonce2",
        })
    }

    /// Returns the bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Returns the length.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Returns true when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A `mining.submit`, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submit {
    /// The job.
    pub job_id: JobId,
    /// The miner's extranonce2.
    pub extranonce2: ExtraNonce,
    /// nTime.
    pub ntime: u32,
    /// nNonce.
    pub nonce: u32,
    /// BIP 310 version bits, if the miner rolls the version.
    pub version_bits: Option<u32>,
}

fn hex_u32(s: &str, field: &'static str) -> Result<u32, ShareError> {
    let b = bhex::decode_array::<4>(s).map_err(|_| ShareError::Malformed { field })?;
    Ok(u32::from_be_bytes(b))
}

impl Submit {
    /// Parses the hex params of `mining.submit` (`[worker, job_id, extranonce2, ntime, nonce,
    /// version_bits?]`); ntime, nonce and version bits are 8-hex big-endian.
    ///
    /// # Errors
    /// [`ShareError::Malformed`], [`ShareError::Extranonce2Size`].
    pub fn from_hex(
        job_id: &str,
        extranonce2: &str,
        ntime: &str,
        nonce: &str,
        version_bits: Option<&str>,
        extranonce2_size: usize,
    ) -> Result<Self, ShareError> {
        let job_id = job_id
            .parse()
            .map_err(|_| ShareError::Malformed { field: "job_id" })?;
        Ok(Self {
            job_id,
            extranonce2: ExtraNonce::from_hex(extranonce2, extranonce2_size)?,
            ntime: hex_u32(ntime, "ntime")?,
            nonce: hex_u32(nonce, "nonce")?,
            version_bits: version_bits
                .map(|v| hex_u32(v, "version_bits"))
                .transpose()?,
        })
    }
}

/// What the validator needs to know about a session.
#[derive(Debug, Clone)]
pub struct SessionParams {
    worker: Arc<str>,
    extranonce1: ExtraNonce,
    difficulty: ShareDifficulty,
    share_target: Target,
    version_mask: u32,
}

impl SessionParams {
    /// Creates session params; the share target is computed once here.
    pub fn new(
        worker: Arc<str>,
        extranonce1: ExtraNonce,
        difficulty: ShareDifficulty,
        version_mask: u32,
    ) -> Self {
        Self {
            worker,
            extranonce1,
            difficulty,
            share_target: difficulty.to_target(),
            version_mask,
        }
    }
    /// Changes the share difficulty.
    pub fn set_difficulty(&mut self, difficulty: ShareDifficulty) {
        self.difficulty = difficulty;
        self.share_target = difficulty.to_target();
    }
    /// Changes the negotiated version mask.
    pub fn set_version_mask(&mut self, mask: u32) {
        self.version_mask = mask;
    }
    /// Returns the worker name.
    pub fn worker(&self) -> &Arc<str> {
        &self.worker
    }
    /// Returns extranonce1.
    pub fn extranonce1(&self) -> &ExtraNonce {
        &self.extranonce1
    }
    /// Returns the difficulty.
    pub fn difficulty(&self) -> ShareDifficulty {
        self.difficulty
    }
    /// Returns the share target.
    pub fn share_target(&self) -> Target {
        self.share_target
    }
    /// Returns the version mask.
    pub fn version_mask(&self) -> u32 {
        self.version_mask
    }
}

/// An accepted share, for the reward schemes.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareRecord {
    /// The worker (`address.worker`).
    pub worker: Arc<str>,
    /// The job.
    pub job_id: JobId,
    /// The block height worked on.
    pub height: u32,
    /// The session difficulty the share was credited at.
    pub difficulty: f64,
    /// The difficulty the hash actually achieves.
    pub actual_difficulty: f64,
    /// The network difficulty.
    pub network_difficulty: f64,
    /// The pool's wall-clock time at validation.
    pub time: UnixTime,
    /// The header hash.
    pub hash: BlockHash,
    /// Whether the share is a block.
    pub is_block: bool,
}

/// A share that meets the network target: everything needed to assemble the block.
#[derive(Debug, Clone)]
pub struct BlockCandidate {
    /// The job.
    pub job: Arc<Job>,
    /// The solved header.
    pub header: BlockHeader,
    /// The session's extranonce1.
    pub extranonce1: ExtraNonce,
    /// The miner's extranonce2.
    pub extranonce2: ExtraNonce,
}

/// The result of an accepted share.
#[derive(Debug, Clone)]
pub struct AcceptedShare {
    /// The record to credit.
    pub record: ShareRecord,
    /// The block to assemble and submit, when the share meets the network target.
    pub block: Option<BlockCandidate>,
}

/// Validator limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorConfig {
    /// Jobs kept for stale detection and validation (oldest evicted first; a share on an
    /// evicted job is [`ShareError::UnknownJob`]).
    pub max_jobs: usize,
    /// Accepted shares remembered per job for duplicate detection; once full, the job rejects
    /// further shares with [`ShareError::JobShareLimit`].
    pub max_shares_per_job: usize,
    /// How far ntime may be ahead of the pool's clock.
    pub max_future_ntime_secs: u64,
    /// Accept ntime down to the template's `mintime` (otherwise down to `curtime`).
    pub ntime_floor_is_mintime: bool,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        Self {
            max_jobs: 16,
            max_shares_per_job: 262_144,
            max_future_ntime_secs: MAX_FUTURE_NTIME_SECS,
            ntime_floor_is_mintime: false,
        }
    }
}

/// A hasher for keys that are already uniformly random (header hash prefixes).
#[derive(Default)]
struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, i: u128) {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "the low 64 random bits suffice"
        )]
        {
            self.0 = i as u64;
        }
    }
}

type SeenSet = HashSet<u128, BuildHasherDefault<PrehashedHasher>>;

#[derive(Debug)]
struct JobSlot {
    job: Arc<Job>,
    stale: bool,
    seen: SeenSet,
}

/// Validates shares against the recent jobs.
///
/// Call [`ShareValidator::add_job`] for every job broadcast (a `clean_jobs` job marks all
/// older jobs stale), then [`ShareValidator::validate`] for every submit with the session's
/// params and the pool's wall-clock time.
#[derive(Debug)]
pub struct ShareValidator {
    config: ValidatorConfig,
    jobs: VecDeque<JobSlot>,
}

impl ShareValidator {
    /// Creates a validator.
    pub fn new(config: ValidatorConfig) -> Self {
        Self {
            config,
            jobs: VecDeque::with_capacity(config.max_jobs.min(1024)),
        }
    }

    /// Adds a job; a job with `clean_jobs` marks every older job stale. Returns the shared job.
    pub fn add_job(&mut self, job: Job) -> Arc<Job> {
        let job = Arc::new(job);
        if job.clean_jobs() {
            self.mark_all_stale();
        }
        self.jobs.push_back(JobSlot {
            job: Arc::clone(&job),
            stale: false,
            seen: SeenSet::default(),
        });
        while self.jobs.len() > self.config.max_jobs.max(1) {
            self.jobs.pop_front();
        }
        job
    }

    /// Marks every job stale (the node reported a new tip before a new job exists).
    pub fn mark_all_stale(&mut self) {
        for s in &mut self.jobs {
            s.stale = true;
        }
    }

    /// Returns the job with `id` if kept and not stale.
    pub fn job(&self, id: JobId) -> Option<&Arc<Job>> {
        self.jobs
            .iter()
            .rev()
            .find(|s| s.job.id() == id && !s.stale)
            .map(|s| &s.job)
    }

    /// Returns the newest job.
    pub fn latest_job(&self) -> Option<&Arc<Job>> {
        self.jobs.back().map(|s| &s.job)
    }

    /// Returns the number of jobs kept.
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// Validates a share.
    ///
    /// # Errors
    /// The precise [`ShareError`] reject.
    pub fn validate(
        &mut self,
        session: &SessionParams,
        submit: &Submit,
        now: UnixTime,
    ) -> Result<AcceptedShare, ShareError> {
        let config = self.config;
        let slot = self
            .jobs
            .iter_mut()
            .rev()
            .find(|s| s.job.id() == submit.job_id)
            .ok_or(ShareError::UnknownJob(submit.job_id))?;
        if slot.stale {
            return Err(ShareError::StaleJob(submit.job_id));
        }
        let job = &slot.job;
        if submit.extranonce2.len() != job.extranonce2_size() {
            return Err(ShareError::Extranonce2Size {
                expected: job.extranonce2_size(),
                got: submit.extranonce2.len(),
            });
        }
        if session.extranonce1.len() != job.extranonce1_size() {
            return Err(ShareError::Extranonce1Size {
                expected: job.extranonce1_size(),
                got: session.extranonce1.len(),
            });
        }
        let template = job.template();
        let min = if config.ntime_floor_is_mintime {
            template.min_time
        } else {
            template.cur_time.max(template.min_time)
        };
        if submit.ntime < min {
            return Err(ShareError::NtimeTooOld {
                ntime: submit.ntime,
                min,
            });
        }
        let max = now.as_secs().saturating_add(config.max_future_ntime_secs);
        if u64::from(submit.ntime) > max {
            return Err(ShareError::NtimeTooNew {
                ntime: submit.ntime,
                max,
            });
        }
        #[allow(
            clippy::cast_sign_loss,
            clippy::cast_possible_wrap,
            reason = "nVersion bits"
        )]
        let version = match submit.version_bits {
            None => job.version(),
            Some(bits) => {
                let mask = session.version_mask;
                if bits & !mask != 0 {
                    return Err(ShareError::VersionBitsOutsideMask { bits, mask });
                }
                ((job.version() as u32 & !mask) | (bits & mask)) as i32
            }
        };
        let merkle_root = job.merkle_root(
            session.extranonce1.as_bytes(),
            submit.extranonce2.as_bytes(),
        );
        let header_bytes = header_bytes(
            version,
            job.prev_blockhash().as_byte_array(),
            &merkle_root,
            submit.ntime,
            job.bits().to_consensus(),
            submit.nonce,
        );
        let hash_bytes = sha256d_80(&header_bytes);
        let hash = BlockHash::from_byte_array(hash_bytes);
        let value = U256::from_le_bytes(hash_bytes);
        let is_block = value <= job.network_target().to_u256();
        if !is_block && value > session.share_target.to_u256() {
            return Err(ShareError::LowDifficulty);
        }
        let key = hash_key(&hash);
        if slot.seen.contains(&key) {
            return Err(ShareError::Duplicate);
        }
        if slot.seen.len() >= config.max_shares_per_job {
            return Err(ShareError::JobShareLimit(submit.job_id));
        }
        slot.seen.insert(key);
        let job = Arc::clone(&slot.job);
        let record = ShareRecord {
            worker: Arc::clone(&session.worker),
            job_id: submit.job_id,
            height: job.height(),
            difficulty: session.difficulty.get(),
            actual_difficulty: ShareDifficulty::of_hash(hash),
            network_difficulty: job.network_difficulty(),
            time: now,
            hash,
            is_block,
        };
        let block = is_block.then(|| BlockCandidate {
            header: BlockHeader::from_bytes(&header_bytes),
            extranonce1: session.extranonce1,
            extranonce2: submit.extranonce2,
            job,
        });
        Ok(AcceptedShare { record, block })
    }
}

fn hash_key(hash: &BlockHash) -> u128 {
    let b = hash.as_byte_array();
    let mut k = [0u8; 16];
    if let Some(src) = b.get(..16) {
        k.copy_from_slice(src);
    }
    u128::from_le_bytes(k)
}

/// Serializes an 80-byte header from its fields.
pub fn header_bytes(
    version: i32,
    prev: &[u8; 32],
    merkle_root: &[u8; 32],
    time: u32,
    bits: u32,
    nonce: u32,
) -> [u8; 80] {
    let mut h = [0u8; 80];
    let (v, rest) = h.split_at_mut(4);
    v.copy_from_slice(&version.to_le_bytes());
    let (p, rest) = rest.split_at_mut(32);
    p.copy_from_slice(prev);
    let (m, rest) = rest.split_at_mut(32);
    m.copy_from_slice(merkle_root);
    let (t, rest) = rest.split_at_mut(4);
    t.copy_from_slice(&time.to_le_bytes());
    let (b, n) = rest.split_at_mut(4);
    b.copy_from_slice(&bits.to_le_bytes());
    n.copy_from_slice(&nonce.to_le_bytes());
    h
}

/// Computes sha256d of an 80-byte header.
pub fn sha256d_80(header: &[u8; 80]) -> [u8; 32] {
    let mut e = sha256::HashEngine::new();
    e.input(header);
    sha256::Hash::from_engine(e).hash_again().to_byte_array()
}
