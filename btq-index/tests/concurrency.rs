//! Readers hammer balance + history while the writer applies and undoes blocks: every
//! observed (tip, balance, history) triple equals the state at some committed tip, never a
//! state between two commits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::double_ended_iterator_last,
    reason = "test code"
)]
mod common;

#[test]
fn memory_readers_never_see_a_half_applied_block() {
    common::hammer(&btq_index::MemoryStore::new());
}

#[cfg(feature = "backend-redb")]
#[test]
fn redb_readers_never_see_a_half_applied_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = btq_index::RedbStore::open(dir.path().join("c.redb")).unwrap();
    store.set_durable(false);
    common::hammer(&store);
}
