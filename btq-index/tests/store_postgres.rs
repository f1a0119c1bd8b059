//! The conformance and concurrency suites on PostgreSQL. Needs a server: set
//! `BTQ_TEST_POSTGRES_URL` (e.g. `host=127.0.0.1 user=postgres password=postgres`); skipped
//! with a notice otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::double_ended_iterator_last,
    reason = "test code"
)]
#![cfg(feature = "backend-postgres")]
mod common;

use btq_index::PostgresStore;

fn url() -> Option<String> {
    match std::env::var("BTQ_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("NOTICE: BTQ_TEST_POSTGRES_URL is not set; PostgreSQL store tests skipped");
            None
        }
    }
}

#[test]
fn postgres_store_conformance() {
    let Some(url) = url() else { return };
    let mut n = 0;
    common::conformance(&mut || {
        n += 1;
        let schema = format!("btq_conf_{}_{n}", std::process::id());
        PostgresStore::drop_schema(&url, &schema).unwrap();
        PostgresStore::connect(&url, &schema).unwrap()
    });
}

#[test]
fn postgres_readers_never_see_a_half_applied_block() {
    let Some(url) = url() else { return };
    let schema = format!("btq_conc_{}", std::process::id());
    PostgresStore::drop_schema(&url, &schema).unwrap();
    common::hammer(&PostgresStore::connect(&url, &schema).unwrap());
}
