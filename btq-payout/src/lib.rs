//! # btq-payout
//!
//! The money path of a BTQ mining pool, usable on its own (for pools that keep their own
//! Stratum front end) or under `btq-pool`:
//!
//! - [`reward`]: PPLNS, PROP, SOLO, PPS and FPPS in integer arithmetic, with a pool fee split
//!   among recipients and the rounding remainder going to a documented account, so
//!   `credited + pool fee + remainder == value` to the satoshi; [`coinbase`] pays miners above a
//!   threshold directly in the block's coinbase.
//! - [`ledger`]: per-account balances (immature, mature, pending, paid) derived from block and
//!   payout records; changes are [`ChangeSet`]s whose merge is idempotent, committed atomically by
//!   a [`Store`] (in memory, redb, PostgreSQL). A payout is recorded with its txid and raw
//!   transaction before it is broadcast.
//! - [`utxo`]: the pool's UTXOs from the node's `listunspent`/`scantxoutset` JSON, amounts parsed
//!   exactly.
//! - [`plan`]: event-driven consolidation and payout planning within standardness (400,000 WU,
//!   90 Lithium inputs), block weight (8,000,000 WU, ~1,800 inputs) and mempool limits.
//! - [`builder`]: signs planned transactions (P2WPKH-Lithium, parallel) and checks each.
//!
//! ## Example
//! ```
//! use btq_core::Amount;
//! use btq_payout::reward::{pplns, FeeConfig, Share};
//! let shares: Vec<Share> = (0..10u64)
//!     .map(|i| Share { worker: format!("m{}", i % 3), difficulty: 100, network_difficulty: 500, time: i })
//!     .collect();
//! let fees = FeeConfig::single("operator", 100); // 1 %
//! let d = pplns(Amount::from_sat(5_000_000_000)?, &shares, 2, 500, &fees)?;
//! assert!(d.check_conservation());
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//! - `parallel` (default): sign transactions and inputs on all cores (rayon).
//! - `backend-redb` (default): the embedded [`store::RedbStore`].
//! - `backend-postgres`: [`store::PostgresStore`].
//! - `fast-signer`: sign with PQClean's ML-DSA-44 (AVX2 when the CPU has it), hedged.
//!
//! ## Limits
//! - [`utxo::MAX_UTXO_JSON_LEN`]: 64 MiB of UTXO JSON.
//! - Transactions: at most [`btq_core::policy::MAX_STANDARD_TX_WEIGHT`]; plans per call at most
//!   [`plan::ConsolidationConfig::weight_budget`] (one block by default).
#![forbid(unsafe_code)]
#![warn(clippy::arithmetic_side_effects)]
#![cfg_attr(fuzzing, allow(missing_docs))]
#![doc(test(attr(warn(unused))))]

pub mod builder;
pub mod coinbase;
#[cfg(feature = "fast-signer")]
mod fast;
pub mod ledger;
pub mod plan;
pub mod reward;
pub mod store;
pub mod utxo;

pub use btq_core;

pub use crate::builder::{BuildError, sign_all, sign_planned};
pub use crate::ledger::{Balance, ChangeSet, Ledger, LedgerError};
pub use crate::plan::{
    ConsolidationConfig, ConsolidationPlan, MempoolState, PayoutConfig, PayoutPlan, PlanError,
    PlannedTx, plan_consolidation, plan_payouts,
};
pub use crate::reward::{Distribution, FeeConfig, RewardError, RewardScheme, Share};
pub use crate::store::{MemoryStore, Store, StoreError};
pub use crate::utxo::{Utxo, parse_payees, parse_utxos};
