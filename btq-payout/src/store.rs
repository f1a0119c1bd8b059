//! Ledger stores: each commits one [`ChangeSet`] atomically, merging it into what is stored
//! (so committing the same changeset twice stores the same thing), and loads everything back.
//!
//! Backends: [`MemoryStore`] (always), [`RedbStore`] (`backend-redb`, embedded, the default),
//! [`PostgresStore`] (`backend-postgres`, for several machines sharing one ledger; run the
//! accounting leader under a PostgreSQL advisory lock).
//!
//! Records are stored as JSON (amounts as integer satoshis, the raw transaction as hex), one row
//! per block and per payout, keyed by block hash or txid.

use std::collections::BTreeMap;

use btq_core::Amount;
#[cfg(any(feature = "backend-redb", feature = "backend-postgres"))]
use btq_core::{BlockHash, Txid};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ledger::{BlockRecord, BlockStatus, ChangeSet, LedgerError, PayoutRecord, PayoutStatus};
#[cfg(any(feature = "backend-redb", feature = "backend-postgres"))]
use crate::ledger::{merge_block, merge_payout};

/// The largest raw payout transaction a record may hold (bytes; a standard transaction is at
/// most 400,000 weight units).
pub const MAX_RAW_TX: usize = 400_000;

/// An error from a store.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, database); nothing was committed.
    #[error("{backend} store: {message}")]
    Backend {
        /// The backend.
        backend: &'static str,
        /// Its error message.
        message: String,
    },
    /// A stored record does not decode.
    #[error("corrupt record {key}: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The changeset conflicts with what is stored; nothing was committed.
    #[error(transparent)]
    Conflict(#[from] LedgerError),
}

/// A ledger store.
pub trait Store {
    /// Loads every record.
    ///
    /// # Errors
    /// A backend failure or a corrupt record.
    fn load(&mut self) -> Result<ChangeSet, StoreError>;

    /// Merges `changeset` into the stored records in one atomic transaction: all of it is
    /// committed, or none of it.
    ///
    /// # Errors
    /// A backend failure or a conflicting record; nothing is committed then.
    fn commit(&mut self, changeset: &ChangeSet) -> Result<(), StoreError>;
}

/// An in-memory store (for tests and single-process tools).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: ChangeSet,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<ChangeSet, StoreError> {
        Ok(self.state.clone())
    }

    fn commit(&mut self, changeset: &ChangeSet) -> Result<(), StoreError> {
        let mut next = self.state.clone();
        next.merge(changeset)?;
        self.state = next;
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct BlockDto {
    height: u32,
    credits: BTreeMap<String, u64>,
    coinbase_paid: BTreeMap<String, u64>,
    status: u8,
}

#[derive(Serialize, Deserialize)]
struct PayoutDto {
    payments: BTreeMap<String, u64>,
    fee: u64,
    raw_tx: String,
    status: u8,
}

fn to_sats(m: &BTreeMap<String, Amount>) -> BTreeMap<String, u64> {
    m.iter().map(|(k, v)| (k.clone(), v.to_sat())).collect()
}

fn from_sats(key: &str, m: BTreeMap<String, u64>) -> Result<BTreeMap<String, Amount>, StoreError> {
    m.into_iter()
        .map(|(k, v)| {
            Amount::from_sat(v)
                .map(|a| (k, a))
                .map_err(|_| corrupt(key, "amount out of range"))
        })
        .collect()
}

fn corrupt(key: &str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

/// Encodes a block record (JSON).
pub fn encode_block(b: &BlockRecord) -> Vec<u8> {
    let dto = BlockDto {
        height: b.height,
        credits: to_sats(&b.credits),
        coinbase_paid: to_sats(&b.coinbase_paid),
        status: b.status as u8,
    };
    serde_json::to_vec(&dto).unwrap_or_default()
}

/// Decodes a block record.
///
/// # Errors
/// [`StoreError::Corrupt`].
pub fn decode_block(key: &str, bytes: &[u8]) -> Result<BlockRecord, StoreError> {
    let d: BlockDto = serde_json::from_slice(bytes).map_err(|e| corrupt(key, &e.to_string()))?;
    let status = match d.status {
        0 => BlockStatus::Immature,
        1 => BlockStatus::Mature,
        2 => BlockStatus::Orphaned,
        _ => return Err(corrupt(key, "bad block status")),
    };
    Ok(BlockRecord {
        height: d.height,
        credits: from_sats(key, d.credits)?,
        coinbase_paid: from_sats(key, d.coinbase_paid)?,
        status,
    })
}

/// Encodes a payout record (JSON).
pub fn encode_payout(p: &PayoutRecord) -> Vec<u8> {
    let dto = PayoutDto {
        payments: to_sats(&p.payments),
        fee: p.fee.to_sat(),
        raw_tx: btq_core::hex::encode(&p.raw_tx),
        status: p.status as u8,
    };
    serde_json::to_vec(&dto).unwrap_or_default()
}

/// Decodes a payout record.
///
/// # Errors
/// [`StoreError::Corrupt`].
pub fn decode_payout(key: &str, bytes: &[u8]) -> Result<PayoutRecord, StoreError> {
    let d: PayoutDto = serde_json::from_slice(bytes).map_err(|e| corrupt(key, &e.to_string()))?;
    let status = match d.status {
        0 => PayoutStatus::Recorded,
        1 => PayoutStatus::Broadcast,
        2 => PayoutStatus::Abandoned,
        3 => PayoutStatus::Confirmed,
        _ => return Err(corrupt(key, "bad payout status")),
    };
    Ok(PayoutRecord {
        payments: from_sats(key, d.payments)?,
        fee: Amount::from_sat(d.fee).map_err(|_| corrupt(key, "fee out of range"))?,
        raw_tx: btq_core::hex::decode_bounded(&d.raw_tx, 2 * MAX_RAW_TX)
            .map_err(|_| corrupt(key, "bad raw_tx hex"))?,
        status,
    })
}

#[cfg(any(feature = "backend-redb", feature = "backend-postgres"))]
fn block_key(h: &BlockHash) -> [u8; 32] {
    h.to_byte_array()
}

#[cfg(any(feature = "backend-redb", feature = "backend-postgres"))]
fn txid_key(t: &Txid) -> [u8; 32] {
    t.to_byte_array()
}

#[cfg(any(feature = "backend-redb", feature = "backend-postgres"))]
fn key_array(key: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(key)
        .map_err(|_| corrupt(&btq_core::hex::encode(key), "key is not 32 bytes"))
}

#[cfg(feature = "backend-redb")]
pub use self::redb_store::RedbStore;

#[cfg(feature = "backend-redb")]
mod redb_store {
    use std::path::Path;

    use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

    use super::{
        BlockHash, ChangeSet, Store, StoreError, Txid, block_key, decode_block, decode_payout,
        encode_block, encode_payout, key_array, merge_block, merge_payout, txid_key,
    };

    const BLOCKS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("btq_payout_blocks");
    const PAYOUTS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("btq_payout_payouts");

    fn be(e: impl core::fmt::Display) -> StoreError {
        StoreError::Backend {
            backend: "redb",
            message: e.to_string(),
        }
    }

    /// The embedded ledger store (one redb file; each commit is one durable write transaction).
    #[derive(Debug)]
    pub struct RedbStore {
        db: Database,
    }

    impl RedbStore {
        /// Opens or creates the store at `path`.
        ///
        /// # Errors
        /// [`StoreError::Backend`] if the file cannot be opened.
        pub fn open(path: &Path) -> Result<Self, StoreError> {
            let db = Database::create(path).map_err(be)?;
            let tx = db.begin_write().map_err(be)?;
            tx.open_table(BLOCKS).map_err(be)?;
            tx.open_table(PAYOUTS).map_err(be)?;
            tx.commit().map_err(be)?;
            Ok(Self { db })
        }
    }

    impl Store for RedbStore {
        fn load(&mut self) -> Result<ChangeSet, StoreError> {
            let tx = self.db.begin_read().map_err(be)?;
            let mut cs = ChangeSet::default();
            let blocks = tx.open_table(BLOCKS).map_err(be)?;
            for row in blocks.iter().map_err(be)? {
                let (k, v) = row.map_err(be)?;
                let h = BlockHash::from_byte_array(key_array(k.value())?);
                cs.blocks
                    .insert(h, decode_block(&h.to_string(), v.value())?);
            }
            let payouts = tx.open_table(PAYOUTS).map_err(be)?;
            for row in payouts.iter().map_err(be)? {
                let (k, v) = row.map_err(be)?;
                let t = Txid::from_byte_array(key_array(k.value())?);
                cs.payouts
                    .insert(t, decode_payout(&t.to_string(), v.value())?);
            }
            Ok(cs)
        }

        fn commit(&mut self, changeset: &ChangeSet) -> Result<(), StoreError> {
            let tx = self.db.begin_write().map_err(be)?;
            {
                let mut blocks = tx.open_table(BLOCKS).map_err(be)?;
                for (h, b) in &changeset.blocks {
                    let k = block_key(h);
                    let merged = match blocks.get(k.as_slice()).map_err(be)? {
                        Some(v) => merge_block(*h, &decode_block(&h.to_string(), v.value())?, b)?,
                        None => b.clone(),
                    };
                    blocks
                        .insert(k.as_slice(), encode_block(&merged).as_slice())
                        .map_err(be)?;
                }
                let mut payouts = tx.open_table(PAYOUTS).map_err(be)?;
                for (t, p) in &changeset.payouts {
                    let k = txid_key(t);
                    let merged = match payouts.get(k.as_slice()).map_err(be)? {
                        Some(v) => merge_payout(*t, &decode_payout(&t.to_string(), v.value())?, p)?,
                        None => p.clone(),
                    };
                    payouts
                        .insert(k.as_slice(), encode_payout(&merged).as_slice())
                        .map_err(be)?;
                }
            }
            // Dropping `tx` on an error above aborts it: nothing is committed.
            tx.commit().map_err(be)
        }
    }
}

#[cfg(feature = "backend-postgres")]
pub use self::pg_store::PostgresStore;

#[cfg(feature = "backend-postgres")]
mod pg_store {
    use postgres::{Client, NoTls};

    use super::{
        BlockHash, ChangeSet, Store, StoreError, Txid, block_key, decode_block, decode_payout,
        encode_block, encode_payout, key_array, merge_block, merge_payout, txid_key,
    };

    fn be(e: impl core::fmt::Display) -> StoreError {
        StoreError::Backend {
            backend: "postgres",
            message: e.to_string(),
        }
    }

    /// The PostgreSQL ledger store. Each commit is one transaction that locks the rows it
    /// merges into (`SELECT … FOR UPDATE`).
    pub struct PostgresStore {
        client: Client,
        prefix: String,
    }

    impl core::fmt::Debug for PostgresStore {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("PostgresStore")
                .field("prefix", &self.prefix)
                .finish_non_exhaustive()
        }
    }

    impl PostgresStore {
        /// Connects (a libpq-style URL) and creates the tables `<prefix>_blocks` and
        /// `<prefix>_payouts` if missing. `prefix` must be a plain identifier
        /// (`[a-z_][a-z0-9_]*`); use one per pool, or per test.
        ///
        /// # Errors
        /// [`StoreError::Backend`] for a bad prefix or a database error.
        pub fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
            let ok = prefix
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && prefix.len() <= 40;
            if !ok {
                return Err(StoreError::Backend {
                    backend: "postgres",
                    message: format!("bad table prefix {prefix:?}"),
                });
            }
            let mut client = Client::connect(url, NoTls).map_err(be)?;
            client
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {prefix}_blocks (hash BYTEA PRIMARY KEY, record TEXT NOT NULL);
                     CREATE TABLE IF NOT EXISTS {prefix}_payouts (txid BYTEA PRIMARY KEY, record TEXT NOT NULL);"
                ))
                .map_err(be)?;
            Ok(Self {
                client,
                prefix: prefix.to_string(),
            })
        }

        /// Drops this store's tables (for tests).
        ///
        /// # Errors
        /// A database error.
        pub fn drop_tables(&mut self) -> Result<(), StoreError> {
            let p = &self.prefix;
            self.client
                .batch_execute(&format!(
                    "DROP TABLE IF EXISTS {p}_blocks; DROP TABLE IF EXISTS {p}_payouts;"
                ))
                .map_err(be)
        }
    }

    impl Store for PostgresStore {
        fn load(&mut self) -> Result<ChangeSet, StoreError> {
            let p = self.prefix.clone();
            let mut tx = self.client.transaction().map_err(be)?;
            let mut cs = ChangeSet::default();
            for row in tx
                .query(&format!("SELECT hash, record FROM {p}_blocks"), &[])
                .map_err(be)?
            {
                let k: Vec<u8> = row.try_get(0).map_err(be)?;
                let v: String = row.try_get(1).map_err(be)?;
                let h = BlockHash::from_byte_array(key_array(&k)?);
                cs.blocks
                    .insert(h, decode_block(&h.to_string(), v.as_bytes())?);
            }
            for row in tx
                .query(&format!("SELECT txid, record FROM {p}_payouts"), &[])
                .map_err(be)?
            {
                let k: Vec<u8> = row.try_get(0).map_err(be)?;
                let v: String = row.try_get(1).map_err(be)?;
                let t = Txid::from_byte_array(key_array(&k)?);
                cs.payouts
                    .insert(t, decode_payout(&t.to_string(), v.as_bytes())?);
            }
            tx.commit().map_err(be)?;
            Ok(cs)
        }

        fn commit(&mut self, changeset: &ChangeSet) -> Result<(), StoreError> {
            let p = self.prefix.clone();
            let mut tx = self.client.transaction().map_err(be)?;
            let sel_b = format!("SELECT record FROM {p}_blocks WHERE hash = $1 FOR UPDATE");
            let up_b = format!(
                "INSERT INTO {p}_blocks (hash, record) VALUES ($1, $2) \
                 ON CONFLICT (hash) DO UPDATE SET record = EXCLUDED.record"
            );
            for (h, b) in &changeset.blocks {
                let k = block_key(h).to_vec();
                let merged = match tx.query_opt(&sel_b, &[&k]).map_err(be)? {
                    Some(row) => {
                        let v: String = row.try_get(0).map_err(be)?;
                        merge_block(*h, &decode_block(&h.to_string(), v.as_bytes())?, b)?
                    }
                    None => b.clone(),
                };
                let rec = String::from_utf8(encode_block(&merged)).map_err(be)?;
                tx.execute(&up_b, &[&k, &rec]).map_err(be)?;
            }
            let sel_p = format!("SELECT record FROM {p}_payouts WHERE txid = $1 FOR UPDATE");
            let up_p = format!(
                "INSERT INTO {p}_payouts (txid, record) VALUES ($1, $2) \
                 ON CONFLICT (txid) DO UPDATE SET record = EXCLUDED.record"
            );
            for (t, pr) in &changeset.payouts {
                let k = txid_key(t).to_vec();
                let merged = match tx.query_opt(&sel_p, &[&k]).map_err(be)? {
                    Some(row) => {
                        let v: String = row.try_get(0).map_err(be)?;
                        merge_payout(*t, &decode_payout(&t.to_string(), v.as_bytes())?, pr)?
                    }
                    None => pr.clone(),
                };
                let rec = String::from_utf8(encode_payout(&merged)).map_err(be)?;
                tx.execute(&up_p, &[&k, &rec]).map_err(be)?;
            }
            // An error above drops `tx`, which rolls it back.
            tx.commit().map_err(be)
        }
    }
}
