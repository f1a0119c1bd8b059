//! btq-index benchmarks: initial index throughput (tx/s and MB/s) in memory and durable redb
//! on a synthetic Lithium-heavy chain, and balance/history query latency (median, p99) with
//! 1,000,000 indexed transactions.
//!
//! `BTQ_BENCH_QUERY_TXS` overrides the size of the query index (default 1,000,000);
//! `BTQ_BENCH_INDEX=throughput|queries` runs one half.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::semicolon_if_nothing_returned,
    missing_docs,
    reason = "bench code"
)]

use std::time::{Duration, Instant};

use btq_core::block::Block;
use btq_core::hash::BlockHash;
use btq_index::driver::{BlockSource, SyncOptions, Syncer};
use btq_index::testkit::ChainBuilder;
use btq_index::{BlockRef, ChainSync, Indexer, MemoryStore, RedbStore, ScriptHash, Store, query};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Serves pre-encoded blocks from memory (each block's bytes handed out as a fresh buffer, as
/// a node's RPC answer would be).
struct Blocks<'a> {
    raw: &'a [(BlockHash, Vec<u8>)],
}

impl BlockSource for Blocks<'_> {
    type Error = std::convert::Infallible;
    fn tip(&mut self) -> Result<BlockRef, Self::Error> {
        let (hash, _) = self.raw.last().unwrap();
        Ok(BlockRef {
            height: (self.raw.len() - 1) as u32,
            hash: *hash,
        })
    }
    fn block_hash(&mut self, h: u32) -> Result<Option<BlockHash>, Self::Error> {
        Ok(self.raw.get(h as usize).map(|x| x.0))
    }
    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>, Self::Error> {
        Ok(self
            .raw
            .iter()
            .rev()
            .find(|x| x.0 == *hash)
            .unwrap()
            .1
            .clone())
    }
}

fn chain(blocks: usize, txs: usize, lithium: bool, seed: u64) -> Vec<Block> {
    let mut c = ChainBuilder::new(seed, 50_000);
    if lithium {
        c = c.with_lithium_witnesses();
    }
    for _ in 0..blocks {
        c.push_block(txs);
    }
    c.blocks().to_vec()
}

/// Encodes the chain once, outside the measured time.
fn encode(blocks: &[Block]) -> Vec<(BlockHash, Vec<u8>)> {
    blocks
        .iter()
        .map(|b| (b.block_hash(), btq_core::encoding::encode_to_vec(b)))
        .collect()
}

fn index<S: Store>(store: &S, raw: &[(BlockHash, Vec<u8>)], batch: u32) {
    let opts = SyncOptions {
        batch_blocks: batch,
        ..SyncOptions::default()
    };
    let mut s = Syncer::new(
        store,
        Blocks { raw },
        ChainSync::new(Indexer::default()),
        opts,
    );
    s.sync_to_tip(&mut |_| {}).unwrap();
}

fn throughput(c: &mut Criterion) {
    // Blocks of ~250 transactions with Lithium-sized witnesses (~2 MB blocks): 120 blocks
    // (~30,000 transactions, the figure of earlier runs) and 360 blocks (~90,000), where the
    // pipelined commits reach a steady state. Durable runs commit (fsync) every third of the
    // chain, so one batch is written while the next is indexed.
    for (len, batch) in [(120usize, 40u32), (360, 120)] {
        let blocks = chain(len, 250, true, 1);
        let txs: u64 = blocks.iter().map(|b| b.txdata.len() as u64).sum();
        let bytes: u64 = blocks.iter().map(|b| b.total_size() as u64).sum();
        let raw = encode(&blocks);
        drop(blocks);
        eprintln!(
            "throughput chain: {} blocks, {txs} txs, {:.1} MB",
            raw.len(),
            bytes as f64 / 1e6
        );
        for (unit, tp) in [
            ("tx", Throughput::Elements(txs)),
            ("bytes", Throughput::Bytes(bytes)),
        ] {
            let mut g = c.benchmark_group(format!("index_initial_{unit}_{len}_blocks"));
            g.sample_size(10)
                .measurement_time(Duration::from_secs(8))
                .throughput(tp);
            g.bench_function("memory", |b| {
                b.iter(|| index(&MemoryStore::new(), &raw, batch))
            });
            g.bench_function(format!("redb_durable_batch{batch}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let dir = tempfile::tempdir().unwrap();
                        let store = RedbStore::open(dir.path().join("b.redb")).unwrap();
                        let t = Instant::now();
                        index(&store, &raw, batch);
                        total += t.elapsed();
                    }
                    total
                });
            });
            g.finish();
        }
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn queries(c: &mut Criterion) {
    let target: u64 = std::env::var("BTQ_BENCH_QUERY_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let per_block = 1000usize;
    let n_blocks = (target as usize).div_ceil(per_block);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.redb");
    let mut store = RedbStore::open(&path).unwrap();
    store.set_durable(false);
    let t = Instant::now();
    let mut builder = ChainBuilder::new(9, 50_000);
    let ix = Indexer::default();
    let mut total_txs = 0u64;
    // Build and index in chunks so the whole chain never sits in memory.
    while (builder.next_height() as usize) < n_blocks {
        let start = builder.next_height() as usize;
        builder.forget_blocks();
        for _ in 0..50.min(n_blocks - start) {
            builder.push_block(per_block);
        }
        let mut staged = btq_index::ChangeSet::default();
        for b in builder.blocks() {
            total_txs += b.txdata.len() as u64;
            let snap = store.snapshot().unwrap();
            let cs = ix
                .apply_block(&btq_index::Overlay::new(&snap, &staged), b)
                .unwrap();
            btq_index::Merge::merge(&mut staged, cs);
        }
        store.commit(&staged).unwrap();
    }
    eprintln!(
        "query index: {total_txs} txs in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    // Queried as `btqkit index serve` does: read-only beside a writer that shares the file.
    drop(store);
    let _writer = RedbStore::open_shared(&path).unwrap();
    let store = RedbStore::open_read_only(&path).unwrap();
    let snap = store.snapshot().unwrap();
    let scripts: Vec<ScriptHash> = (0..50_000u64)
        .map(|s| {
            ScriptHash::of(btq_index::testkit::script_of_kind(s, s.wrapping_mul(7919)).as_bytes())
        })
        .filter(|sh| query::script_stats(&snap, sh).unwrap().tx_count > 0)
        .collect();
    drop(snap);
    // Median and p99 over 20,000 queries, each on a fresh snapshot (as the HTTP API does).
    for (name, f) in [
        (
            "balance",
            &(|sh: &ScriptHash| {
                query::balance(&store.snapshot().unwrap(), sh).unwrap();
            }) as &dyn Fn(&ScriptHash),
        ),
        ("history_page25", &|sh: &ScriptHash| {
            query::history(&store.snapshot().unwrap(), sh, None, 25).unwrap();
        }),
    ] {
        let mut lat: Vec<Duration> = (0..20_000)
            .map(|i| {
                let sh = &scripts[(i * 7919) % scripts.len()];
                let t = Instant::now();
                f(sh);
                t.elapsed()
            })
            .collect();
        eprintln!(
            "{name}: median {:?}, p99 {:?} ({total_txs} indexed txs)",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        );
    }
    let mut g = c.benchmark_group("query_1m");
    let mut i = 0usize;
    g.bench_function("balance", |b| {
        b.iter(|| {
            i = i.wrapping_add(7919);
            query::balance(&store.snapshot().unwrap(), &scripts[i % scripts.len()]).unwrap()
        });
    });
    g.bench_function("history_page25", |b| {
        b.iter(|| {
            i = i.wrapping_add(7919);
            query::history(
                &store.snapshot().unwrap(),
                &scripts[i % scripts.len()],
                None,
                25,
            )
            .unwrap()
        });
    });
    g.finish();
}

/// `BTQ_BENCH_INDEX=throughput` or `=queries` runs one half (the query index takes minutes to
/// build whatever criterion filter is given).
fn selected(c: &mut Criterion) {
    let only = std::env::var("BTQ_BENCH_INDEX").unwrap_or_default();
    if only != "queries" {
        throughput(c);
    }
    if only != "throughput" {
        queries(c);
    }
}

criterion_group!(benches, selected);
criterion_main!(benches);
