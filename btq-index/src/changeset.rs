//! Changesets: everything one block (or a run of blocks) changes, written in one atomic commit.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::hash::{Hash, Hasher};
use std::collections::HashMap;

use crate::schema::{BlockRef, Table};

/// Types whose values combine like sequential application (bdk's `Merge`).
pub trait Merge: Default {
    /// Folds `other`, which happened after `self`, into `self`.
    fn merge(&mut self, other: Self);

    /// Returns whether applying `self` changes nothing.
    fn is_empty(&self) -> bool;
}

/// A byte string stored inline up to `N` bytes (no allocation), on the heap beyond.
///
/// Almost every key and record of the index is a few dozen bytes: staging a row then costs no
/// allocation.
#[derive(Clone)]
pub(crate) enum SmallBytes<const N: usize> {
    Inline(u8, [u8; N]),
    Heap(Box<[u8]>),
}

impl<const N: usize> SmallBytes<N> {
    pub(crate) fn new(b: &[u8]) -> Self {
        if let Ok(len) = u8::try_from(b.len())
            && b.len() <= N
        {
            let mut buf = [0u8; N];
            if let Some(dst) = buf.get_mut(..b.len()) {
                dst.copy_from_slice(b);
                return Self::Inline(len, buf);
            }
        }
        Self::Heap(b.into())
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline(len, buf) => buf.get(..usize::from(*len)).unwrap_or_default(),
            Self::Heap(b) => b,
        }
    }
}

impl<const N: usize> From<Vec<u8>> for SmallBytes<N> {
    fn from(v: Vec<u8>) -> Self {
        if v.len() <= N {
            Self::new(&v)
        } else {
            Self::Heap(v.into_boxed_slice())
        }
    }
}

impl<const N: usize> Borrow<[u8]> for SmallBytes<N> {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl<const N: usize> PartialEq for SmallBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> Eq for SmallBytes<N> {}

impl<const N: usize> PartialOrd for SmallBytes<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for SmallBytes<N> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl<const N: usize> Hash for SmallBytes<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl<const N: usize> core::fmt::Debug for SmallBytes<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex::encode(self.as_slice()))
    }
}

/// A row key: every fixed-layout key (at most 72 bytes) is inline.
pub(crate) type Key = SmallBytes<72>;
/// A row value: every record but headers, long scripts and undo records is inline.
pub(crate) type Val = SmallBytes<56>;

/// One staged row: its new value (`None`: deleted) and whether it may exist in the state the
/// changeset was computed against (`false`: it certainly does not, so a delete is a no-op).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) value: Option<Val>,
    pub(crate) may_exist: bool,
    /// The block (sequence number within the changeset) that last touched the row: the
    /// indexer journals a row's previous value the first time each block touches it.
    pub(crate) stamp: u32,
}

impl Row {
    pub(crate) const fn new(value: Option<Val>, may_exist: bool) -> Self {
        Self {
            value,
            may_exist,
            stamp: 0,
        }
    }
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.may_exist == other.may_exist
    }
}

impl Eq for Row {}

impl Row {
    /// Returns whether committing the row changes nothing: the delete of a row that was created
    /// and deleted again within the changeset.
    const fn is_noop(&self) -> bool {
        self.value.is_none() && !self.may_exist
    }
}

pub(crate) type Rows = HashMap<(Table, Key), Row, RowHash>;

/// The hasher of staged rows: a folded multiply over 8-byte words (keys are mostly hashes
/// already), seeded per process like std's `RandomState` so that chain data cannot be ground
/// into collisions. Iteration order never reaches a store or a record: rows are sorted first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowHash {
    seed: u64,
}

impl Default for RowHash {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| {
            use core::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
        });
        Self { seed }
    }
}

impl core::hash::BuildHasher for RowHash {
    type Hasher = RowHasher;
    fn build_hasher(&self) -> RowHasher {
        RowHasher(self.seed)
    }
}

/// See [`RowHash`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowHasher(u64);

const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

#[allow(
    clippy::cast_possible_truncation,
    reason = "folding the 128-bit product into 64 bits"
)]
const fn folded_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

impl Hasher for RowHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.0 = folded_mul(self.0 ^ u64::from_le_bytes(a), MIX);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut a = [0u8; 8];
            if let Some(d) = a.get_mut(..rest.len()) {
                d.copy_from_slice(rest);
            }
            self.0 = folded_mul(self.0 ^ u64::from_le_bytes(a), MIX ^ rest.len() as u64);
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = folded_mul(self.0 ^ n, MIX);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
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
/// provided `b` was computed on top of `a`. Rows are hashed (no per-row allocation for keys and
/// records up to a few dozen bytes) and sorted only when a store iterates them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    pub(crate) parent: Option<BlockRef>,
    pub(crate) tip: Option<BlockRef>,
    pub(crate) rows: Rows,
    /// Blocks staged into this changeset in place (see [`Row::stamp`]); not part of equality.
    pub(crate) seq: Seq,
}

/// A counter that every changeset compares equal on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seq(pub(crate) u32);

impl PartialEq for Seq {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Seq {}

impl ChangeSet {
    /// Returns an empty changeset with room for `rows` rows (the driver sizes a batch like the
    /// previous one, so staging never rehashes).
    pub(crate) fn with_capacity(rows: usize) -> Self {
        Self {
            rows: Rows::with_capacity_and_hasher(rows, RowHash::default()),
            ..Self::default()
        }
    }

    /// Returns the tip the changeset was computed against (`None`: the empty index).
    pub const fn parent(&self) -> Option<BlockRef> {
        self.parent
    }

    /// Returns the tip after the changeset (`None`: the empty index).
    pub const fn tip(&self) -> Option<BlockRef> {
        self.tip
    }

    /// Returns the number of rows staged (written or deleted).
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// Iterates the rows to write in (table, key) order; `None` deletes the row. Rows created
    /// and deleted again within the changeset are left out (they change nothing).
    pub fn rows(&self) -> impl Iterator<Item = (Table, &[u8], Option<&[u8]>)> {
        let mut v: Vec<(&(Table, Key), &Row)> =
            self.rows.iter().filter(|(_, r)| !r.is_noop()).collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v.into_iter()
            .map(|((t, k), r)| (*t, k.as_slice(), r.value.as_ref().map(Val::as_slice)))
    }

    /// Returns the rows of one table in key order (deletes as `None`).
    pub(crate) fn table_rows(&self, table: Table) -> Vec<(&[u8], Option<&[u8]>)> {
        let mut v: Vec<(&[u8], Option<&[u8]>)> = self
            .rows
            .iter()
            .filter(|((t, _), _)| *t == table)
            .map(|((_, k), r)| (k.as_slice(), r.value.as_ref().map(Val::as_slice)))
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Returns the staged value of a row: `None` if untouched, `Some(None)` if deleted.
    pub fn get(&self, table: Table, key: &[u8]) -> Option<Option<&[u8]>> {
        self.rows
            .get(&(table, Key::new(key)))
            .map(|r| r.value.as_ref().map(Val::as_slice))
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
        self.rows.reserve(other.rows.len());
        for (k, row) in other.rows {
            match self.rows.entry(k) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    // Later value wins; whether the row existed before is `self`'s knowledge.
                    e.get_mut().value = row.value;
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Row { stamp: 0, ..row });
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bytes() {
        for n in [0usize, 1, 56, 57, 72, 73, 300] {
            let b: Vec<u8> = (0..n).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let k = Key::new(&b);
            assert_eq!(k.as_slice(), b.as_slice());
            assert_eq!(Val::from(b.clone()).as_slice(), b.as_slice());
            assert_eq!(k, Key::from(b));
        }
        assert!(Key::new(&[1]) < Key::new(&[1, 0]));
        assert!(Key::new(&[2]) > Key::new(&[1; 100]));
    }
}
