//! # btq-pool
//!
//! The mining path of a BTQ pool as Sans-IO building blocks: block templates to Stratum jobs
//! ([`JobFactory`]), share validation with precise rejects ([`ShareValidator`]), block assembly
//! and local checks ([`assemble_block`], [`check_block`]), `submitblock` outcomes, found-block
//! tracking, an embedded regtest chain ([`EmbeddedChain`]) and the [`NodeApi`] both it and the
//! JSON-RPC client implement, with failover over several nodes ([`NodeSet`]).
//!
//! Nothing here reads a clock or opens a socket except the `runtime-tokio` client: wall-clock
//! time enters as [`btq_core::time::UnixTime`] arguments.
//!
//! ## Features
//! - `runtime-tokio` (off by default): `rpc::RpcClient`, the JSON-RPC node client (reqwest),
//!   cookie or user/password auth, long polling; `service::run_pool`, the whole pool (Stratum
//!   server, templates to jobs, share validation, block submission with failover, Prometheus
//!   `/metrics`) used by `btqkit pool run` and `btqkit demo`; `miner::CpuMiner`, a built-in
//!   Stratum CPU miner for the demo and the end-to-end tests.
//!
//! ## Resource limits
//! - Template JSON ≤ [`template::MAX_TEMPLATE_JSON_LEN`] bytes, ≤ [`template::MAX_TEMPLATE_TXS`]
//!   transactions.
//! - Jobs kept: [`ValidatorConfig::max_jobs`]; accepted shares remembered per job for duplicate
//!   detection: [`ValidatorConfig::max_shares_per_job`] (16 bytes each plus hash-set overhead).
//! - Found blocks tracked: the cap given to [`FoundBlockTracker::new`].
//! - Embedded mempool: [`ChainConfig::max_mempool_txs`].
//! - `service` (feature `runtime-tokio`): found blocks queued for submission at most
//!   `ServiceConfig::max_queued_blocks` (more are dropped and counted); the `/metrics` endpoint
//!   reads request heads of at most 8 KiB within 5 s and serves at most 32 connections at once;
//!   Stratum limits are btq-stratum's `Config`.
//!
//! ## Example: template → job → share → block, against the embedded chain
//! ```
//! use std::sync::Arc;
//! use btq_core::{pow::ShareDifficulty, script::ScriptBuf, time::UnixTime};
//! use btq_pool::{
//!     ChainConfig, EmbeddedChain, ExtraNonce, JobConfig, JobFactory, SessionParams, ShareValidator,
//!     Submit, SubmitOutcome, ValidatorConfig, assemble_block,
//! };
//!
//! let mut chain = EmbeddedChain::new_regtest(ChainConfig::default());
//! let now = UnixTime::from_secs(1_800_000_000);
//! chain.set_time(now);
//! let mut factory = JobFactory::new(JobConfig::new(ScriptBuf::new_p2wpkh(&[7; 20])))?;
//! let mut validator = ShareValidator::new(ValidatorConfig::default());
//! let job = validator.add_job(factory.build(Arc::new(chain.get_block_template()?))?);
//! let session = SessionParams::new(
//!     Arc::from("miner.1"),
//!     ExtraNonce::from_slice(&[0, 0, 0, 1]).ok_or("en1")?,
//!     ShareDifficulty::new(0.0001)?,
//!     0,
//! );
//! // Roll nonces like a miner until a share meets the (regtest) network target.
//! for nonce in 0u32.. {
//!     let submit = Submit {
//!         job_id: job.id(),
//!         extranonce2: ExtraNonce::from_counter(1, 4).ok_or("en2")?,
//!         ntime: job.ntime(),
//!         nonce,
//!         version_bits: None,
//!     };
//!     let Ok(accepted) = validator.validate(&session, &submit, now) else { continue };
//!     if let Some(candidate) = accepted.block {
//!         let block = assemble_block(&candidate)?;
//!         assert_eq!(chain.submit_block(&block), SubmitOutcome::Accepted);
//!         break;
//!     }
//! }
//! assert_eq!(chain.height(), 1);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(fuzzing, allow(missing_docs))]
#![doc(test(attr(warn(unused))))]

mod block;
mod chain;
mod job;
#[cfg(feature = "runtime-tokio")]
pub mod miner;
mod node;
#[cfg(feature = "runtime-tokio")]
pub mod rpc;
#[cfg(feature = "runtime-tokio")]
pub mod service;
mod share;
pub mod template;

pub use bitcoin_hashes;
pub use btq_core;

pub use crate::block::{
    BlockCheckError, FoundBlock, FoundBlockEvent, FoundBlockState, FoundBlockTracker, RejectReason,
    SubmitOutcome, assemble_block, check_block,
};
pub use crate::chain::{
    AddressValidation, BlockchainInfo, COINBASE_WEIGHT_RESERVE, ChainConfig, ChainRejectError,
    Coin, EmbeddedChain, LithiumVerifier, MAX_FUTURE_BLOCK_TIME, MiningInfo, SignatureVerifier,
};
pub use crate::job::{
    Job, JobConfig, JobError, JobFactory, JobId, MAX_COINBASE_SCRIPT_SIG, MAX_EXTRANONCE_SIZE,
    MAX_POOL_TAG, MIN_COINBASE_SCRIPT_SIG, NotifyParams, ParseJobIdError, parse_stratum_prevhash,
    stratum_prevhash,
};
pub use crate::node::{Clock, EmbeddedNode, NodeApi, NodeError, NodeHealth, NodeSet, SubmitReport};
pub use crate::share::{
    AcceptedShare, BlockCandidate, DEFAULT_VERSION_MASK, ExtraNonce, MAX_FUTURE_NTIME_SECS,
    SessionParams, ShareError, ShareRecord, ShareValidator, StratumReject, Submit, ValidatorConfig,
    header_bytes, sha256d_80,
};
pub use crate::template::{Template, TemplateError, TemplateTx};
