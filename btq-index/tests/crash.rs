//! Crash safety: a real sync process is killed with SIGKILL at random points (25 times) and
//! restarted; after every kill the store holds exactly the state of a fresh index at its tip,
//! and at the end it equals a fresh index of the whole chain (checksum of all tables).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::double_ended_iterator_last,
    reason = "test code"
)]
#![cfg(all(unix, feature = "backend-redb"))]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use btq_index::driver::DirSource;
use btq_index::testkit::Rng;
use btq_index::{Indexer, MemoryStore, ReadView, RedbStore, Store, Table, query};

fn fresh_store(blocks: &[btq_core::block::Block]) -> MemoryStore {
    let store = MemoryStore::new();
    let ix = Indexer::default();
    for b in blocks {
        let cs = ix.apply_block(&store.snapshot().unwrap(), b).unwrap();
        store.commit(&cs).unwrap();
    }
    store
}

fn fresh_default(blocks: &[btq_core::block::Block]) -> [u8; 32] {
    common::checksum(&fresh_store(blocks))
}

#[test]
fn sigkill_at_random_points_then_restart_equals_fresh_index() {
    let dir = tempfile::tempdir().unwrap();
    let blocks_dir = dir.path().join("blocks");
    std::fs::create_dir(&blocks_dir).unwrap();
    let chain = common::chain(42, 300, 25);
    for (h, b) in chain.blocks().iter().enumerate() {
        std::fs::write(
            DirSource::path_of(&blocks_dir, h as u32),
            btq_core::encoding::encode_to_vec(b),
        )
        .unwrap();
    }
    let db = dir.path().join("index.redb");
    let bin = env!("CARGO_BIN_EXE_btq-index-dirsync");
    let mut rng = Rng::new(0xC0FFEE);
    let mut kills = 0;
    let mut last_tip: i64 = -1;
    let started = Instant::now();
    while kills < 25 {
        let batch = 1 + rng.below(4);
        let mut child = Command::new(bin)
            .args([
                blocks_dir.to_str().unwrap(),
                db.to_str().unwrap(),
                &batch.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
        if child.try_wait().unwrap().is_some() {
            // Finished before the kill: the chain is fully indexed; start over on a new file
            // only if we still need kills, so that every kill lands mid-sync.
            let tip = tip_of(&db);
            assert_eq!(tip, 299);
            check_store(&db, &chain);
            std::fs::remove_file(&db).unwrap();
            last_tip = -1;
            continue;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let tip = tip_of(&db);
        assert!(tip >= last_tip, "tip went backwards: {tip} < {last_tip}");
        last_tip = tip;
        eprintln!("kill {kills}: batch {batch}, committed tip {tip}");
        check_store(&db, &chain);
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "crash test too slow"
        );
    }
    let out = Command::new(bin)
        .args([blocks_dir.to_str().unwrap(), db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(tip_of(&db), 299);
    let store = RedbStore::open(&db).unwrap();
    assert_eq!(common::checksum(&store), fresh_default(chain.blocks()));
    common::assert_matches_model(&store.snapshot().unwrap(), chain.blocks());
}

fn tip_of(db: &std::path::Path) -> i64 {
    if !db.exists() {
        return -1;
    }
    let store = RedbStore::open(db).unwrap();
    query::tip(&store.snapshot().unwrap())
        .unwrap()
        .map_or(-1, |t| i64::from(t.block.height))
}

/// The store after a kill equals a fresh index of the chain up to its tip: every table, and
/// every undo record it may need. (A sync writes no undo record for a block so deep below the
/// node's tip, here 299, that the record would be pruned before the index reaches that tip;
/// once caught up the whole store, undo records included, equals a fresh index.)
fn check_store(db: &std::path::Path, chain: &btq_index::testkit::ChainBuilder) {
    if !db.exists() {
        return;
    }
    let store = RedbStore::open(db).unwrap();
    let tip = query::tip(&store.snapshot().unwrap()).unwrap();
    let n = tip.map_or(0, |t| t.block.height as usize + 1);
    common::assert_same_state(&store, &fresh_store(&chain.blocks()[..n]));
    let keep = Indexer::default().undo_retention();
    if let Some(t) = tip {
        let snap = store.snapshot().unwrap();
        let h0 = (t.block.height + 1).saturating_sub(keep);
        for h in h0..=t.block.height {
            let needed = h + keep > 299;
            let held = snap.get(Table::Undo, &h.to_be_bytes()).unwrap().is_some();
            assert_eq!(held, needed, "undo record of {h} at tip {}", t.block.height);
        }
    }
}

/// Two processes: a sync process writes the redb file (opened shared) while this process opens
/// it read-only and takes snapshots as fast as it can. Every snapshot equals a fresh index of
/// the chain up to the tip it shows (never a half-applied block), the reader follows the
/// writer's commits, and it cannot write.
#[test]
fn a_reader_process_follows_the_writer_and_sees_only_committed_states() {
    let dir = tempfile::tempdir().unwrap();
    let blocks_dir = dir.path().join("blocks");
    std::fs::create_dir(&blocks_dir).unwrap();
    let chain = common::chain(43, 150, 25);
    let memory = MemoryStore::new();
    let ix = Indexer::default();
    let mut sums = Vec::new();
    for (h, b) in chain.blocks().iter().enumerate() {
        std::fs::write(
            DirSource::path_of(&blocks_dir, h as u32),
            btq_core::encoding::encode_to_vec(b),
        )
        .unwrap();
        let cs = ix.apply_block(&memory.snapshot().unwrap(), b).unwrap();
        memory.commit(&cs).unwrap();
        sums.push(common::checksum(&memory));
    }
    let db = dir.path().join("index.redb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_btq-index-dirsync"))
        .args([blocks_dir.to_str().unwrap(), db.to_str().unwrap(), "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let reader = loop {
        match RedbStore::open_read_only(&db) {
            Ok(s) if s.snapshot().is_ok_and(|v| query::tip(&v).is_ok()) => break s,
            _ if started.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("read-only open: {e}"),
            Ok(_) => panic!("no tables after 60 s"),
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let finished = child.try_wait().unwrap();
        let snap = reader.snapshot().unwrap();
        if let Some(t) = query::tip(&snap).unwrap() {
            let h = t.block.height as usize;
            assert_eq!(query::checksum(&snap).unwrap(), sums[h], "snapshot at {h}");
            seen.insert(h);
        }
        if let Some(status) = finished {
            assert!(status.success());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "too slow");
    }
    // The last snapshot was taken after the writer exited: the whole chain.
    assert_eq!(seen.last(), Some(&149));
    assert!(seen.len() >= 3, "the reader followed the writer: {seen:?}");
    let err = reader.commit(&btq_index::ChangeSet::default()).unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(reader.clear().is_err());
}
