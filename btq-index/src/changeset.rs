//! Changesets: everything one block (or a run of blocks) changes, written in one atomic commit.

use std::collections::BTreeMap;

use crate::schema::{BlockRef, Table};

/// Types whose values combine like sequential application (bdk's `Merge`).
pub trait Merge: Default {
    /// Folds `other`, which happened after `self`, into `self`.
    fn merge(&mut self, other: Self);

    /// Returns whether applying `self` changes nothing.
    fn is_empty(&self) -> bool;
}

/// The rows a block apply or undo writes, with the tip it was computed against and the tip it
/// produces.
///
/// Row values are absolute (not deltas): they were computed from the committed state at
/// [`ChangeSet::parent`]. A store therefore commits a changeset only if its current tip equals
/// `parent` (a compare-and-swap), so a changeset can never be applied to the wrong state, and a
/// replay after a crash is refused instead of double counting. The new tip is one of the rows,
/// so rows and tip become visible together or not at all.
///
/// [`Merge`] is "later wins" per row: `a.merge(b)` then commit equals committing `a` then `b`,
/// provided `b` was computed on top of `a`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    pub(crate) parent: Option<BlockRef>,
    pub(crate) tip: Option<BlockRef>,
    pub(crate) rows: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
}

impl ChangeSet {
    /// Returns the tip the changeset was computed against (`None`: the empty index).
    pub const fn parent(&self) -> Option<BlockRef> {
        self.parent
    }

    /// Returns the tip after the changeset (`None`: the empty index).
    pub const fn tip(&self) -> Option<BlockRef> {
        self.tip
    }

    /// Returns the number of rows written or deleted.
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// Iterates the rows in (table, key) order; `None` deletes the row.
    pub fn rows(&self) -> impl Iterator<Item = (Table, &[u8], Option<&[u8]>)> {
        self.rows
            .iter()
            .map(|((t, k), v)| (*t, k.as_slice(), v.as_deref()))
    }

    /// Returns the staged value of a row: `None` if untouched, `Some(None)` if deleted.
    pub fn get(&self, table: Table, key: &[u8]) -> Option<Option<&[u8]>> {
        // BTreeMap<(Table, Vec<u8>)> cannot be queried by a borrowed tuple; build the key.
        self.rows.get(&(table, key.to_vec())).map(|v| v.as_deref())
    }
}

impl Merge for ChangeSet {
    fn merge(&mut self, other: Self) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other;
            return;
        }
        debug_assert_eq!(
            self.tip, other.parent,
            "merged changesets must be consecutive"
        );
        self.tip = other.tip;
        self.rows.extend(other.rows);
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
