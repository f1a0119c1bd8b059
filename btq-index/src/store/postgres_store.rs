//! The PostgreSQL store: one `(k bytea primary key, v bytea)` table per logical table in a
//! schema of its own; a commit is one SQL transaction that checks and moves the tip row
//! (`SELECT … FOR UPDATE`), so concurrent writers serialize and a stale changeset is refused.
//! Snapshots are `REPEATABLE READ READ ONLY` transactions: every read of one snapshot sees the
//! same committed state (on the primary or on a streaming replica).

use std::sync::{Mutex, MutexGuard};

use postgres::{Client, NoTls};

use crate::changeset::ChangeSet;
use crate::schema::{TIP_KEY, Table, decode_tip};
use crate::store::{Store, check_parent};
use crate::view::{Direction, KeyValues, ReadView, StoreError};

fn e(op: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
    move |x| StoreError::backend("postgres", op, x)
}

/// Most idle connections kept for snapshots.
pub(crate) const MAX_IDLE_CONNECTIONS: usize = 16;

/// A PostgreSQL-backed store.
pub struct PostgresStore {
    url: String,
    schema: String,
    writer: Mutex<Client>,
    idle: Mutex<Vec<Client>>,
}

impl core::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
}

impl PostgresStore {
    /// Connects to `url` (a libpq-style connection string or URL) and creates the schema
    /// `schema` (lower-case letters, digits and `_`) and its tables if missing.
    ///
    /// # Errors
    /// A bad schema name, or a connection or SQL failure.
    pub fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::backend(
                "postgres",
                "connect",
                "invalid schema name",
            ));
        }
        let s = Self {
            url: url.to_owned(),
            schema: schema.to_owned(),
            writer: Mutex::new(Client::connect(url, NoTls).map_err(e("connect"))?),
            idle: Mutex::new(Vec::new()),
        };
        let mut sql = format!("CREATE SCHEMA IF NOT EXISTS {schema};");
        for t in Table::ALL {
            sql.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {schema}.{} (k bytea PRIMARY KEY, v bytea NOT NULL);",
                t.name()
            ));
        }
        s.writer()?
            .batch_execute(&sql)
            .map_err(e("create tables"))?;
        Ok(s)
    }

    /// Drops the schema and everything in it (tests, reindex from scratch).
    ///
    /// # Errors
    /// A SQL failure.
    pub fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::backend(
                "postgres",
                "drop",
                "invalid schema name",
            ));
        }
        let mut c = Client::connect(url, NoTls).map_err(e("connect"))?;
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .map_err(e("drop schema"))
    }

    fn writer(&self) -> Result<MutexGuard<'_, Client>, StoreError> {
        self.writer
            .lock()
            .map_err(|_| StoreError::backend("postgres", "lock", "poisoned"))
    }

    fn table(&self, t: Table) -> String {
        format!("{}.{}", self.schema, t.name())
    }
}

/// A snapshot of a [`PostgresStore`]: a read-only repeatable-read transaction on a pooled
/// connection, rolled back and returned to the pool on drop.
pub struct PostgresSnapshot<'a> {
    store: &'a PostgresStore,
    client: Option<Mutex<Client>>,
}

impl core::fmt::Debug for PostgresSnapshot<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PostgresSnapshot")
    }
}

impl Drop for PostgresSnapshot<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.client.take()
            && let Ok(mut c) = m.into_inner()
            && c.batch_execute("ROLLBACK").is_ok()
            && let Ok(mut idle) = self.store.idle.lock()
            && idle.len() < MAX_IDLE_CONNECTIONS
        {
            idle.push(c);
        }
    }
}

impl PostgresSnapshot<'_> {
    fn client(&self) -> Result<MutexGuard<'_, Client>, StoreError> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::backend("postgres", "snapshot", "closed"))?
            .lock()
            .map_err(|_| StoreError::backend("postgres", "lock", "poisoned"))
    }
}

impl ReadView for PostgresSnapshot<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = format!("SELECT v FROM {} WHERE k = $1", self.store.table(table));
        let row = self.client()?.query_opt(&sql, &[&key]).map_err(e("get"))?;
        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        dir: Direction,
        limit: usize,
    ) -> Result<KeyValues, StoreError> {
        let order = match dir {
            Direction::Forward => "ASC",
            Direction::Reverse => "DESC",
        };
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let t = self.store.table(table);
        let mut c = self.client()?;
        let rows = match end {
            Some(end) => c.query(
                &format!(
                    "SELECT k, v FROM {t} WHERE k >= $1 AND k < $2 ORDER BY k {order} LIMIT $3"
                ),
                &[&start, &end, &lim],
            ),
            None => c.query(
                &format!("SELECT k, v FROM {t} WHERE k >= $1 ORDER BY k {order} LIMIT $2"),
                &[&start, &lim],
            ),
        }
        .map_err(e("scan"))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
            .collect())
    }
}

/// One table's upserted keys, their values and deleted keys.
type PerTable<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>, Vec<&'a [u8]>);

impl Store for PostgresStore {
    type Snapshot<'a> = PostgresSnapshot<'a>;

    fn snapshot(&self) -> Result<PostgresSnapshot<'_>, StoreError> {
        let pooled = self
            .idle
            .lock()
            .map_err(|_| StoreError::backend("postgres", "lock", "poisoned"))?
            .pop();
        let mut c = match pooled {
            Some(c) => c,
            None => Client::connect(&self.url, NoTls).map_err(e("connect"))?,
        };
        c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .map_err(e("begin"))?;
        // Take the snapshot now (PostgreSQL takes it at the first statement).
        c.batch_execute("SELECT 1").map_err(e("begin"))?;
        Ok(PostgresSnapshot {
            store: self,
            client: Some(Mutex::new(c)),
        })
    }

    fn commit(&self, changeset: &ChangeSet) -> Result<(), StoreError> {
        let mut c = self.writer()?;
        let mut tx = c.transaction().map_err(e("begin"))?;
        let meta = self.table(Table::Meta);
        let found = tx
            .query_opt(
                &format!("SELECT v FROM {meta} WHERE k = $1 FOR UPDATE"),
                &[&TIP_KEY],
            )
            .map_err(e("read tip"))?
            .map(|r| decode_tip(&r.get::<_, Vec<u8>>(0)))
            .transpose()?
            .map(|t| t.block);
        check_parent(found, changeset)?;
        // One pass over the rows (sorted once), split per table.
        let mut by_table: Vec<PerTable<'_>> =
            Table::ALL.iter().map(|_| Default::default()).collect();
        for (rt, k, v) in changeset.rows() {
            if let Some((put_k, put_v, del)) = by_table.get_mut(usize::from(rt.id())) {
                match v {
                    Some(v) => {
                        put_k.push(k);
                        put_v.push(v);
                    }
                    None => del.push(k),
                }
            }
        }
        for (t, (put_k, put_v, del)) in Table::ALL.into_iter().zip(by_table) {
            let name = self.table(t);
            if !del.is_empty() {
                tx.execute(&format!("DELETE FROM {name} WHERE k = ANY($1)"), &[&del])
                    .map_err(e("delete"))?;
            }
            if !put_k.is_empty() {
                tx.execute(
                    &format!(
                        "INSERT INTO {name} (k, v) SELECT * FROM UNNEST($1::bytea[], $2::bytea[]) \
                         ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
                    ),
                    &[&put_k, &put_v],
                )
                .map_err(e("upsert"))?;
            }
        }
        tx.commit().map_err(e("commit"))
    }

    fn clear(&self) -> Result<(), StoreError> {
        let names: Vec<String> = Table::ALL.iter().map(|t| self.table(*t)).collect();
        self.writer()?
            .batch_execute(&format!("TRUNCATE {}", names.join(", ")))
            .map_err(e("truncate"))
    }
}
