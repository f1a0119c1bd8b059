//! Jobs: the `mining.notify` parameters the pool hands over, and the bounded set kept for
//! stale detection.

use std::collections::VecDeque;

use btq_core::hash::BlockHash;
use thiserror::Error;

use crate::message::{push_hex, push_hex_u32};
use crate::types::JobId;

/// Longest `coinb1` or `coinb2`, in bytes.
pub const MAX_COINBASE_PART_LEN: usize = 2048;
/// Most merkle branch entries (ESP-Miner and NerdMiner cap at 32).
pub const MAX_MERKLE_BRANCH: usize = 32;
/// Longest `mining.notify` line a valid [`Job`] encodes to, in bytes.
pub const MAX_NOTIFY_LINE: usize =
    128 + 16 + 64 + 4 * MAX_COINBASE_PART_LEN + 67 * MAX_MERKLE_BRANCH;

/// The parameters of one `mining.notify` (`stratum-v1.md` §1, byte orders in §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job id (the pool's choice; sent as lower-case hex).
    pub id: JobId,
    /// The previous block hash in Stratum word order (see [`Job::stratum_prevhash`]).
    pub prevhash: [u8; 32],
    /// Coinbase bytes before extranonce1 + extranonce2.
    pub coinb1: Vec<u8>,
    /// Coinbase bytes after the extranonces.
    pub coinb2: Vec<u8>,
    /// Merkle branch hashes, internal byte order.
    pub merkle_branch: Vec<[u8; 32]>,
    /// Block version.
    pub version: u32,
    /// Compact target (`nBits`).
    pub nbits: u32,
    /// Header time of the template.
    pub ntime: u32,
    /// Whether miners must drop older jobs (a new block). Older job ids become stale.
    pub clean_jobs: bool,
}

/// A job that cannot be broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JobError {
    /// A coinbase part is longer than [`MAX_COINBASE_PART_LEN`].
    #[error("coinbase part of {len} bytes exceeds {limit}")]
    CoinbaseTooLong {
        /// The limit.
        limit: usize,
        /// The length given.
        len: usize,
    },
    /// The merkle branch is longer than [`MAX_MERKLE_BRANCH`].
    #[error("merkle branch of {len} entries exceeds {limit}")]
    BranchTooLong {
        /// The limit.
        limit: usize,
        /// The length given.
        len: usize,
    },
}

impl Job {
    /// Converts a block hash (internal byte order) to Stratum's prevhash order: each 32-bit
    /// word byte-swapped, i.e. the display hex with its eight words in reverse order.
    pub fn stratum_prevhash(hash: BlockHash) -> [u8; 32] {
        let internal = hash.to_byte_array();
        let mut out = [0u8; 32];
        for (o, i) in out.chunks_exact_mut(4).zip(internal.chunks_exact(4)) {
            for (d, s) in o.iter_mut().zip(i.iter().rev()) {
                *d = *s;
            }
        }
        out
    }

    /// Checks the size limits.
    ///
    /// # Errors
    /// [`JobError`] naming the limit exceeded.
    pub fn validate(&self) -> Result<(), JobError> {
        for part in [&self.coinb1, &self.coinb2] {
            if part.len() > MAX_COINBASE_PART_LEN {
                return Err(JobError::CoinbaseTooLong {
                    limit: MAX_COINBASE_PART_LEN,
                    len: part.len(),
                });
            }
        }
        if self.merkle_branch.len() > MAX_MERKLE_BRANCH {
            return Err(JobError::BranchTooLong {
                limit: MAX_MERKLE_BRANCH,
                len: self.merkle_branch.len(),
            });
        }
        Ok(())
    }

    /// Appends the `mining.notify` line, with `clean_jobs` overridden by `clean`.
    pub fn encode_notify(&self, out: &mut Vec<u8>, clean: bool) {
        self.encode_notify_head(out);
        push_clean_tail(out, clean);
    }

    fn encode_notify_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"");
        let _ = std::io::Write::write_fmt(out, format_args!("{}", self.id));
        out.extend_from_slice(b"\",\"");
        push_hex(out, &self.prevhash);
        out.extend_from_slice(b"\",\"");
        push_hex(out, &self.coinb1);
        out.extend_from_slice(b"\",\"");
        push_hex(out, &self.coinb2);
        out.extend_from_slice(b"\",[");
        for (i, h) in self.merkle_branch.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            push_hex(out, h);
            out.push(b'"');
        }
        out.extend_from_slice(b"],\"");
        push_hex_u32(out, self.version);
        out.extend_from_slice(b"\",\"");
        push_hex_u32(out, self.nbits);
        out.extend_from_slice(b"\",\"");
        push_hex_u32(out, self.ntime);
        out.extend_from_slice(b"\",");
    }
}

pub(crate) fn push_clean_tail(out: &mut Vec<u8>, clean: bool) {
    out.extend_from_slice(if clean { b"true]}\n" } else { b"false]}\n" });
}

/// A job as kept by the server: what stale detection and version rolling need, plus the
/// encoded notify line without its `clean_jobs` tail.
#[derive(Debug, Clone)]
pub(crate) struct StoredJob {
    pub(crate) id: JobId,
    pub(crate) version: u32,
    pub(crate) ntime: u32,
    pub(crate) clean: bool,
    pub(crate) notify_head: Box<[u8]>,
}

/// The most recent jobs, oldest first, at most `cap`.
#[derive(Debug)]
pub(crate) struct JobStore {
    jobs: VecDeque<StoredJob>,
    cap: usize,
}

impl JobStore {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            jobs: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Stores a job. A clean job retires every older job; otherwise the oldest is dropped
    /// when full. A repeated id replaces the earlier job.
    pub(crate) fn insert(&mut self, job: &Job) {
        if job.clean_jobs {
            self.jobs.clear();
        } else {
            self.jobs.retain(|j| j.id != job.id);
        }
        while self.jobs.len() >= self.cap {
            self.jobs.pop_front();
        }
        let mut head = Vec::with_capacity(256);
        job.encode_notify_head(&mut head);
        self.jobs.push_back(StoredJob {
            id: job.id,
            version: job.version,
            ntime: job.ntime,
            clean: job.clean_jobs,
            notify_head: head.into_boxed_slice(),
        });
    }

    pub(crate) fn get(&self, id: JobId) -> Option<&StoredJob> {
        self.jobs.iter().rev().find(|j| j.id == id)
    }

    pub(crate) fn latest(&self) -> Option<&StoredJob> {
        self.jobs.back()
    }

    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.jobs
            .iter()
            .map(|j| j.notify_head.len())
            .sum::<usize>()
            .saturating_add(self.jobs.capacity().saturating_mul(size_of::<StoredJob>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, clean: bool) -> Job {
        Job {
            id: JobId::from_u64(id),
            prevhash: [0; 32],
            coinb1: vec![1, 2],
            coinb2: vec![3],
            merkle_branch: vec![[0xab; 32]],
            version: 0x2000_0000,
            nbits: 0x1d00_ffff,
            ntime: 0x6500_0000,
            clean_jobs: clean,
        }
    }

    #[test]
    fn notify_shape() {
        let mut out = Vec::new();
        job(0x1f, true).encode_notify(&mut out, true);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], serde_json::Value::Null);
        assert_eq!(v["params"][0], "1f");
        assert_eq!(v["params"][2], "0102");
        assert_eq!(v["params"][4][0], "ab".repeat(32));
        assert_eq!(v["params"][5], "20000000");
        assert_eq!(v["params"][6], "1d00ffff");
        assert_eq!(v["params"][8], true);
        assert!(out.ends_with(b"]}\n"));
    }

    #[test]
    fn clean_retires_and_cap_holds() {
        let mut s = JobStore::new(3);
        for i in 0..5 {
            s.insert(&job(i, false));
        }
        assert_eq!(s.len(), 3);
        assert!(s.get(JobId::from_u64(1)).is_none());
        assert!(s.get(JobId::from_u64(4)).is_some());
        s.insert(&job(9, true));
        assert_eq!(s.len(), 1);
        assert!(s.get(JobId::from_u64(4)).is_none());
    }

    #[test]
    fn prevhash_word_order() {
        // Internal bytes 00 01 02 ... 1f become 03 02 01 00 07 06 05 04 ...
        let mut b = [0u8; 32];
        for (i, x) in b.iter_mut().enumerate() {
            *x = u8::try_from(i).unwrap();
        }
        let p = Job::stratum_prevhash(BlockHash::from_byte_array(b));
        assert_eq!(&p[..8], &[3, 2, 1, 0, 7, 6, 5, 4]);
    }

    #[test]
    fn max_notify_line_bound_holds() {
        let mut j = job(u64::MAX, true);
        j.coinb1 = vec![0; MAX_COINBASE_PART_LEN];
        j.coinb2 = vec![0; MAX_COINBASE_PART_LEN];
        j.merkle_branch = vec![[0; 32]; MAX_MERKLE_BRANCH];
        let mut out = Vec::new();
        j.encode_notify(&mut out, false);
        assert!(out.len() <= MAX_NOTIFY_LINE, "{}", out.len());
    }
}
