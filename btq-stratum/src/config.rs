//! Server configuration: every cap in one place, with its worst-case memory.

use core::time::Duration;

use thiserror::Error;

use crate::job::{JobError, MAX_NOTIFY_LINE};
use crate::message::{MAX_PASSWORD_LEN, MAX_REQUEST_ID_LEN, MAX_USERNAME_LEN};
use crate::vardiff::{VardiffConfig, to_micros};

/// Server configuration.
///
/// Every table and queue the server keeps has a cap here; when a cap is reached the server
/// takes the documented action (refuse, reject, disconnect or evict) and never grows. The
/// worst-case memory of the whole server is [`Config::worst_case_memory`]; with the defaults it
/// is about **1.4 GiB** (1,478,403,456 bytes on x86-64), dominated by 20,000 sessions × 72 KiB
/// (48 KiB output cap + one notify line of overshoot + 4 KiB line buffer + 32 pending records);
/// prefix counters 7.7 MB, bans 4.6 MB, events 23.6 MB, jobs 0.2 MB. Idle sessions use far less
/// (`Server::memory_estimate`, a few hundred bytes each): buffers grow only while lines arrive
/// and output waits, and are freed when drained.
///
/// | field | default | when reached |
/// |---|---|---|
/// | `max_sessions` | 20,000 | `handle_connect` refuses ([`crate::Refused::ServerFull`]) |
/// | `max_sessions_per_prefix` | 256 | refuses ([`crate::Refused::PrefixFull`]) |
/// | `max_connects_per_prefix` per `connect_window` | 120 per 60 s | refuses ([`crate::Refused::RateLimited`]) |
/// | `max_pending_per_session` | 32 | request answered with error 20, no penalty |
/// | `max_output_bytes` | 48 KiB | session disconnected (slow reader), no penalty |
/// | `max_line_bytes` | 4 KiB | session disconnected, counted as junk |
/// | `max_tracked_prefixes` | 65,536 | least recently used prefix without live sessions evicted |
/// | `max_bans` | 65,536 | least recently used ban evicted |
/// | `max_jobs` | 16 | oldest job dropped (its shares become stale) |
/// | `max_events` | 65,536 | request answered with error 20 ("busy"), no penalty |
///
/// Build it with struct update syntax from the defaults:
/// `Config { max_sessions: 1000, ..Config::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Most live sessions.
    pub max_sessions: usize,
    /// Most live sessions per address prefix (/32 IPv4, /64 IPv6).
    pub max_sessions_per_prefix: u32,
    /// Most connection attempts per prefix per `connect_window`.
    pub max_connects_per_prefix: u32,
    /// The window for `max_connects_per_prefix`.
    pub connect_window: Duration,
    /// Most requests per session waiting for the host's verdict.
    pub max_pending_per_session: usize,
    /// Most output bytes queued per session before it is disconnected as a slow reader. Must
    /// hold at least two notify lines ([`MAX_NOTIFY_LINE`]).
    pub max_output_bytes: usize,
    /// Longest input line, checked before parsing.
    pub max_line_bytes: usize,
    /// Most address prefixes with counters.
    pub max_tracked_prefixes: usize,
    /// Most ban entries.
    pub max_bans: usize,
    /// Most jobs kept for stale detection.
    pub max_jobs: usize,
    /// Most queued events for the host.
    pub max_events: usize,
    /// Extranonce1 size in bytes (2 to 8). Default 4.
    pub extranonce1_size: u8,
    /// Extranonce2 size in bytes (1 to 8). Default 4.
    pub extranonce2_size: u8,
    /// High bits of extranonce1 reserved for `instance_id`, so several front ends never hand out
    /// the same extranonce1. Default 0.
    pub instance_bits: u8,
    /// This front end's instance number (`< 2^instance_bits`). Default 0.
    pub instance_id: u32,
    /// The pool's version-rolling mask (BIP 310/320). Default `0x1fffe000`.
    pub version_rolling_mask: u32,
    /// How far `ntime` may roll forward past the job's, in seconds. Default 7000 (ckpool).
    pub max_ntime_roll: u32,
    /// Vardiff settings.
    pub vardiff: VardiffConfig,
    /// How long after a difficulty change shares are still offered at the previous one.
    /// Default 15 s.
    pub difficulty_grace: Duration,
    /// Disconnect sessions not authorized within this time. Default 60 s.
    pub handshake_timeout: Duration,
    /// Disconnect sessions silent for this long. Default 15 min.
    pub idle_timeout: Duration,
    /// Answer a request with error 20 if the host has not answered within this time (no
    /// penalty). Default 30 s.
    pub request_timeout: Duration,
    /// Period of the timer sweep (timeouts, vardiff by time, expiry). Default 1 s.
    pub sweep_interval: Duration,
    /// Sustained input lines per second per session (token bucket refill).
    pub line_rate: u32,
    /// Token bucket size in lines.
    pub line_burst: u32,
    /// Lines dropped by the bucket before the session is disconnected for flooding.
    pub max_flood_per_session: u32,
    /// Junk lines (malformed, invalid parameters) before the session is disconnected.
    pub max_junk_per_session: u32,
    /// Window of the per-prefix penalty counters; counters of a quiet prefix expire after it.
    pub penalty_window: Duration,
    /// Ban duration.
    pub ban_duration: Duration,
    /// Junk lines per prefix per window that trigger a ban.
    pub ban_junk_threshold: u32,
    /// Flood disconnects per prefix per window that trigger a ban.
    pub ban_flood_threshold: u32,
    /// Refused connection attempts per prefix per window that trigger a ban.
    pub ban_refused_threshold: u32,
    /// Shares judged per prefix per window before the invalid ratio is considered.
    pub ban_invalid_min_shares: u32,
    /// Invalid share percentage (at or above) that triggers a ban.
    pub ban_invalid_percent: u32,
    /// Key of the hash tables indexed by address prefix (set it from a random source in the
    /// driver so attackers cannot aim collisions).
    pub hash_seed: [u64; 2],
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_sessions: 20_000,
            max_sessions_per_prefix: 256,
            max_connects_per_prefix: 120,
            connect_window: Duration::from_secs(60),
            max_pending_per_session: 32,
            max_output_bytes: 48 * 1024,
            max_line_bytes: 4096,
            max_tracked_prefixes: 65_536,
            max_bans: 65_536,
            max_jobs: 16,
            max_events: 65_536,
            extranonce1_size: 4,
            extranonce2_size: 4,
            instance_bits: 0,
            instance_id: 0,
            version_rolling_mask: 0x1fff_e000,
            max_ntime_roll: 7000,
            vardiff: VardiffConfig::default(),
            difficulty_grace: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(15 * 60),
            request_timeout: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(1),
            line_rate: 50,
            line_burst: 200,
            max_flood_per_session: 32,
            max_junk_per_session: 8,
            penalty_window: Duration::from_secs(600),
            ban_duration: Duration::from_secs(600),
            ban_junk_threshold: 32,
            ban_flood_threshold: 4,
            ban_refused_threshold: 512,
            ban_invalid_min_shares: 50,
            ban_invalid_percent: 50,
            hash_seed: [0x5eed_0001_b7c0_ffee, 0x0bad_5eed_1234_5678],
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field is out of its allowed range.
    #[error("config field {field} is out of range")]
    OutOfRange {
        /// The field name.
        field: &'static str,
    },
    /// Extranonce1 space (after instance bits) is smaller than `max_sessions`.
    #[error("extranonce1 space of {space} values cannot hold {sessions} sessions")]
    ExtranonceSpace {
        /// Values available.
        space: u128,
        /// `max_sessions`.
        sessions: usize,
    },
    /// A job limit problem (kept for completeness of the error surface).
    #[error(transparent)]
    Job(#[from] JobError),
}

/// Worst-case memory of a server, by table, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryBudget {
    /// Sessions: slot records, line and output buffers, pending requests.
    pub sessions: usize,
    /// Per-prefix counters.
    pub prefixes: usize,
    /// Ban entries.
    pub bans: usize,
    /// Jobs.
    pub jobs: usize,
    /// Queued events.
    pub events: usize,
    /// The sum.
    pub total: usize,
}

impl Config {
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first field that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let oor = |field| Err(ConfigError::OutOfRange { field });
        if self.max_sessions == 0 || u32::try_from(self.max_sessions).is_err() {
            return oor("max_sessions");
        }
        if self.max_tracked_prefixes < self.max_sessions {
            return oor("max_tracked_prefixes");
        }
        if self.max_sessions_per_prefix == 0 {
            return oor("max_sessions_per_prefix");
        }
        if self.max_pending_per_session == 0 || self.max_pending_per_session > 4096 {
            return oor("max_pending_per_session");
        }
        if self.max_output_bytes < 2 * MAX_NOTIFY_LINE {
            return oor("max_output_bytes");
        }
        if self.max_line_bytes < 256 {
            return oor("max_line_bytes");
        }
        if self.max_jobs == 0 {
            return oor("max_jobs");
        }
        if self.max_bans == 0 {
            return oor("max_bans");
        }
        if self.max_events == 0 {
            return oor("max_events");
        }
        if !(2..=8).contains(&self.extranonce1_size) {
            return oor("extranonce1_size");
        }
        if !(1..=8).contains(&self.extranonce2_size) {
            return oor("extranonce2_size");
        }
        let total_bits = u32::from(self.extranonce1_size) * 8;
        if u32::from(self.instance_bits) >= total_bits || self.instance_bits > 32 {
            return oor("instance_bits");
        }
        if u64::from(self.instance_id) >= 1u64 << self.instance_bits {
            return oor("instance_id");
        }
        let space = self.extranonce1_space();
        if space < self.max_sessions as u128 {
            return Err(ConfigError::ExtranonceSpace {
                space,
                sessions: self.max_sessions,
            });
        }
        let v = &self.vardiff;
        if v.min.get() < 0.000_001 || v.max.get() < v.min.get() {
            return oor("vardiff.min");
        }
        if to_micros(v.initial) < to_micros(v.min) || to_micros(v.initial) > to_micros(v.max) {
            return oor("vardiff.initial");
        }
        if v.max_step < 2 {
            return oor("vardiff.max_step");
        }
        if v.target_share_interval.is_zero() {
            return oor("vardiff.target_share_interval");
        }
        if self.sweep_interval.is_zero() {
            return oor("sweep_interval");
        }
        if self.line_burst == 0 {
            return oor("line_burst");
        }
        if self.ban_invalid_percent == 0 || self.ban_invalid_percent > 100 {
            return oor("ban_invalid_percent");
        }
        Ok(())
    }

    /// Number of distinct extranonce1 values this instance can hand out.
    pub(crate) fn extranonce1_space(&self) -> u128 {
        let bits =
            (u32::from(self.extranonce1_size) * 8).saturating_sub(u32::from(self.instance_bits));
        1u128.checked_shl(bits).unwrap_or(u128::MAX)
    }

    /// Returns the worst-case memory of a server with this configuration, by table.
    ///
    /// Per session: the slot record, a full line buffer, a full output buffer plus one line
    /// written past the cap before the overflow is detected, and `max_pending_per_session`
    /// pending records with the longest request id and username. Per event: the record plus
    /// the longest username and password. Tables keyed by prefix: hashbrown buckets at 7/8
    /// load plus the node storage.
    pub fn worst_case_memory(&self) -> MemoryBudget {
        let per_session = crate::server::slot_size()
            .saturating_add(self.max_line_bytes)
            .saturating_add(self.max_output_bytes)
            .saturating_add(MAX_NOTIFY_LINE)
            .saturating_add(self.max_pending_per_session.saturating_mul(
                crate::server::pending_size() + MAX_REQUEST_ID_LEN + MAX_USERNAME_LEN,
            ))
            .saturating_add(MAX_USERNAME_LEN)
            // free list, ready and closing queues
            .saturating_add(3 * size_of::<u32>());
        let sessions = per_session.saturating_mul(self.max_sessions);
        let prefixes = crate::server::prefix_table_worst(self.max_tracked_prefixes);
        let bans = crate::server::ban_table_worst(self.max_bans);
        let jobs = self.max_jobs.saturating_mul(MAX_NOTIFY_LINE + 64);
        let events = self
            .max_events
            .saturating_mul(crate::server::event_size() + MAX_USERNAME_LEN + MAX_PASSWORD_LEN);
        let total = sessions
            .saturating_add(prefixes)
            .saturating_add(bans)
            .saturating_add(jobs)
            .saturating_add(events);
        MemoryBudget {
            sessions,
            prefixes,
            bans,
            jobs,
            events,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn rejects_bad_fields() {
        let c = Config {
            max_tracked_prefixes: 10,
            ..Config::default()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::OutOfRange {
                field: "max_tracked_prefixes"
            })
        );
        let c = Config {
            extranonce1_size: 2,
            max_sessions: 70_000,
            max_tracked_prefixes: 70_000,
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ExtranonceSpace { .. })
        ));
        let c = Config {
            extranonce2_size: 0,
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
