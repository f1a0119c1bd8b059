//! Read access to one consistent state of the index.

use thiserror::Error;

use crate::changeset::ChangeSet;
use crate::schema::{BlockRef, CorruptRecordError, Table};

/// An error of a store backend or of the data it holds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, connection, transaction).
    #[error("{backend} {op} failed: {detail}")]
    Backend {
        /// The backend.
        backend: &'static str,
        /// The operation.
        op: &'static str,
        /// The backend's message.
        detail: String,
    },
    /// A changeset computed against one tip was committed onto another: a second writer, or a
    /// replay of a changeset that already committed.
    #[error("tip mismatch: changeset expects {expected:?}, store is at {found:?}")]
    TipMismatch {
        /// The changeset's parent.
        expected: Option<BlockRef>,
        /// The store's tip.
        found: Option<BlockRef>,
    },
    /// A stored record does not decode.
    #[error(transparent)]
    Corrupt(#[from] CorruptRecordError),
}

impl StoreError {
    pub(crate) fn backend(
        backend: &'static str,
        op: &'static str,
        e: impl core::fmt::Display,
    ) -> Self {
        Self::Backend {
            backend,
            op,
            detail: e.to_string(),
        }
    }
}

/// Rows returned by a scan: `(key, value)` in scan order.
pub type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

/// Scan direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending key order.
    Forward,
    /// Descending key order.
    Reverse,
}

/// One committed state of the index (a snapshot), or a snapshot with staged changes on top.
///
/// All reads through one value see the same state: a balance and the history it came from
/// always agree.
pub trait ReadView {
    /// Returns the value of `key` in `table`.
    ///
    /// # Errors
    /// A backend failure.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Calls `f` with the value of `key` in `table` if there is one, and returns whether there
    /// was. Backends that can lend the stored bytes override it to save a copy.
    ///
    /// # Errors
    /// A backend failure.
    fn get_with(
        &self,
        table: Table,
        key: &[u8],
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, StoreError> {
        Ok(match self.get(table, key)? {
            Some(v) => {
                f(&v);
                true
            }
            None => false,
        })
    }

    /// Returns up to `limit` rows with `start <= key < end` (`end = None`: no upper bound) in
    /// `dir` order.
    ///
    /// # Errors
    /// A backend failure.
    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        dir: Direction,
        limit: usize,
    ) -> Result<KeyValues, StoreError>;
}

impl<T: ReadView + ?Sized> ReadView for &T {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(table, key)
    }
    fn get_with(
        &self,
        table: Table,
        key: &[u8],
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, StoreError> {
        (**self).get_with(table, key, f)
    }
    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        dir: Direction,
        limit: usize,
    ) -> Result<KeyValues, StoreError> {
        (**self).scan(table, start, end, dir, limit)
    }
}

/// A view of `base` with `staged` (not yet committed) rows on top: how the driver indexes a
/// batch of blocks before committing them together.
#[derive(Debug)]
pub struct Overlay<'a, V: ?Sized> {
    base: &'a V,
    staged: &'a ChangeSet,
}

impl<'a, V: ReadView + ?Sized> Overlay<'a, V> {
    /// Layers `staged` over `base`.
    pub const fn new(base: &'a V, staged: &'a ChangeSet) -> Self {
        Self { base, staged }
    }
}

impl<V: ReadView + ?Sized> ReadView for Overlay<'_, V> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.staged.get(table, key) {
            Some(v) => Ok(v.map(<[u8]>::to_vec)),
            None => self.base.get(table, key),
        }
    }

    fn get_with(
        &self,
        table: Table,
        key: &[u8],
        f: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, StoreError> {
        match self.staged.get(table, key) {
            Some(Some(v)) => {
                f(v);
                Ok(true)
            }
            Some(None) => Ok(false),
            None => self.base.get_with(table, key, f),
        }
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        dir: Direction,
        limit: usize,
    ) -> Result<KeyValues, StoreError> {
        let in_range = |k: &[u8]| k >= start && end.is_none_or(|e| k < e);
        let staged: Vec<(&[u8], Option<&[u8]>)> = self
            .staged
            .table_rows(table)
            .into_iter()
            .filter(|(k, _)| in_range(k))
            .collect();
        // Staged deletes can hide at most `staged.len()` base rows.
        let base = self
            .base
            .scan(table, start, end, dir, limit.saturating_add(staged.len()))?;
        let mut merged: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = base.into_iter().collect();
        for (k, v) in staged {
            match v {
                Some(v) => merged.insert(k.to_vec(), v.to_vec()),
                None => merged.remove(k),
            };
        }
        let out: Vec<_> = match dir {
            Direction::Forward => merged.into_iter().take(limit).collect(),
            Direction::Reverse => merged.into_iter().rev().take(limit).collect(),
        };
        Ok(out)
    }
}
