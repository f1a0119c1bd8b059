//! # btq-index
//!
//! A race-free, crash-safe, reorg-safe indexer for the BTQ chain, keyed by scriptPubKey
//! (`btq-protocol.md` §6.3: one script has several address strings).
//!
//! - **Sans-IO core.** [`Indexer::apply_block`] turns a block and a [`ReadView`] of the state it
//!   extends into a [`ChangeSet`]: funding and spending rows, per-script statistics and history,
//!   UTXOs, transaction positions, header and chain work, explorer aggregates, and the undo
//!   record. [`Indexer::undo_tip`] returns the inverse. [`ChainSync`] finds the fork point with
//!   the node's chain through queries the driver resolves ([`SyncQuery`] / [`SyncAnswer`]).
//! - **Stores.** [`Store::commit`] writes one changeset and its tip in one transaction, after
//!   checking the tip it was computed against; snapshots see only committed states. Backends:
//!   [`MemoryStore`], [`RedbStore`] (`backend-redb`), [`PostgresStore`] (`backend-postgres`).
//! - **Queries** ([`query`]): balance (confirmed and as of a height), paged history newest
//!   first, UTXOs, transaction position, blocks, tip, difficulty series, pool distribution,
//!   blocks per time bucket, rich list.
//! - **Drivers**: [`driver::Syncer`] (blocking sync loop over a [`driver::BlockSource`], with
//!   batching and progress), [`driver::DirSource`] (height-named block files), and with
//!   `runtime-tokio` the node JSON-RPC client (`rpc`) and the HTTP API (`http`).
//!
//! ## Features
//! - `backend-redb` (default): the embedded redb store.
//! - `backend-postgres`: the PostgreSQL store.
//! - `runtime-tokio`: node RPC client and the Esplora-style HTTP API (axum).
//!
//! ## Limits
//! - Reorgs deeper than [`Config::reorg_depth_limit`] (default 100) fail with
//!   [`SyncError::ReorgTooDeep`]. Undo data is kept for twice the limit
//!   ([`Indexer::undo_retention`]), so the driver can then resync from the fork point
//!   ([`ChainSync::allow_deep_reorg`]); beyond the undo data only a reindex helps. During an
//!   initial sync, [`ChainSync`] writes no undo record for a block more than that far below the
//!   node's tip (it would be pruned before the index reaches the tip).
//! - List queries return at most [`query::MAX_PAGE`] rows; pool lists at most [`MAX_POOLS`].
//!
//! ## Example
//! ```
//! use btq_index::{Indexer, MemoryStore, Store, query};
//! use btq_core::params::Network;
//! let store = MemoryStore::new();
//! let indexer = Indexer::default();
//! let genesis = Network::Regtest.params().genesis_block();
//! let cs = indexer.apply_block(&store.snapshot()?, genesis)?;
//! store.commit(&cs)?;
//! let snap = store.snapshot()?;
//! assert_eq!(query::tip(&snap)?.map(|t| t.block.height), Some(0));
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(fuzzing, allow(missing_docs))]
#![doc(test(attr(warn(unused))))]

mod changeset;
pub mod driver;
mod indexer;
pub mod query;
mod schema;
mod store;
mod sync;
pub mod testkit;
mod view;

#[cfg(feature = "runtime-tokio")]
pub mod http;
#[cfg(feature = "runtime-tokio")]
pub mod rpc;

pub use btq_core;

pub use crate::changeset::{ChangeSet, Merge};
pub use crate::indexer::{
    Config, DEFAULT_REORG_DEPTH_LIMIT, DEFAULT_TIME_BUCKET_SECS, IndexError, Indexer, MAX_POOLS,
    Pool, read_tip,
};
pub use crate::schema::{
    BlockRef, CorruptRecordError, ParseScriptHashError, PoolKey, ScriptHash, ScriptStats, Table,
    Tip,
};
#[cfg(feature = "backend-postgres")]
pub use crate::store::PostgresStore;
#[cfg(feature = "backend-redb")]
pub use crate::store::RedbStore;
pub use crate::store::{MemoryStore, Store};
pub use crate::sync::{ChainSync, SyncAnswer, SyncError, SyncQuery, SyncStep};
pub use crate::view::{Direction, KeyValues, Overlay, ReadView, StoreError};
