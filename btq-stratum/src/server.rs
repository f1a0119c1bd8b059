//! The Sans-IO Stratum server: sessions, admission control, bans, jobs and events.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use btq_core::pow::ShareDifficulty;
use btq_core::time::Timestamp;
use core::time::Duration;
use thiserror::Error;

use crate::config::{Config, ConfigError};
use crate::framing::LineFramer;
use crate::job::{Job, JobError, JobStore, push_clean_tail};
use crate::lru::LruMap;
use crate::message::{
    self, ConfigureResult, ErrorCode, Extension, Method, Notification, ParamError, ParseError,
    RequestId, StratumError,
};
use crate::types::{Extranonce1, Extranonce2, JobId, Prefix, SessionId, SipBuildHasher};
use crate::vardiff::{Vardiff, from_micros, millis};

/// Most ban notices queued for the host; older ones are dropped (they are informational).
pub const MAX_BAN_NOTICES: usize = 1024;

const E_MALFORMED: StratumError = StratumError::new(ErrorCode::Other, "Malformed request");
const E_NO_METHOD: StratumError = StratumError::new(ErrorCode::Other, "Missing method");
const E_UNKNOWN_METHOD: StratumError = StratumError::new(ErrorCode::Other, "Unknown method");
const E_PARAM_COUNT: StratumError =
    StratumError::new(ErrorCode::Other, "Wrong number of parameters");
const E_INVALID_HEX: StratumError = StratumError::new(ErrorCode::Other, "Invalid hex");
const E_INVALID_PARAMS: StratumError = StratumError::new(ErrorCode::Other, "Invalid parameters");
const E_NOT_SUBSCRIBED: StratumError =
    StratumError::new(ErrorCode::NotSubscribed, "Not subscribed");
const E_UNAUTHORIZED: StratumError =
    StratumError::new(ErrorCode::Unauthorized, "Unauthorized worker");
const E_JOB_NOT_FOUND: StratumError =
    StratumError::new(ErrorCode::JobNotFound, "Job not found (stale)");
const E_EN2_SIZE: StratumError = StratumError::new(ErrorCode::Other, "Invalid extranonce2 size");
const E_NTIME: StratumError = StratumError::new(ErrorCode::Other, "Ntime out of range");
const E_VERSION: StratumError = StratumError::new(ErrorCode::Other, "Invalid version bits");
const E_BUSY: StratumError = StratumError::new(ErrorCode::Other, "Server busy, try again");
const E_TOO_MANY_PENDING: StratumError =
    StratumError::new(ErrorCode::Other, "Too many pending requests");
const E_TIMEOUT: StratumError = StratumError::new(ErrorCode::Other, "Request timed out");
const E_UNAVAILABLE: StratumError =
    StratumError::new(ErrorCode::Other, "Service temporarily unavailable");

// ---------------------------------------------------------------------------------------------
// Public event and verdict types

/// Identifies one request waiting for the host's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestToken {
    session: SessionId,
    serial: u32,
}

impl RequestToken {
    /// Returns the session the request came from.
    pub const fn session(self) -> SessionId {
        self.session
    }
}

/// A `mining.authorize` for the host to decide (address validation, account lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// Pass back to [`Server::respond`].
    pub token: RequestToken,
    /// The username as sent.
    pub username: Arc<str>,
    /// The password, if sent.
    pub password: Option<Box<str>>,
}

/// A `mining.submit` that passed the server's checks (authorized, subscribed, known and fresh
/// job, extranonce2 size, ntime range, version bits inside the mask), for the host to validate.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// Pass back to [`Server::respond`].
    pub token: RequestToken,
    /// The authorized username.
    pub user: Arc<str>,
    /// The job.
    pub job_id: JobId,
    /// The session's extranonce1.
    pub extranonce1: Extranonce1,
    /// The miner's extranonce2 (size already checked).
    pub extranonce2: Extranonce2,
    /// Header time.
    pub ntime: u32,
    /// Header nonce.
    pub nonce: u32,
    /// The header version per BIP 310: `(job & !mask) | (bits & mask)`.
    pub version: u32,
    /// The version bits as submitted, if any.
    pub version_bits: Option<u32>,
    /// The session's current share difficulty.
    pub difficulty: ShareDifficulty,
    /// The previous difficulty while inside the grace period after a change.
    pub previous_difficulty: Option<ShareDifficulty>,
}

/// Why the server wants a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// A line exceeded `max_line_bytes`.
    LineTooLong,
    /// Too many junk lines.
    Junk,
    /// Too many lines dropped by the rate limit.
    Flood,
    /// The address prefix is banned.
    Banned,
    /// The output queue exceeded `max_output_bytes` (slow reader).
    OutputOverflow,
    /// Not authorized within `handshake_timeout`.
    HandshakeTimeout,
    /// No input for `idle_timeout`.
    Idle,
    /// The host asked ([`Server::disconnect`]).
    Requested,
}

/// Why a prefix was banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BanReason {
    /// Junk input.
    Junk,
    /// Repeated flooding.
    Flood,
    /// Too many refused connection attempts.
    ConnectFlood,
    /// Invalid share ratio.
    InvalidShares,
    /// The host asked ([`Server::ban`]).
    Manual,
}

/// Output of [`Server::poll_event`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// Decide an authorization; answer with [`Server::respond`].
    Authorize(AuthorizeRequest),
    /// Validate a share; answer with [`Server::respond`].
    Submit(Submission),
    /// Flush the session's output ([`Server::take_transmit`]), close the connection, then call
    /// [`Server::handle_close`].
    Disconnect {
        /// The session.
        session: SessionId,
        /// Why.
        reason: DisconnectReason,
    },
    /// A prefix was banned (informational: a firewall hook, a log line).
    Banned {
        /// The prefix.
        prefix: Prefix,
        /// When the ban ends.
        until: Timestamp,
        /// Why.
        reason: BanReason,
    },
}

/// Why a share was rejected by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Error 21: the job is stale (no penalty).
    Stale,
    /// Error 22: duplicate share.
    Duplicate,
    /// Error 23: the hash does not meet the share target.
    LowDifficulty,
    /// Error 24: the worker is not authorized (for an authorize: the username is invalid).
    Unauthorized,
    /// Error 20: any other invalid share.
    Invalid,
}

impl RejectReason {
    /// Returns the error sent to the miner.
    pub const fn error(self) -> StratumError {
        match self {
            Self::Stale => E_JOB_NOT_FOUND,
            Self::Duplicate => StratumError::new(ErrorCode::Duplicate, "Duplicate share"),
            Self::LowDifficulty => {
                StratumError::new(ErrorCode::LowDifficulty, "Low difficulty share")
            }
            Self::Unauthorized => E_UNAUTHORIZED,
            Self::Invalid => StratumError::new(ErrorCode::Other, "Invalid share"),
        }
    }

    /// Returns whether the rejection counts toward the prefix's invalid-share ratio.
    pub const fn penalizes(self) -> bool {
        !matches!(self, Self::Stale)
    }
}

/// The host's answer to an [`AuthorizeRequest`] or a [`Submission`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// Authorized, or share accepted.
    Accepted,
    /// Share accepted and it solved a block (answered like `Accepted`).
    BlockFound,
    /// Rejected: the miner's fault.
    Rejected(RejectReason),
    /// The node or the pool failed or timed out: the miner gets error 20 and no penalty.
    NodeUnavailable,
    /// Our own bug: the miner gets error 20 and no penalty.
    InternalError,
}

/// Why a connection was refused by [`Server::handle_connect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Refused {
    /// The prefix is banned.
    #[error("address prefix banned")]
    Banned,
    /// `max_sessions` reached.
    #[error("server full")]
    ServerFull,
    /// `max_sessions_per_prefix` reached.
    #[error("too many sessions from this address prefix")]
    PrefixFull,
    /// `max_connects_per_prefix` reached in the window.
    #[error("too many connection attempts from this address prefix")]
    RateLimited,
}

/// An operation named a session that is not live (closed, or an id from before a reuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("session {0} is not live")]
pub struct SessionGoneError(pub SessionId);

/// A verdict that could not be applied (it is dropped without side effects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RespondError {
    /// The session closed before the answer arrived.
    #[error("session {0} is gone")]
    SessionGone(SessionId),
    /// The request was already answered or timed out.
    #[error("request already answered or timed out")]
    UnknownRequest,
}

/// The protocol phase of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Connected, not subscribed.
    Connected,
    /// Subscribed, not authorized.
    Subscribed,
    /// Authorized: receives work.
    Authorized,
}

/// A snapshot of one session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// The prefix it counts against.
    pub prefix: Prefix,
    /// The phase.
    pub phase: Phase,
    /// Extranonce1.
    pub extranonce1: Extranonce1,
    /// Current difficulty.
    pub difficulty: ShareDifficulty,
    /// Authorized username.
    pub user: Option<Arc<str>>,
    /// Negotiated version-rolling mask.
    pub version_mask: Option<u32>,
    /// Requests waiting for a verdict.
    pub pending: usize,
    /// Output bytes waiting for the driver.
    pub queued_output: usize,
    /// Whether a disconnect was decided.
    pub closing: bool,
}

/// Table sizes and counters, for monitoring and for tests that assert the caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Live sessions.
    pub sessions: usize,
    /// Session slots allocated (live plus free, never above `max_sessions`).
    pub slots: usize,
    /// Authorized sessions.
    pub authorized: usize,
    /// Prefixes with counters.
    pub tracked_prefixes: usize,
    /// Ban entries (including expired ones not yet swept).
    pub bans: usize,
    /// Jobs kept.
    pub jobs: usize,
    /// Events queued.
    pub events: usize,
    /// Ban notices queued.
    pub ban_notices: usize,
    /// Pending requests over all sessions.
    pub pending_requests: usize,
    /// The largest pending count of one session.
    pub max_session_pending: usize,
    /// The largest queued output of one session, in bytes.
    pub max_session_output: usize,
    /// The largest buffered partial line of one session, in bytes.
    pub max_session_line: usize,
    /// Entries in the transmit-ready queue.
    pub ready_queue: usize,
    /// Entries in the disconnect queue.
    pub closing_queue: usize,
    /// Connections admitted since start.
    pub connects_accepted: u64,
    /// Connections refused since start.
    pub connects_refused: u64,
    /// Bans issued since start.
    pub bans_issued: u64,
    /// Verdicts dropped because their session or request was gone.
    pub answers_dropped: u64,
    /// Requests answered with error because of a full queue or a timeout (no penalty).
    pub requests_shed: u64,
}

// ---------------------------------------------------------------------------------------------
// Internal state

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingKind {
    Authorize,
    Submit,
}

#[derive(Debug)]
struct Pending {
    serial: u32,
    id: RequestId,
    kind: PendingKind,
    deadline: Timestamp,
    username: Option<Arc<str>>,
}

#[derive(Debug, Clone, Copy)]
struct PrefixState {
    live: u32,
    connect_window_start: Timestamp,
    connects: u32,
    penalty_window_start: Timestamp,
    refused: u32,
    junk: u32,
    flood: u32,
    valid: u32,
    invalid: u32,
    last_seen: Timestamp,
}

impl PrefixState {
    const fn new(now: Timestamp) -> Self {
        Self {
            live: 0,
            connect_window_start: now,
            connects: 0,
            penalty_window_start: now,
            refused: 0,
            junk: 0,
            flood: 0,
            valid: 0,
            invalid: 0,
            last_seen: now,
        }
    }

    fn roll(&mut self, cfg: &Config, now: Timestamp) {
        if now.saturating_millis_since(self.connect_window_start) >= millis(cfg.connect_window) {
            self.connect_window_start = now;
            self.connects = 0;
        }
        if now.saturating_millis_since(self.penalty_window_start) >= millis(cfg.penalty_window) {
            self.penalty_window_start = now;
            self.refused = 0;
            self.junk = 0;
            self.flood = 0;
            self.valid = 0;
            self.invalid = 0;
        }
        self.last_seen = now;
    }
}

#[derive(Debug, Clone, Copy)]
struct Ban {
    until: Timestamp,
}

#[derive(Debug)]
struct Session {
    prefix: Prefix,
    phase: Phase,
    extranonce1: Extranonce1,
    framer: LineFramer,
    out: Vec<u8>,
    pending: Vec<Pending>,
    next_serial: u32,
    user: Option<Arc<str>>,
    vardiff: Vardiff,
    previous: Option<(u64, Timestamp)>,
    version_mask: Option<u32>,
    extranonce_subscribed: bool,
    tokens: u64,
    tokens_at: Timestamp,
    junk: u32,
    flood: u32,
    connected_at: Timestamp,
    last_input: Timestamp,
    closing: Option<DisconnectReason>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    ready_queued: bool,
    close_queued: bool,
    session: Option<Session>,
}

pub(crate) const fn slot_size() -> usize {
    size_of::<Slot>()
}
pub(crate) const fn pending_size() -> usize {
    size_of::<Pending>()
}
pub(crate) const fn event_size() -> usize {
    size_of::<ServerEvent>()
}
pub(crate) fn prefix_table_worst(cap: usize) -> usize {
    LruMap::<Prefix, PrefixState>::worst_case_bytes(cap)
}
pub(crate) fn ban_table_worst(cap: usize) -> usize {
    LruMap::<Prefix, Ban>::worst_case_bytes(cap)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Penalty {
    Junk,
    Flood,
    Refused,
    Share { invalid: bool },
}

// ---------------------------------------------------------------------------------------------
// The server

/// A Stratum V1 server without I/O.
///
/// # Call order
/// 1. For each accepted TCP connection call [`handle_connect`](Self::handle_connect) before
///    allocating anything for it; a [`Refused`] means close the socket at once.
/// 2. Feed received bytes with [`handle_bytes`](Self::handle_bytes); when the peer closes, or
///    after a [`ServerEvent::Disconnect`], call [`handle_close`](Self::handle_close).
/// 3. After any input, drain [`poll_event`](Self::poll_event) (answer `Authorize` and `Submit`
///    with [`respond`](Self::respond), whenever the answer is ready) and
///    [`poll_transmit`](Self::poll_transmit) (write the bytes to that session's socket).
/// 4. Call [`handle_timeout`](Self::handle_timeout) when
///    [`poll_timeout`](Self::poll_timeout) is reached.
/// 5. Hand new work to [`broadcast_job`](Self::broadcast_job).
///
/// Time is always passed in. Nothing here reads a clock, draws randomness or does I/O.
#[derive(Debug)]
pub struct Server {
    cfg: Config,
    slots: Vec<Slot>,
    free: VecDeque<u32>,
    live: usize,
    authorized: usize,
    prefixes: LruMap<Prefix, PrefixState>,
    bans: LruMap<Prefix, Ban>,
    jobs: JobStore,
    events: VecDeque<ServerEvent>,
    notices: VecDeque<ServerEvent>,
    ready: VecDeque<u32>,
    closing: VecDeque<u32>,
    next_sweep: Option<Timestamp>,
    pending_total: usize,
    stats: Stats,
}

impl Server {
    /// Creates a server.
    ///
    /// # Errors
    /// [`ConfigError`] if the configuration is invalid.
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let hasher = SipBuildHasher::new(cfg.hash_seed);
        Ok(Self {
            prefixes: LruMap::new(cfg.max_tracked_prefixes, hasher),
            bans: LruMap::new(cfg.max_bans, hasher),
            jobs: JobStore::new(cfg.max_jobs),
            slots: Vec::new(),
            free: VecDeque::new(),
            live: 0,
            authorized: 0,
            events: VecDeque::new(),
            notices: VecDeque::new(),
            ready: VecDeque::new(),
            closing: VecDeque::new(),
            next_sweep: None,
            pending_total: 0,
            stats: Stats::default(),
            cfg,
        })
    }

    /// Returns the configuration.
    pub const fn config(&self) -> &Config {
        &self.cfg
    }

    // -- input ----------------------------------------------------------------------------

    /// Admits a new connection from `peer`, or refuses it. Constant time.
    ///
    /// # Errors
    /// [`Refused`]: close the socket without reading from it.
    pub fn handle_connect(&mut self, now: Timestamp, peer: IpAddr) -> Result<SessionId, Refused> {
        let prefix = Prefix::of(peer);
        let r = self.admit(now, prefix);
        match r {
            Ok(_) => self.stats.connects_accepted = self.stats.connects_accepted.saturating_add(1),
            Err(_) => self.stats.connects_refused = self.stats.connects_refused.saturating_add(1),
        }
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now.saturating_add_millis(millis(self.cfg.sweep_interval)));
        }
        r
    }

    fn admit(&mut self, now: Timestamp, prefix: Prefix) -> Result<SessionId, Refused> {
        if self.is_prefix_banned(now, prefix) {
            return Err(Refused::Banned);
        }
        if self.live >= self.cfg.max_sessions {
            return Err(Refused::ServerFull);
        }
        let pi = match self.prefixes.find(&prefix) {
            Some(i) => {
                self.prefixes.touch(i);
                i
            }
            None => {
                self.prefixes
                    .insert(prefix, PrefixState::new(now))
                    .ok_or(Refused::ServerFull)?
                    .0
            }
        };
        let cfg = &self.cfg;
        let Some(st) = self.prefixes.get_mut(pi) else {
            return Err(Refused::ServerFull);
        };
        st.roll(cfg, now);
        st.connects = st.connects.saturating_add(1);
        if st.connects > cfg.max_connects_per_prefix {
            self.penalize_prefix(now, prefix, Penalty::Refused);
            return Err(Refused::RateLimited);
        }
        if st.live >= cfg.max_sessions_per_prefix {
            self.penalize_prefix(now, prefix, Penalty::Refused);
            return Err(Refused::PrefixFull);
        }
        st.live = st.live.saturating_add(1);
        if st.live == 1 {
            self.prefixes.pin(pi);
        }
        // Slot: reuse the longest-free one (FIFO) so extranonce1 values rotate slowly.
        let index = match self.free.pop_front() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).map_err(|_| Refused::ServerFull)?;
                self.slots.push(Slot::default());
                i
            }
        };
        let en1 = self.extranonce1_for(index);
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return Err(Refused::ServerFull);
        };
        let id = SessionId::from_parts(index, slot.generation);
        slot.session = Some(Session {
            prefix,
            phase: Phase::Connected,
            extranonce1: en1,
            framer: LineFramer::new(self.cfg.max_line_bytes),
            out: Vec::new(),
            pending: Vec::new(),
            next_serial: 0,
            user: None,
            vardiff: Vardiff::new(&self.cfg.vardiff, now),
            previous: None,
            version_mask: None,
            extranonce_subscribed: false,
            tokens: u64::from(self.cfg.line_burst).saturating_mul(1000),
            tokens_at: now,
            junk: 0,
            flood: 0,
            connected_at: now,
            last_input: now,
            closing: None,
        });
        self.live = self.live.saturating_add(1);
        Ok(id)
    }

    /// Extranonce1 for a slot: unique among live sessions because slot indices are, and
    /// rotated by the slot's generation so a reused slot gets a different value.
    fn extranonce1_for(&self, index: u32) -> Extranonce1 {
        let generation = self.slots.get(index as usize).map_or(0, |s| s.generation);
        let space = self.cfg.extranonce1_space();
        let n = self.cfg.max_sessions as u128;
        let rounds = (space / n).max(1);
        let local = (u128::from(generation) % rounds) * n + u128::from(index);
        let local_bits =
            u32::from(self.cfg.extranonce1_size) * 8 - u32::from(self.cfg.instance_bits);
        let value = (u128::from(self.cfg.instance_id) << local_bits) | (local % space);
        let bytes = value.to_be_bytes();
        let size = usize::from(self.cfg.extranonce1_size);
        let tail = bytes.get(bytes.len().saturating_sub(size)..).unwrap_or(&[]);
        Extranonce1::from_slice(tail).unwrap_or_default()
    }

    /// Feeds bytes received from a session's socket.
    ///
    /// Lines are parsed as they complete; replies, events and disconnect decisions are queued
    /// for the `poll_*` methods. Input after a disconnect decision is ignored.
    ///
    /// # Errors
    /// [`SessionGoneError`] if the session is not live (a driver bug or a race with a close).
    pub fn handle_bytes(
        &mut self,
        now: Timestamp,
        session: SessionId,
        input: &[u8],
    ) -> Result<(), SessionGoneError> {
        let idx = session.index();
        let sess = self.session_mut(session).ok_or(SessionGoneError(session))?;
        if sess.closing.is_some() {
            return Ok(());
        }
        sess.last_input = now;
        let prefix = sess.prefix;
        if !self.bans.is_empty() && self.is_prefix_banned(now, prefix) {
            self.close_slot(idx, DisconnectReason::Banned);
            return Ok(());
        }
        let Some(sess) = self.session_mut(session) else {
            return Ok(());
        };
        let mut framer = std::mem::replace(&mut sess.framer, LineFramer::new(0));
        let result = framer.push(input, |line| self.handle_line(now, idx, line));
        if let Some(sess) = self.session_mut(session) {
            sess.framer = framer;
        }
        if result.is_err() {
            self.penalize(now, idx, Penalty::Junk);
            self.close_slot(idx, DisconnectReason::LineTooLong);
        }
        Ok(())
    }

    /// Forgets a session whose connection closed, for whatever reason. Pending requests are
    /// dropped (late verdicts for them are ignored); only the prefix's bounded counters remain.
    /// Returns false if the session was not live.
    pub fn handle_close(&mut self, now: Timestamp, session: SessionId) -> bool {
        let Some(slot) = self.slots.get_mut(session.index() as usize) else {
            return false;
        };
        if slot.generation != session.generation() {
            return false;
        }
        let Some(sess) = slot.session.take() else {
            return false;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.pending_total = self.pending_total.saturating_sub(sess.pending.len());
        if sess.phase == Phase::Authorized {
            self.authorized = self.authorized.saturating_sub(1);
        }
        if let Some(pi) = self.prefixes.find(&sess.prefix)
            && let Some(st) = self.prefixes.get_mut(pi)
        {
            st.live = st.live.saturating_sub(1);
            st.last_seen = now;
            if st.live == 0 {
                self.prefixes.unpin(pi);
            }
        }
        self.free.push_back(session.index());
        self.live = self.live.saturating_sub(1);
        true
    }

    /// Runs timers: handshake, idle and request timeouts, vardiff by time, and expiry of
    /// prefix counters and bans. Call it when [`poll_timeout`](Self::poll_timeout) is reached;
    /// calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let due = self.next_sweep.is_some_and(|t| now >= t);
        if !due {
            return;
        }
        self.next_sweep = Some(now.saturating_add_millis(millis(self.cfg.sweep_interval)));
        let handshake = millis(self.cfg.handshake_timeout);
        let idle = millis(self.cfg.idle_timeout);
        for idx in 0..u32::try_from(self.slots.len()).unwrap_or(u32::MAX) {
            let Some(sess) = self
                .slots
                .get_mut(idx as usize)
                .and_then(|s| s.session.as_mut())
            else {
                continue;
            };
            if sess.closing.is_some() {
                continue;
            }
            let waiting_auth = sess
                .pending
                .iter()
                .any(|p| p.kind == PendingKind::Authorize);
            if sess.phase != Phase::Authorized
                && !waiting_auth
                && now.saturating_millis_since(sess.connected_at) >= handshake
            {
                self.close_slot(idx, DisconnectReason::HandshakeTimeout);
                continue;
            }
            if now.saturating_millis_since(sess.last_input) >= idle {
                self.close_slot(idx, DisconnectReason::Idle);
                continue;
            }
            // Requests the host never answered: error 20, no penalty.
            if sess.pending.iter().any(|p| p.deadline <= now) {
                let mut expired = Vec::new();
                sess.pending.retain(|p| {
                    let keep = p.deadline > now;
                    if !keep {
                        expired.push(p.id.clone());
                    }
                    keep
                });
                for id in expired {
                    self.pending_total = self.pending_total.saturating_sub(1);
                    self.stats.requests_shed = self.stats.requests_shed.saturating_add(1);
                    self.reply_error(idx, &id, E_TIMEOUT);
                }
            }
            let Some(sess) = self
                .slots
                .get_mut(idx as usize)
                .and_then(|s| s.session.as_mut())
            else {
                continue;
            };
            if sess.phase == Phase::Authorized && sess.closing.is_none() {
                let old = sess.vardiff.micros();
                if let Some(d) = sess.vardiff.handle_timeout(&self.cfg.vardiff, now) {
                    sess.previous = Some((
                        old,
                        now.saturating_add_millis(millis(self.cfg.difficulty_grace)),
                    ));
                    self.send_difficulty_and_job(idx, d);
                }
            }
        }
        // Expire prefix counters (oldest first) and bans.
        let keep = millis(self.cfg.penalty_window).max(millis(self.cfg.connect_window));
        while let Some((i, st)) = self.prefixes.lru() {
            if st.live == 0 && now.saturating_millis_since(st.last_seen) >= keep {
                self.prefixes.remove(i);
            } else {
                break;
            }
        }
        while let Some((i, b)) = self.bans.lru() {
            if b.until <= now {
                self.bans.remove(i);
            } else {
                break;
            }
        }
    }

    /// Applies the host's verdict on an authorize or a submit.
    ///
    /// A verdict for a session that has closed, or for a request already answered or timed
    /// out, is dropped: nothing changes except the `answers_dropped` counter.
    ///
    /// # Errors
    /// [`RespondError`] saying why the verdict was dropped.
    pub fn respond(
        &mut self,
        now: Timestamp,
        token: RequestToken,
        verdict: Verdict,
    ) -> Result<(), RespondError> {
        let r = self.respond_inner(now, token, verdict);
        if r.is_err() {
            self.stats.answers_dropped = self.stats.answers_dropped.saturating_add(1);
        }
        r
    }

    fn respond_inner(
        &mut self,
        now: Timestamp,
        token: RequestToken,
        verdict: Verdict,
    ) -> Result<(), RespondError> {
        let idx = token.session.index();
        let sess = self
            .session_mut(token.session)
            .ok_or(RespondError::SessionGone(token.session))?;
        let pos = sess
            .pending
            .iter()
            .position(|p| p.serial == token.serial)
            .ok_or(RespondError::UnknownRequest)?;
        let p = sess.pending.swap_remove(pos);
        self.pending_total = self.pending_total.saturating_sub(1);
        match (p.kind, verdict) {
            (_, Verdict::NodeUnavailable | Verdict::InternalError) => {
                self.reply_error(idx, &p.id, E_UNAVAILABLE);
            }
            (PendingKind::Authorize, Verdict::Accepted | Verdict::BlockFound) => {
                self.authorize_ok(now, idx, &p);
            }
            (PendingKind::Authorize, Verdict::Rejected(_)) => {
                self.reply_error(idx, &p.id, E_UNAUTHORIZED);
                self.penalize(now, idx, Penalty::Junk);
            }
            (PendingKind::Submit, Verdict::Accepted | Verdict::BlockFound) => {
                self.reply(idx, |out| message::encode_result_bool(out, &p.id, true));
                self.penalize(now, idx, Penalty::Share { invalid: false });
                if let Some(sess) = self
                    .slots
                    .get_mut(idx as usize)
                    .and_then(|s| s.session.as_mut())
                {
                    let old = sess.vardiff.micros();
                    if let Some(d) = sess.vardiff.record_share(&self.cfg.vardiff, now) {
                        sess.previous = Some((
                            old,
                            now.saturating_add_millis(millis(self.cfg.difficulty_grace)),
                        ));
                        self.send_difficulty_and_job(idx, d);
                    }
                }
            }
            (PendingKind::Submit, Verdict::Rejected(reason)) => {
                self.reply_error(idx, &p.id, reason.error());
                if reason.penalizes() {
                    self.penalize(now, idx, Penalty::Share { invalid: true });
                }
            }
        }
        Ok(())
    }

    fn authorize_ok(&mut self, now: Timestamp, idx: u32, p: &Pending) {
        let Some(sess) = self.slot_session_mut(idx) else {
            return;
        };
        sess.user = p.username.clone();
        let newly = sess.phase != Phase::Authorized;
        sess.phase = Phase::Authorized;
        let d = sess.vardiff.difficulty();
        // Restart the vardiff window: work starts now.
        let _ = sess.vardiff.set(d, now);
        if newly {
            self.authorized = self.authorized.saturating_add(1);
        }
        self.reply(idx, |out| message::encode_result_bool(out, &p.id, true));
        self.reply(idx, |out| Notification::SetDifficulty(d).encode(out));
        if let Some(job) = self.jobs.latest() {
            let head = &job.notify_head;
            let Some(slot) = self.slots.get_mut(idx as usize) else {
                return;
            };
            write_out(
                &self.cfg,
                slot,
                idx,
                &mut self.ready,
                &mut self.closing,
                |out| {
                    out.extend_from_slice(head);
                    push_clean_tail(out, true);
                },
            );
        }
    }

    // -- commands -------------------------------------------------------------------------

    /// Stores a job and sends `mining.notify` to every authorized session. A job with
    /// `clean_jobs` retires all older jobs: their shares are then rejected as stale (21).
    /// Sessions whose output would exceed `max_output_bytes` are disconnected.
    ///
    /// # Errors
    /// [`JobError`] if the job exceeds a size limit (nothing is sent).
    pub fn broadcast_job(&mut self, job: &Job) -> Result<(), JobError> {
        job.validate()?;
        self.jobs.insert(job);
        let Some(stored) = self.jobs.latest() else {
            return Ok(());
        };
        let head = &stored.notify_head;
        let clean = stored.clean;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let ok = slot
                .session
                .as_ref()
                .is_some_and(|s| s.phase == Phase::Authorized && s.closing.is_none());
            if !ok {
                continue;
            }
            let idx = u32::try_from(i).unwrap_or(u32::MAX);
            write_out(
                &self.cfg,
                slot,
                idx,
                &mut self.ready,
                &mut self.closing,
                |out| {
                    out.extend_from_slice(head);
                    push_clean_tail(out, clean);
                },
            );
        }
        Ok(())
    }

    /// Sets a session's difficulty (an operator override), sends `mining.set_difficulty` and
    /// re-sends the current job so the miner applies it.
    ///
    /// # Errors
    /// [`SessionGoneError`] if the session is not live.
    pub fn set_difficulty(
        &mut self,
        now: Timestamp,
        session: SessionId,
        difficulty: ShareDifficulty,
    ) -> Result<(), SessionGoneError> {
        let grace = millis(self.cfg.difficulty_grace);
        let sess = self.session_mut(session).ok_or(SessionGoneError(session))?;
        let old = sess.vardiff.micros();
        if let Some(d) = sess.vardiff.set(difficulty, now) {
            sess.previous = Some((old, now.saturating_add_millis(grace)));
            if sess.phase == Phase::Authorized {
                self.send_difficulty_and_job(session.index(), d);
            }
        }
        Ok(())
    }

    /// Sends a notification (`client.reconnect`, `client.show_message`,
    /// `mining.set_version_mask`, ...) to one session. A `SetVersionMask` also becomes the
    /// session's mask for checking submitted version bits.
    ///
    /// # Errors
    /// [`SessionGoneError`] if the session is not live.
    pub fn send(
        &mut self,
        session: SessionId,
        notification: &Notification<'_>,
    ) -> Result<(), SessionGoneError> {
        let sess = self.session_mut(session).ok_or(SessionGoneError(session))?;
        if let Notification::SetVersionMask(m) = notification {
            sess.version_mask = Some(*m);
        }
        self.reply(session.index(), |out| notification.encode(out));
        Ok(())
    }

    /// Asks for a session to be disconnected (a [`ServerEvent::Disconnect`] follows).
    ///
    /// # Errors
    /// [`SessionGoneError`] if the session is not live.
    pub fn disconnect(&mut self, session: SessionId) -> Result<(), SessionGoneError> {
        self.session_mut(session).ok_or(SessionGoneError(session))?;
        self.close_slot(session.index(), DisconnectReason::Requested);
        Ok(())
    }

    /// Bans the prefix of `peer` until `now + duration`. Constant size: one ban entry, the
    /// least recently used one evicted when the table is full. Live sessions of the prefix are
    /// disconnected when they next send anything; new connections are refused.
    pub fn ban(&mut self, now: Timestamp, peer: IpAddr, duration: Duration) {
        self.ban_prefix(now, Prefix::of(peer), duration, BanReason::Manual);
    }

    /// Lifts a ban. Returns whether one existed.
    pub fn unban(&mut self, peer: IpAddr) -> bool {
        self.bans
            .find(&Prefix::of(peer))
            .and_then(|i| self.bans.remove(i))
            .is_some()
    }

    /// Returns whether the prefix of `peer` is banned at `now`.
    pub fn is_banned(&self, now: Timestamp, peer: IpAddr) -> bool {
        let p = Prefix::of(peer);
        self.bans
            .find(&p)
            .and_then(|i| self.bans.get(i))
            .is_some_and(|b| b.until > now)
    }

    // -- output ---------------------------------------------------------------------------

    /// Returns the next event for the host: disconnect decisions first, then ban notices,
    /// then requests. Requests of sessions that have since closed are skipped.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        while let Some(idx) = self.closing.pop_front() {
            let Some(slot) = self.slots.get_mut(idx as usize) else {
                continue;
            };
            slot.close_queued = false;
            let gen_ = slot.generation;
            if let Some(reason) = slot.session.as_ref().and_then(|s| s.closing) {
                return Some(ServerEvent::Disconnect {
                    session: SessionId::from_parts(idx, gen_),
                    reason,
                });
            }
        }
        if let Some(n) = self.notices.pop_front() {
            return Some(n);
        }
        while let Some(ev) = self.events.pop_front() {
            let token = match &ev {
                ServerEvent::Authorize(a) => a.token,
                ServerEvent::Submit(s) => s.token,
                _ => return Some(ev),
            };
            if self.session_ref(token.session).is_some() {
                return Some(ev);
            }
        }
        None
    }

    /// Appends the output of the next session that has any to `out` and returns that session.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<SessionId> {
        while let Some(idx) = self.ready.pop_front() {
            let Some(slot) = self.slots.get_mut(idx as usize) else {
                continue;
            };
            slot.ready_queued = false;
            let gen_ = slot.generation;
            if let Some(sess) = slot.session.as_mut()
                && !sess.out.is_empty()
            {
                out.extend_from_slice(&sess.out);
                drain_out(&mut sess.out);
                return Some(SessionId::from_parts(idx, gen_));
            }
        }
        None
    }

    /// Appends one session's queued output to `out`; returns the number of bytes.
    pub fn take_transmit(&mut self, session: SessionId, out: &mut Vec<u8>) -> usize {
        let Some(sess) = self.session_mut(session) else {
            return 0;
        };
        let n = sess.out.len();
        out.extend_from_slice(&sess.out);
        drain_out(&mut sess.out);
        n
    }

    /// Returns when [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.live == 0 && self.prefixes.is_empty() && self.bans.is_empty() {
            return None;
        }
        self.next_sweep
    }

    // -- getters --------------------------------------------------------------------------

    /// Returns a snapshot of a live session.
    pub fn session(&self, id: SessionId) -> Option<SessionInfo> {
        let s = self.session_ref(id)?;
        Some(SessionInfo {
            prefix: s.prefix,
            phase: s.phase,
            extranonce1: s.extranonce1,
            difficulty: s.vardiff.difficulty(),
            user: s.user.clone(),
            version_mask: s.version_mask,
            pending: s.pending.len(),
            queued_output: s.out.len(),
            closing: s.closing.is_some(),
        })
    }

    /// Returns table sizes and counters. Scans the session slots (O(sessions)).
    pub fn stats(&self) -> Stats {
        let mut st = self.stats;
        st.sessions = self.live;
        st.slots = self.slots.len();
        st.authorized = self.authorized;
        st.tracked_prefixes = self.prefixes.len();
        st.bans = self.bans.len();
        st.jobs = self.jobs.len();
        st.events = self.events.len();
        st.ban_notices = self.notices.len();
        st.pending_requests = self.pending_total;
        st.ready_queue = self.ready.len();
        st.closing_queue = self.closing.len();
        for s in self.slots.iter().filter_map(|s| s.session.as_ref()) {
            st.max_session_pending = st.max_session_pending.max(s.pending.len());
            st.max_session_output = st.max_session_output.max(s.out.len());
            st.max_session_line = st.max_session_line.max(s.framer.buffered());
        }
        st
    }

    /// Returns the memory the server holds now, in bytes, computed from table sizes and buffer
    /// capacities (not measured). Scans the session slots.
    pub fn memory_estimate(&self) -> usize {
        let mut total = size_of::<Self>()
            .saturating_add(self.slots.capacity().saturating_mul(size_of::<Slot>()))
            .saturating_add(
                (self.free.capacity() + self.ready.capacity() + self.closing.capacity())
                    .saturating_mul(size_of::<u32>()),
            )
            .saturating_add(self.prefixes.heap_bytes())
            .saturating_add(self.bans.heap_bytes())
            .saturating_add(self.jobs.heap_bytes())
            .saturating_add(
                (self.events.capacity() + self.notices.capacity())
                    .saturating_mul(size_of::<ServerEvent>()),
            );
        for s in self.slots.iter().filter_map(|s| s.session.as_ref()) {
            total = total
                .saturating_add(s.framer.capacity())
                .saturating_add(s.out.capacity())
                .saturating_add(s.pending.capacity().saturating_mul(size_of::<Pending>()))
                .saturating_add(s.pending.iter().map(|p| p.id.heap_size()).sum::<usize>())
                .saturating_add(s.user.as_ref().map_or(0, |u| u.len() + 16));
        }
        total
    }

    /// Returns the memory of one idle session (authorized, nothing buffered), in bytes: the
    /// slot record plus the allocations an idle session keeps.
    pub fn idle_session_memory(&self) -> usize {
        size_of::<Slot>() + 3 * size_of::<u32>() + 64
    }

    // -- internals ------------------------------------------------------------------------

    fn session_ref(&self, id: SessionId) -> Option<&Session> {
        let slot = self.slots.get(id.index() as usize)?;
        (slot.generation == id.generation()).then_some(())?;
        slot.session.as_ref()
    }

    fn session_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        let slot = self.slots.get_mut(id.index() as usize)?;
        (slot.generation == id.generation()).then_some(())?;
        slot.session.as_mut()
    }

    fn slot_session_mut(&mut self, idx: u32) -> Option<&mut Session> {
        self.slots
            .get_mut(idx as usize)
            .and_then(|s| s.session.as_mut())
    }

    fn is_prefix_banned(&mut self, now: Timestamp, prefix: Prefix) -> bool {
        let Some(i) = self.bans.find(&prefix) else {
            return false;
        };
        let active = self.bans.get(i).is_some_and(|b| b.until > now);
        if !active {
            self.bans.remove(i);
        }
        active
    }

    fn reply(&mut self, idx: u32, f: impl FnOnce(&mut Vec<u8>)) {
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return;
        };
        write_out(&self.cfg, slot, idx, &mut self.ready, &mut self.closing, f);
    }

    fn reply_error(&mut self, idx: u32, id: &RequestId, e: StratumError) {
        self.reply(idx, |out| message::encode_error(out, id, e));
    }

    fn close_slot(&mut self, idx: u32, reason: DisconnectReason) {
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return;
        };
        mark_closing(slot, idx, &mut self.closing, reason);
    }

    fn send_difficulty_and_job(&mut self, idx: u32, d: ShareDifficulty) {
        self.reply(idx, |out| Notification::SetDifficulty(d).encode(out));
        if let Some(job) = self.jobs.latest() {
            let head = &job.notify_head;
            let clean = job.clean;
            let Some(slot) = self.slots.get_mut(idx as usize) else {
                return;
            };
            write_out(
                &self.cfg,
                slot,
                idx,
                &mut self.ready,
                &mut self.closing,
                |out| {
                    out.extend_from_slice(head);
                    push_clean_tail(out, clean);
                },
            );
        }
    }

    fn ban_prefix(
        &mut self,
        now: Timestamp,
        prefix: Prefix,
        duration: Duration,
        reason: BanReason,
    ) {
        let until = now.saturating_add_millis(millis(duration));
        match self.bans.find(&prefix) {
            Some(i) => {
                if let Some(b) = self.bans.get_mut(i) {
                    b.until = b.until.max(until);
                }
                self.bans.touch(i);
            }
            None => {
                let _ = self.bans.insert(prefix, Ban { until });
            }
        }
        // Start the prefix's counters afresh for after the ban.
        if let Some(st) = self
            .prefixes
            .find(&prefix)
            .and_then(|i| self.prefixes.get_mut(i))
        {
            *st = PrefixState {
                live: st.live,
                ..PrefixState::new(now)
            };
        }
        self.stats.bans_issued = self.stats.bans_issued.saturating_add(1);
        if self.notices.len() >= MAX_BAN_NOTICES {
            self.notices.pop_front();
        }
        self.notices.push_back(ServerEvent::Banned {
            prefix,
            until,
            reason,
        });
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now.saturating_add_millis(millis(self.cfg.sweep_interval)));
        }
    }

    /// Counts a penalty against the session's prefix (and the session); bans and disconnects
    /// when a threshold is crossed. Returns true if the session is now closing.
    fn penalize(&mut self, now: Timestamp, idx: u32, penalty: Penalty) -> bool {
        let Some(sess) = self.slot_session_mut(idx) else {
            return false;
        };
        let prefix = sess.prefix;
        let mut close = None;
        match penalty {
            Penalty::Junk => {
                sess.junk = sess.junk.saturating_add(1);
                if sess.junk > self.cfg.max_junk_per_session {
                    close = Some(DisconnectReason::Junk);
                }
            }
            Penalty::Flood => close = Some(DisconnectReason::Flood),
            Penalty::Refused | Penalty::Share { .. } => {}
        }
        if self.penalize_prefix(now, prefix, penalty) {
            close = Some(DisconnectReason::Banned);
        }
        match close {
            Some(reason) => {
                self.close_slot(idx, reason);
                true
            }
            None => false,
        }
    }

    /// Counts a penalty against a prefix; returns true if it is now banned.
    fn penalize_prefix(&mut self, now: Timestamp, prefix: Prefix, penalty: Penalty) -> bool {
        let cfg = &self.cfg;
        let Some(st) = self
            .prefixes
            .find(&prefix)
            .and_then(|i| self.prefixes.get_mut(i))
        else {
            return false;
        };
        st.roll(cfg, now);
        let reason = match penalty {
            Penalty::Junk => {
                st.junk = st.junk.saturating_add(1);
                (st.junk >= cfg.ban_junk_threshold).then_some(BanReason::Junk)
            }
            Penalty::Flood => {
                st.flood = st.flood.saturating_add(1);
                (st.flood >= cfg.ban_flood_threshold).then_some(BanReason::Flood)
            }
            Penalty::Refused => {
                st.refused = st.refused.saturating_add(1);
                (st.refused >= cfg.ban_refused_threshold).then_some(BanReason::ConnectFlood)
            }
            Penalty::Share { invalid } => {
                if invalid {
                    st.invalid = st.invalid.saturating_add(1);
                } else {
                    st.valid = st.valid.saturating_add(1);
                }
                let total = u64::from(st.valid) + u64::from(st.invalid);
                (invalid
                    && total >= u64::from(cfg.ban_invalid_min_shares)
                    && u64::from(st.invalid) * 100 >= total * u64::from(cfg.ban_invalid_percent))
                .then_some(BanReason::InvalidShares)
            }
        };
        match reason {
            Some(r) => {
                let d = self.cfg.ban_duration;
                self.ban_prefix(now, prefix, d, r);
                true
            }
            None => false,
        }
    }

    /// Handles one line; returns false to stop reading this session's input.
    fn handle_line(&mut self, now: Timestamp, idx: u32, line: &[u8]) -> bool {
        let cfg_rate = u64::from(self.cfg.line_rate);
        let cap = u64::from(self.cfg.line_burst).saturating_mul(1000);
        let max_flood = self.cfg.max_flood_per_session;
        let Some(sess) = self.slot_session_mut(idx) else {
            return false;
        };
        if sess.closing.is_some() {
            return false;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return true;
        }
        // Token bucket in thousandths of a line.
        let elapsed = now.saturating_millis_since(sess.tokens_at);
        sess.tokens = sess
            .tokens
            .saturating_add(elapsed.saturating_mul(cfg_rate))
            .min(cap);
        sess.tokens_at = now;
        if sess.tokens < 1000 {
            sess.flood = sess.flood.saturating_add(1);
            if sess.flood >= max_flood {
                self.penalize(now, idx, Penalty::Flood);
                return false;
            }
            return true;
        }
        sess.tokens -= 1000;
        match message::parse_request(line) {
            Ok(req) => self.dispatch(now, idx, req),
            Err(e) => {
                let err = match &e {
                    ParseError::MissingMethod { .. } => E_NO_METHOD,
                    ParseError::InvalidParams { reason, .. } => match reason {
                        ParamError::WrongCount { .. } => E_PARAM_COUNT,
                        ParamError::InvalidHex { .. } => E_INVALID_HEX,
                        _ => E_INVALID_PARAMS,
                    },
                    _ => E_MALFORMED,
                };
                self.reply_error(idx, e.id(), err);
                self.penalize(now, idx, Penalty::Junk);
            }
        }
        self.slot_session_mut(idx)
            .is_some_and(|s| s.closing.is_none())
    }

    fn dispatch(&mut self, now: Timestamp, idx: u32, req: message::Request<'_>) {
        let id = req.id;
        match req.method {
            Method::Submit(sub) => self.submit(now, idx, id, &sub),
            Method::Subscribe(_) => {
                let en2 = self.cfg.extranonce2_size;
                let Some(sess) = self.slot_session_mut(idx) else {
                    return;
                };
                if sess.phase == Phase::Connected {
                    sess.phase = Phase::Subscribed;
                }
                let en1 = sess.extranonce1;
                self.reply(idx, |out| {
                    message::encode_subscribe_result(out, &id, &en1, en2);
                });
            }
            Method::Authorize(a) => {
                let Some(sess) = self.slot_session_mut(idx) else {
                    return;
                };
                if sess.phase == Phase::Connected {
                    self.reply_error(idx, &id, E_NOT_SUBSCRIBED);
                    return;
                }
                let username: Arc<str> = Arc::from(&*a.username);
                let password = a.password.map(|p| Box::<str>::from(&*p));
                if let Some(token) = self.enqueue_pending(
                    now,
                    idx,
                    id,
                    PendingKind::Authorize,
                    Some(username.clone()),
                ) {
                    self.events
                        .push_back(ServerEvent::Authorize(AuthorizeRequest {
                            token,
                            username,
                            password,
                        }));
                }
            }
            Method::Configure(c) => {
                let pool_mask = self.cfg.version_rolling_mask;
                let Some(sess) = self.slot_session_mut(idx) else {
                    return;
                };
                let mut results = Vec::with_capacity(c.extensions.len());
                let mut new_diff = None;
                for ext in c.extensions {
                    results.push(match ext {
                        Extension::VersionRolling {
                            mask,
                            min_bit_count,
                        } => {
                            let m = mask & pool_mask;
                            if m == 0 || m.count_ones() < min_bit_count {
                                sess.version_mask = None;
                                ConfigureResult::VersionRollingRefused
                            } else {
                                sess.version_mask = Some(m);
                                ConfigureResult::VersionRolling(m)
                            }
                        }
                        Extension::MinimumDifficulty(d) => {
                            new_diff = sess.vardiff.raise_floor(d).or(new_diff);
                            ConfigureResult::MinimumDifficulty(true)
                        }
                        Extension::SubscribeExtranonce => {
                            sess.extranonce_subscribed = true;
                            ConfigureResult::SubscribeExtranonce
                        }
                        Extension::Unknown(name) => ConfigureResult::Unsupported(name),
                    });
                }
                let authorized = sess.phase == Phase::Authorized;
                self.reply(idx, |out| {
                    message::encode_configure_result(out, &id, &results);
                });
                if let (Some(d), true) = (new_diff, authorized) {
                    self.send_difficulty_and_job(idx, d);
                }
            }
            Method::ExtranonceSubscribe => {
                if let Some(sess) = self.slot_session_mut(idx) {
                    sess.extranonce_subscribed = true;
                }
                self.reply(idx, |out| message::encode_result_bool(out, &id, true));
            }
            Method::SuggestDifficulty(d) => {
                let grace = millis(self.cfg.difficulty_grace);
                let Some(sess) = self.slot_session_mut(idx) else {
                    return;
                };
                let old = sess.vardiff.micros();
                let changed = sess.vardiff.set(d, now);
                let authorized = sess.phase == Phase::Authorized;
                if changed.is_some() && authorized {
                    sess.previous = Some((old, now.saturating_add_millis(grace)));
                }
                self.reply(idx, |out| message::encode_result_bool(out, &id, true));
                if let (Some(d), true) = (changed, authorized) {
                    self.send_difficulty_and_job(idx, d);
                }
            }
            Method::Unknown(_) => self.reply_error(idx, &id, E_UNKNOWN_METHOD),
        }
    }

    fn submit(&mut self, now: Timestamp, idx: u32, id: RequestId, sub: &message::Submit<'_>) {
        let en2_size = usize::from(self.cfg.extranonce2_size);
        let max_roll = self.cfg.max_ntime_roll;
        let Some(sess) = self
            .slots
            .get(idx as usize)
            .and_then(|s| s.session.as_ref())
        else {
            return;
        };
        if sess.phase == Phase::Connected {
            return self.reply_error(idx, &id, E_NOT_SUBSCRIBED);
        }
        let Some(user) = sess.user.as_ref().filter(|u| ***u == *sub.worker) else {
            return self.reply_error(idx, &id, E_UNAUTHORIZED);
        };
        let job = JobId::from_hex(&sub.job_id).and_then(|j| self.jobs.get(j));
        let Some(job) = job else {
            return self.reply_error(idx, &id, E_JOB_NOT_FOUND);
        };
        let (job_id, job_version, job_ntime) = (job.id, job.version, job.ntime);
        let fail = if sub.extranonce2.len() != en2_size {
            Some(E_EN2_SIZE)
        } else if sub.ntime < job_ntime || sub.ntime > job_ntime.saturating_add(max_roll) {
            Some(E_NTIME)
        } else {
            None
        };
        let mask = sess.version_mask.unwrap_or(0);
        let version = match sub.version_bits {
            None => Ok(job_version),
            Some(bits) => {
                let outside = bits & !mask;
                if outside != 0 && outside != (job_version & !mask) {
                    Err(E_VERSION)
                } else {
                    Ok((job_version & !mask) | (bits & mask))
                }
            }
        };
        let fail = fail.or(version.err());
        if let Some(e) = fail {
            self.reply_error(idx, &id, e);
            self.penalize(now, idx, Penalty::Share { invalid: true });
            return;
        }
        let submission = Submission {
            token: RequestToken {
                session: SessionId::from_parts(idx, 0),
                serial: 0,
            },
            user: user.clone(),
            job_id,
            extranonce1: sess.extranonce1,
            extranonce2: sub.extranonce2,
            ntime: sub.ntime,
            nonce: sub.nonce,
            version: version.unwrap_or(job_version),
            version_bits: sub.version_bits,
            difficulty: sess.vardiff.difficulty(),
            previous_difficulty: sess
                .previous
                .filter(|(_, until)| now < *until)
                .map(|(m, _)| from_micros(m)),
        };
        if let Some(token) = self.enqueue_pending(now, idx, id, PendingKind::Submit, None) {
            self.events.push_back(ServerEvent::Submit(Submission {
                token,
                ..submission
            }));
        }
    }

    /// Reserves a pending slot and an event slot, or answers "busy" (no penalty).
    fn enqueue_pending(
        &mut self,
        now: Timestamp,
        idx: u32,
        id: RequestId,
        kind: PendingKind,
        username: Option<Arc<str>>,
    ) -> Option<RequestToken> {
        let max_pending = self.cfg.max_pending_per_session;
        let events_full = self.events.len() >= self.cfg.max_events;
        let deadline = now.saturating_add_millis(millis(self.cfg.request_timeout));
        let slot = self.slots.get_mut(idx as usize)?;
        let generation = slot.generation;
        let sess = slot.session.as_mut()?;
        let err = if sess.pending.len() >= max_pending {
            Some(E_TOO_MANY_PENDING)
        } else if events_full {
            Some(E_BUSY)
        } else {
            None
        };
        if let Some(e) = err {
            self.stats.requests_shed = self.stats.requests_shed.saturating_add(1);
            self.reply_error(idx, &id, e);
            return None;
        }
        let serial = sess.next_serial;
        sess.next_serial = serial.wrapping_add(1);
        sess.pending.push(Pending {
            serial,
            id,
            kind,
            deadline,
            username,
        });
        self.pending_total = self.pending_total.saturating_add(1);
        Some(RequestToken {
            session: SessionId::from_parts(idx, generation),
            serial,
        })
    }
}

/// Empties a drained output buffer, freeing it unless it is small, so idle sessions hold
/// no output memory.
fn drain_out(out: &mut Vec<u8>) {
    if out.capacity() > 512 {
        *out = Vec::new();
    } else {
        out.clear();
    }
}

fn mark_closing(slot: &mut Slot, idx: u32, closing: &mut VecDeque<u32>, reason: DisconnectReason) {
    let Some(sess) = slot.session.as_mut() else {
        return;
    };
    if sess.closing.is_some() {
        return;
    }
    sess.closing = Some(reason);
    if !slot.close_queued {
        slot.close_queued = true;
        closing.push_back(idx);
    }
}

/// Appends output for a session, enforcing `max_output_bytes`: when a write would exceed it,
/// the write is undone and the session is marked for disconnection (slow reader).
fn write_out(
    cfg: &Config,
    slot: &mut Slot,
    idx: u32,
    ready: &mut VecDeque<u32>,
    closing: &mut VecDeque<u32>,
    f: impl FnOnce(&mut Vec<u8>),
) {
    let Some(sess) = slot.session.as_mut() else {
        return;
    };
    let before = sess.out.len();
    f(&mut sess.out);
    if sess.out.len() > cfg.max_output_bytes {
        sess.out.truncate(before);
        mark_closing(slot, idx, closing, DisconnectReason::OutputOverflow);
        return;
    }
    if !slot.ready_queued {
        slot.ready_queued = true;
        ready.push_back(idx);
    }
}
