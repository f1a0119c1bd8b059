//! # btq-stratum
//!
//! A Sans-IO Stratum V1 server for BTQ pools: line framing with a hard length cap, typed
//! messages, per-session state machines (subscribe → authorize → work, BIP 310 version rolling,
//! suggested and minimum difficulties, extranonce subscription), job broadcast with stale
//! detection, integer vardiff with fractional difficulties, and admission control and bans
//! whose memory is bounded by [`Config`] no matter how many addresses connect and disconnect.
//!
//! The server validates everything it can decide alone (parameters, hex, extranonce2 size,
//! job freshness, ntime range, version bits) and hands the rest to the host as events: an
//! [`AuthorizeRequest`] or a [`Submission`]. The host answers with [`Server::respond`] and a
//! [`Verdict`]; a verdict for a session that closed in the meantime is dropped without side
//! effects, and [`Verdict::NodeUnavailable`] never counts against a miner.
//!
//! Nothing here reads a clock, draws randomness or does I/O: time enters as
//! [`Timestamp`](btq_core::time::Timestamp) values, and output leaves through `poll_*` calls.
//!
//! ## Resource limits
//! All caps live in [`Config`] (defaults in its docs, worst-case memory from
//! [`Config::worst_case_memory`]). Fixed limits: [`message::MAX_REQUEST_ID_LEN`],
//! [`message::MAX_PARAMS`], [`message::MAX_USERNAME_LEN`], [`message::MAX_PASSWORD_LEN`],
//! [`message::MAX_USER_AGENT_LEN`], [`message::MAX_CONFIGURE_EXTENSIONS`],
//! [`job::MAX_COINBASE_PART_LEN`], [`job::MAX_MERKLE_BRANCH`], [`server::MAX_BAN_NOTICES`].
//!
//! ## Features
//! - `runtime-tokio`: the `tokio` module, a TCP server driving the core (accept loop with
//!   admission before allocation, line-capped reads, byte-capped writes, timers, graceful
//!   shutdown, optional PROXY protocol v1).
//!
//! ## Example: a complete driving loop
//! ```
//! use btq_core::time::Timestamp;
//! use btq_stratum::{Config, Job, JobId, Server, ServerEvent, Verdict};
//!
//! let mut server = Server::new(Config::default())?;
//! let mut now = Timestamp::from_millis(1_000);
//! let miner = server.handle_connect(now, "192.0.2.7".parse().unwrap()).unwrap();
//! server.broadcast_job(&Job {
//!     id: JobId::from_u64(1),
//!     prevhash: [0; 32],
//!     coinb1: vec![0xaa; 42],
//!     coinb2: vec![0xbb; 40],
//!     merkle_branch: vec![],
//!     version: 0x2000_0000,
//!     nbits: 0x1d00_ffff,
//!     ntime: 0x6600_0000,
//!     clean_jobs: true,
//! })?;
//!
//! let input: &[&[u8]] = &[
//!     b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"cgminer/4.11\"]}\n",
//!     b"{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"btq1qminer.rig\",\"x\"]}\n",
//!     b"{\"id\":3,\"method\":\"mining.submit\",\"params\":[\"btq1qminer.rig\",\"1\",\"00000000\",\"66000000\",\"12345678\"]}\n",
//! ];
//! let mut wire = Vec::new();
//! for bytes in input {
//!     now = now.saturating_add_millis(10);
//!     server.handle_bytes(now, miner, bytes)?;
//!     // Events: the host decides (here: accept everything).
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             ServerEvent::Authorize(a) => server.respond(now, a.token, Verdict::Accepted)?,
//!             ServerEvent::Submit(s) => server.respond(now, s.token, Verdict::Accepted)?,
//!             ServerEvent::Disconnect { session, .. } => {
//!                 server.handle_close(now, session);
//!             }
//!             _ => {}
//!         }
//!     }
//!     // Transmits: write each session's bytes to its socket.
//!     while let Some(_session) = server.poll_transmit(&mut wire) {}
//!     // Timers.
//!     if server.poll_timeout().is_some_and(|t| t <= now) {
//!         server.handle_timeout(now);
//!     }
//! }
//! let text = String::from_utf8(wire).unwrap();
//! assert!(text.contains("\"mining.notify\""));
//! assert!(text.ends_with("{\"id\":3,\"result\":true,\"error\":null}\n"));
//! server.handle_close(now, miner);
//! assert_eq!(server.stats().sessions, 0);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(fuzzing, allow(missing_docs))]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(warn(unused))))]

mod config;
pub mod framing;
pub mod job;
mod lru;
pub mod message;
pub mod server;
mod types;
pub mod vardiff;

#[cfg(feature = "runtime-tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime-tokio")))]
pub mod tokio;

pub use btq_core;

pub use crate::config::{Config, ConfigError, MemoryBudget};
pub use crate::job::{Job, JobError};
pub use crate::server::{
    AuthorizeRequest, BanReason, DisconnectReason, Phase, Refused, RejectReason, RequestToken,
    RespondError, Server, ServerEvent, SessionGoneError, SessionInfo, Stats, Submission, Verdict,
};
pub use crate::types::{
    Extranonce1, Extranonce2, ExtranonceBytes, ExtranonceLengthError, JobId, MAX_EXTRANONCE_SIZE,
    Prefix, SessionId,
};
pub use crate::vardiff::VardiffConfig;
