//! Storage backends behind one [`Store`] trait.
//!
//! A store holds the logical [`Table`](crate::Table)s as byte rows. It offers snapshots (one
//! committed state, never a partial commit) and commits a [`ChangeSet`] in one transaction,
//! compare-and-swapping the tip.

use crate::changeset::ChangeSet;
use crate::schema::BlockRef;
use crate::view::{ReadView, StoreError};

mod memory;
pub use memory::MemoryStore;

#[cfg(feature = "backend-redb")]
mod redb_store;
#[cfg(feature = "backend-redb")]
pub use redb_store::RedbStore;

#[cfg(feature = "backend-postgres")]
mod postgres_store;
#[cfg(feature = "backend-postgres")]
pub use postgres_store::PostgresStore;

/// A storage backend.
///
/// Guarantees every implementation gives (checked by the shared conformance tests):
/// - [`Store::commit`] writes every row of the changeset and its new tip in one atomic
///   transaction, or nothing; it fails with [`StoreError::TipMismatch`] unless the store's tip
///   equals [`ChangeSet::parent`].
/// - A [`Store::snapshot`] sees one committed state for as long as it lives, whatever commits
///   happen meanwhile.
pub trait Store: Send + Sync {
    /// A consistent read view.
    type Snapshot<'a>: ReadView
    where
        Self: 'a;

    /// Opens a snapshot of the last committed state.
    ///
    /// # Errors
    /// A backend failure.
    fn snapshot(&self) -> Result<Self::Snapshot<'_>, StoreError>;

    /// Commits `changeset` atomically if the tip equals its parent.
    ///
    /// # Errors
    /// [`StoreError::TipMismatch`] or a backend failure; nothing is written then.
    fn commit(&self, changeset: &ChangeSet) -> Result<(), StoreError>;

    /// Deletes every row (used to resync after a reorg deeper than the undo data).
    ///
    /// # Errors
    /// A backend failure.
    fn clear(&self) -> Result<(), StoreError>;
}

pub(crate) fn check_parent(
    found: Option<BlockRef>,
    changeset: &ChangeSet,
) -> Result<(), StoreError> {
    if found == changeset.parent() {
        Ok(())
    } else {
        Err(StoreError::TipMismatch {
            expected: changeset.parent(),
            found,
        })
    }
}
