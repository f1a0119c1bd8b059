//! The in-memory store (tests, benchmarks, ephemeral indexes).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard};

use crate::changeset::ChangeSet;
use crate::schema::{TIP_KEY, Table, decode_tip};
use crate::store::{Store, check_parent};
use crate::view::{Direction, KeyValues, ReadView, StoreError};

type Tables = BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

/// An in-memory store. A snapshot holds a read lock, so commits wait for open snapshots: keep
/// them short.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
}

impl MemoryStore {
    /// Creates an empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A snapshot of a [`MemoryStore`].
#[derive(Debug)]
pub struct MemorySnapshot<'a>(RwLockReadGuard<'a, Tables>);

fn poisoned(op: &'static str) -> StoreError {
    StoreError::backend("memory", op, "lock poisoned")
}

impl ReadView for MemorySnapshot<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn get_with(
        &self,
        table: Table,
        key: &[u8],
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, StoreError> {
        Ok(match self.0.get(&table).and_then(|t| t.get(key)) {
            Some(v) => {
                f(v);
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
        let Some(t) = self.0.get(&table) else {
            return Ok(Vec::new());
        };
        if end.is_some_and(|e| e <= start) {
            return Ok(Vec::new());
        }
        let hi = end.map_or(Bound::Unbounded, Bound::Excluded);
        let r = t.range::<[u8], _>((Bound::Included(start), hi));
        let clone = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(match dir {
            Direction::Forward => r.take(limit).map(clone).collect(),
            Direction::Reverse => r.rev().take(limit).map(clone).collect(),
        })
    }
}

impl Store for MemoryStore {
    type Snapshot<'a> = MemorySnapshot<'a>;

    fn snapshot(&self) -> Result<MemorySnapshot<'_>, StoreError> {
        self.tables
            .read()
            .map(MemorySnapshot)
            .map_err(|_| poisoned("snapshot"))
    }

    fn commit(&self, changeset: &ChangeSet) -> Result<(), StoreError> {
        let mut g = self.tables.write().map_err(|_| poisoned("commit"))?;
        let found = match g.get(&Table::Meta).and_then(|t| t.get(TIP_KEY)) {
            Some(b) => Some(decode_tip(b)?.block),
            None => None,
        };
        check_parent(found, changeset)?;
        for (t, k, v) in changeset.rows() {
            let table = g.entry(t).or_default();
            match v {
                Some(v) => {
                    table.insert(k.to_vec(), v.to_vec());
                }
                None => {
                    table.remove(k);
                }
            }
        }
        Ok(())
    }

    fn clear(&self) -> Result<(), StoreError> {
        self.tables.write().map_err(|_| poisoned("clear"))?.clear();
        Ok(())
    }
}
