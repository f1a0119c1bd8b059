//! The conformance suite on the in-memory store.
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
fn memory_store_conformance() {
    common::conformance(&mut btq_index::MemoryStore::new);
}
