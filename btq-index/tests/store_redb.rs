//! The conformance suite on the redb store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::double_ended_iterator_last,
    reason = "test code"
)]
#![cfg(feature = "backend-redb")]
mod common;

#[test]
fn redb_store_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    common::conformance(&mut || {
        n += 1;
        btq_index::RedbStore::open(dir.path().join(format!("db{n}.redb"))).unwrap()
    });
}
