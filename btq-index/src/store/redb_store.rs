//! The embedded store: redb (copy-on-write B-trees, ACID, one writer, MVCC snapshot readers).

use std::path::Path;

use std::cell::OnceCell;

use redb::{
    ConcurrencyMode, Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase,
    ReadableTable, ReadableTableMetadata, TableDefinition,
};

use crate::changeset::ChangeSet;
use crate::schema::{TIP_KEY, Table, decode_tip};
use crate::store::{Store, check_parent};
use crate::view::{Direction, KeyValues, ReadView, StoreError};

type BytesTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;
type RangeItem<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

const fn def(t: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(t.name())
}

fn err(op: &'static str) -> impl FnOnce(redb::Error) -> StoreError {
    move |e| StoreError::backend("redb", op, e)
}

fn e<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> StoreError {
    move |x| err(op)(x.into())
}

/// A redb database file holding the index.
///
/// Each commit is one redb write transaction containing every row and the tip; with the
/// default durability it is fsynced before `commit` returns, so a crash leaves the last
/// committed tip. Snapshots are redb read transactions: they never block and never see a
/// partial commit.
///
/// One process writes. [`RedbStore::open_shared`] lets other processes open the file with
/// [`RedbStore::open_read_only`] and follow its commits (an indexer and a separate HTTP
/// server); [`RedbStore::open`] keeps the file to itself.
#[derive(Debug)]
pub struct RedbStore {
    db: Db,
    durable: bool,
}

enum Db {
    Write(Database),
    Read(redb::ReadOnlyDatabase),
}

impl core::fmt::Debug for Db {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Write(_) => "Db::Write",
            Self::Read(_) => "Db::Read",
        })
    }
}

impl RedbStore {
    /// Opens (or creates) the database at `path`, for this process alone.
    ///
    /// # Errors
    /// A redb failure (file open in another process, corrupt file, I/O).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_in(path, ConcurrencyMode::ExclusiveWriter)
    }

    /// Opens (or creates) the database at `path` as its one writer, letting other processes
    /// open it with [`RedbStore::open_read_only`] and read its commits as they happen.
    ///
    /// # Errors
    /// A redb failure (another writer has the file open, corrupt file, I/O).
    pub fn open_shared(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_in(path, ConcurrencyMode::SingleWriter)
    }

    fn open_in(path: impl AsRef<Path>, mode: ConcurrencyMode) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_concurrency_mode(mode)
            .create(path)
            .map_err(e("open"))?;
        let s = Self {
            db: Db::Write(db),
            durable: true,
        };
        s.create_tables()?;
        Ok(s)
    }

    /// Opens an existing database read-only, beside the process that writes it (which opened
    /// it with [`RedbStore::open_shared`]): snapshots see its commits as they happen.
    /// [`Store::commit`] and [`Store::clear`] fail.
    ///
    /// # Errors
    /// A redb failure: no such file, the writer opened it with [`RedbStore::open`], the file
    /// needs a repair that only a writer may do, or it holds no index yet.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .open_read_only(path)
            .map_err(e("open_read_only"))?;
        Ok(Self {
            db: Db::Read(db),
            durable: true,
        })
    }

    fn writer(&self, op: &'static str) -> Result<&Database, StoreError> {
        match &self.db {
            Db::Write(db) => Ok(db),
            Db::Read(_) => Err(StoreError::backend(
                "redb",
                op,
                "the database was opened read-only",
            )),
        }
    }

    fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        match &self.db {
            Db::Write(db) => db.begin_read(),
            Db::Read(db) => db.begin_read(),
        }
        .map_err(e("begin_read"))
    }

    /// Chooses whether commits are fsynced before returning (default `true`). With `false`
    /// commits are still atomic, but those since the last durable one are lost if the process
    /// or the machine stops (the store then restarts from an older tip; it is never
    /// half-applied). A file opened with [`RedbStore::open_shared`] only takes durable commits
    /// (redb refuses the others when processes share the file).
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    fn create_tables(&self) -> Result<(), StoreError> {
        let w = self
            .writer("create_tables")?
            .begin_write()
            .map_err(e("begin_write"))?;
        for t in Table::ALL {
            w.open_table(def(t)).map_err(e("open_table"))?;
        }
        w.commit().map_err(e("commit"))
    }
}

/// A snapshot of a [`RedbStore`]. Tables are opened on first use and kept open.
pub struct RedbSnapshot {
    tx: ReadTransaction,
    tables: [OnceCell<ReadOnlyTable<&'static [u8], &'static [u8]>>; Table::ALL.len()],
}

impl RedbSnapshot {
    fn new(tx: ReadTransaction) -> Self {
        Self {
            tx,
            tables: Default::default(),
        }
    }

    fn table(&self, t: Table) -> Result<&ReadOnlyTable<&'static [u8], &'static [u8]>, StoreError> {
        let cell = self
            .tables
            .get(usize::from(t.id()))
            .ok_or_else(|| StoreError::backend("redb", "open_table", "unknown table"))?;
        if let Some(tb) = cell.get() {
            return Ok(tb);
        }
        let tb = self.tx.open_table(def(t)).map_err(e("open_table"))?;
        Ok(cell.get_or_init(|| tb))
    }
}

impl core::fmt::Debug for RedbSnapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RedbSnapshot")
    }
}

impl ReadView for RedbSnapshot {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.table(table)?;
        Ok(t.get(key).map_err(e("get"))?.map(|v| v.value().to_vec()))
    }

    fn get_with(
        &self,
        table: Table,
        key: &[u8],
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, StoreError> {
        let t = self.table(table)?;
        Ok(match t.get(key).map_err(e("get"))? {
            Some(v) => {
                f(v.value());
                true
            }
            None => false,
        })
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        dir: Direction,
        limit: usize,
    ) -> Result<KeyValues, StoreError> {
        if end.is_some_and(|x| x <= start) || limit == 0 {
            return Ok(Vec::new());
        }
        let t = self.table(table)?;
        let r = match end {
            Some(end) => t.range::<&[u8]>(start..end),
            None => t.range::<&[u8]>(start..),
        }
        .map_err(e("range"))?;
        let mut out = Vec::new();
        let mut push = |item: RangeItem<'_>| {
            let (k, v) = item.map_err(e("range"))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
            Ok::<_, StoreError>(())
        };
        match dir {
            Direction::Forward => {
                for item in r.take(limit) {
                    push(item)?;
                }
            }
            Direction::Reverse => {
                for item in r.rev().take(limit) {
                    push(item)?;
                }
            }
        }
        Ok(out)
    }
}

impl Store for RedbStore {
    type Snapshot<'a> = RedbSnapshot;

    fn snapshot(&self) -> Result<RedbSnapshot, StoreError> {
        Ok(RedbSnapshot::new(self.begin_read()?))
    }

    fn commit(&self, changeset: &ChangeSet) -> Result<(), StoreError> {
        let mut w = self
            .writer("commit")?
            .begin_write()
            .map_err(e("begin_write"))?;
        w.set_durability(if self.durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(e("set_durability"))?;
        {
            let meta = w.open_table(def(Table::Meta)).map_err(e("open_table"))?;
            let found = match meta.get(TIP_KEY).map_err(e("get"))? {
                Some(v) => Some(decode_tip(v.value())?.block),
                None => None,
            };
            check_parent(found, changeset)?;
        }
        let mut current: Option<(Table, BytesTable<'_>)> = None;
        for (t, k, v) in changeset.rows() {
            if current.as_ref().is_none_or(|(ct, _)| *ct != t) {
                drop(current.take());
                current = Some((t, w.open_table(def(t)).map_err(e("open_table"))?));
            }
            if let Some((_, table)) = current.as_mut() {
                match v {
                    Some(v) => {
                        table.insert(k, v).map_err(e("insert"))?;
                    }
                    None => {
                        table.remove(k).map_err(e("remove"))?;
                    }
                }
            }
        }
        drop(current);
        w.commit().map_err(e("commit"))
    }

    fn clear(&self) -> Result<(), StoreError> {
        let w = self
            .writer("clear")?
            .begin_write()
            .map_err(e("begin_write"))?;
        for t in Table::ALL {
            w.delete_table(def(t)).map_err(e("delete_table"))?;
            w.open_table(def(t)).map_err(e("open_table"))?;
        }
        w.commit().map_err(e("commit"))
    }
}

impl RedbStore {
    /// Returns the number of rows per table (diagnostics).
    ///
    /// # Errors
    /// A redb failure.
    pub fn table_sizes(&self) -> Result<Vec<(Table, u64)>, StoreError> {
        let r = self.begin_read()?;
        Table::ALL
            .into_iter()
            .map(|t| {
                let tb = r.open_table(def(t)).map_err(e("open_table"))?;
                Ok((t, tb.len().map_err(e("len"))?))
            })
            .collect()
    }
}
