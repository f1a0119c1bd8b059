//! Shared test helpers: an in-memory node, a from-scratch recomputation model, and the store
//! conformance suite every backend runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::double_ended_iterator_last,
    dead_code,
    unreachable_pub,
    missing_docs,
    reason = "test code"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use btq_core::block::Block;
use btq_core::hash::{BlockHash, Txid};
use btq_core::tx::OutPoint;
use btq_index::driver::{BlockSource, SyncOptions, Syncer};
use btq_index::query::{self, HistoryEntry, Utxo};
use btq_index::testkit::ChainBuilder;
use btq_index::{
    BlockRef, ChainSync, ChangeSet, Config, Indexer, MemoryStore, Merge, Overlay, ReadView,
    ScriptHash, Store, StoreError,
};

/// A node holding one chain in memory.
#[derive(Debug, Clone, Default)]
pub struct MemNode {
    pub blocks: Vec<Block>,
}

impl BlockSource for MemNode {
    type Error = Infallible;
    fn tip(&mut self) -> Result<BlockRef, Infallible> {
        let b = self.blocks.last().unwrap();
        Ok(BlockRef {
            height: (self.blocks.len() - 1) as u32,
            hash: b.block_hash(),
        })
    }
    fn block_hash(&mut self, height: u32) -> Result<Option<BlockHash>, Infallible> {
        Ok(self.blocks.get(height as usize).map(Block::block_hash))
    }
    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>, Infallible> {
        let b = self
            .blocks
            .iter()
            .find(|b| b.block_hash() == *hash)
            .unwrap();
        Ok(btq_core::encoding::encode_to_vec(b))
    }
}

pub fn indexer(limit: u32) -> Indexer {
    Indexer::new(Config {
        reorg_depth_limit: limit,
        pools: vec![btq_index::Pool {
            name: "Pool A".into(),
            tags: vec!["/PoolA/".into()],
            payout_scripts: vec![],
        }],
        ..Config::default()
    })
    .unwrap()
}

/// Syncs `store` to `node` with the driver.
pub fn sync<S: Store>(store: &S, node: &MemNode, limit: u32, batch: u32) -> Option<BlockRef> {
    sync_counting_resyncs(store, node, limit, batch).0
}

/// Syncs with resync-on-deep-reorg enabled; returns the tip and the number of resyncs.
pub fn sync_counting_resyncs<S: Store>(
    store: &S,
    node: &MemNode,
    limit: u32,
    batch: u32,
) -> (Option<BlockRef>, u32) {
    let opts = SyncOptions {
        batch_blocks: batch,
        resync_on_deep_reorg: true,
        ..SyncOptions::default()
    };
    let mut s = Syncer::new(store, node.clone(), ChainSync::new(indexer(limit)), opts);
    let tip = s.sync_to_tip(&mut |_| {}).unwrap();
    (tip, s.resyncs())
}

/// Indexes `blocks` from scratch into a fresh memory store, one commit per block.
pub fn fresh(blocks: &[Block], limit: u32) -> MemoryStore {
    let store = MemoryStore::new();
    let ix = indexer(limit);
    for b in blocks {
        let cs = ix.apply_block(&store.snapshot().unwrap(), b).unwrap();
        store.commit(&cs).unwrap();
    }
    store
}

/// Asserts that `s` equals a fresh index `f` of the same chain: every table but the undo
/// records is identical, and every undo record `s` holds is identical to `f`'s, including the
/// tip's. (After a reorg to a *lower* tip, undo records pruned on the abandoned branch are not
/// resurrected, so `s` may hold fewer old ones; nothing else may differ.)
pub fn assert_same_state<S: Store, F: Store>(s: &S, f: &F) {
    let tables: Vec<btq_index::Table> = btq_index::Table::ALL
        .into_iter()
        .filter(|t| *t != btq_index::Table::Undo)
        .collect();
    let (a, b) = (s.snapshot().unwrap(), f.snapshot().unwrap());
    assert_eq!(
        query::checksum_of(&a, &tables).unwrap(),
        query::checksum_of(&b, &tables).unwrap(),
        "tables differ from a fresh index"
    );
    let all = |v: &dyn ReadView| {
        v.scan(
            btq_index::Table::Undo,
            &[],
            None,
            btq_index::Direction::Forward,
            usize::MAX,
        )
        .unwrap()
    };
    let ours = all(&a);
    let theirs: BTreeMap<Vec<u8>, Vec<u8>> = all(&b).into_iter().collect();
    for (k, v) in &ours {
        assert_eq!(theirs.get(k), Some(v), "undo record {k:?} differs");
    }
}

pub fn checksum<S: Store>(s: &S) -> [u8; 32] {
    query::checksum(&s.snapshot().unwrap()).unwrap()
}

/// What a script's state must be, recomputed naively from the blocks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScriptModel {
    pub funded: u64,
    pub spent: u64,
    pub funded_n: u64,
    pub spent_n: u64,
    pub history: Vec<HistoryEntry>, // oldest first
    pub utxos: BTreeSet<(u32, Txid, u32, u64)>,
}

#[derive(Debug, Default)]
pub struct Model {
    pub scripts: BTreeMap<ScriptHash, ScriptModel>,
    pub txs: BTreeMap<Txid, (u32, u32)>,
}

pub fn recompute(blocks: &[Block]) -> Model {
    let mut m = Model::default();
    let mut outs: BTreeMap<OutPoint, (ScriptHash, u64, u32)> = BTreeMap::new();
    for (h, b) in blocks.iter().enumerate() {
        let h = h as u32;
        for (i, tx) in b.txdata.iter().enumerate() {
            let txid = tx.txid();
            m.txs.insert(txid, (h, i as u32));
            let mut per: BTreeMap<ScriptHash, (u64, u64)> = BTreeMap::new();
            if !tx.is_coinbase() {
                for inp in &tx.input {
                    let (sh, v, ch) = outs.remove(&inp.previous_output).unwrap();
                    let s = m.scripts.entry(sh).or_default();
                    s.spent += v;
                    s.spent_n += 1;
                    s.utxos
                        .remove(&(ch, inp.previous_output.txid, inp.previous_output.vout, v));
                    per.entry(sh).or_default().1 += v;
                }
            }
            for (vout, o) in tx.output.iter().enumerate() {
                if o.script_pubkey.as_bytes().first() == Some(&0x6a) {
                    continue;
                }
                let sh = ScriptHash::of(o.script_pubkey.as_bytes());
                outs.insert(OutPoint::new(txid, vout as u32), (sh, o.value, h));
                let s = m.scripts.entry(sh).or_default();
                s.funded += o.value;
                s.funded_n += 1;
                s.utxos.insert((h, txid, vout as u32, o.value));
                per.entry(sh).or_default().0 += o.value;
            }
            for (sh, (f, sp)) in per {
                let s = m.scripts.get_mut(&sh).unwrap();
                s.history.push(HistoryEntry {
                    txid,
                    height: h,
                    index: i as u32,
                    funded: f,
                    spent: sp,
                    balance_after: s.funded - s.spent,
                });
            }
        }
    }
    m
}

/// Asserts that every script's balance, statistics, history, UTXOs and balance-at-height, and
/// every transaction position, equal the recomputation.
pub fn assert_matches_model(view: &impl ReadView, blocks: &[Block]) {
    let m = recompute(blocks);
    let tip = query::tip(view).unwrap();
    assert_eq!(
        tip.map(|t| t.block.hash),
        blocks.last().map(Block::block_hash),
        "tip"
    );
    let mut rich_total = 0u64;
    for (sh, s) in &m.scripts {
        let st = query::script_stats(view, sh).unwrap();
        assert_eq!(st.funded_txo_sum, s.funded, "funded {sh}");
        assert_eq!(st.spent_txo_sum, s.spent, "spent {sh}");
        assert_eq!(st.funded_txo_count, s.funded_n);
        assert_eq!(st.spent_txo_count, s.spent_n);
        assert_eq!(st.tx_count, s.history.len() as u64);
        let hist = query::history(view, sh, None, usize::MAX).unwrap();
        let mut expect = s.history.clone();
        expect.reverse();
        assert_eq!(hist, expect, "history {sh}");
        let utxos = query::utxos(view, sh, usize::MAX).unwrap();
        let expect_u: Vec<Utxo> = s
            .utxos
            .iter()
            .map(|&(height, txid, vout, value)| Utxo {
                txid,
                vout,
                value,
                height,
            })
            .collect();
        let mut got_u = utxos.clone();
        got_u.sort_by_key(|u| (u.height, u.txid.to_byte_array(), u.vout));
        let mut exp_sorted = expect_u;
        exp_sorted.sort_by_key(|u| (u.height, u.txid.to_byte_array(), u.vout));
        assert_eq!(got_u, exp_sorted, "utxos {sh}");
        if let Some(first) = s.history.first() {
            let at = query::balance_at(view, sh, first.height).unwrap();
            let expect_at = s
                .history
                .iter()
                .filter(|e| e.height <= first.height)
                .last()
                .unwrap()
                .balance_after;
            assert_eq!(at, expect_at);
        }
        rich_total += s.funded - s.spent;
    }
    let rich = query::rich_list(view, usize::MAX).unwrap();
    assert_eq!(rich.iter().map(|r| r.balance).sum::<u64>(), rich_total);
    assert!(rich.windows(2).all(|w| w[0].balance >= w[1].balance));
    for (txid, (h, i)) in &m.txs {
        let t = query::tx(view, txid).unwrap().unwrap();
        assert_eq!((t.block.height, t.index), (*h, *i));
    }
}

pub fn chain(seed: u64, blocks: usize, txs: usize) -> ChainBuilder {
    let mut c = ChainBuilder::new(seed, 40);
    for _ in 0..blocks {
        c.push_block(txs);
    }
    c
}

// ---------------- the store conformance suite ----------------

/// Runs every conformance check against stores produced by `make` (each call must return an
/// empty store).
pub fn conformance<S: Store>(make: &mut dyn FnMut() -> S) {
    commit_and_snapshot(&make());
    tip_compare_and_swap(&make());
    scans(&make());
    apply_undo_identity(&make());
    batch_equals_single(&mut *make);
    reorg_sync(&mut *make);
    clear_works(&make());
}

fn commit_and_snapshot<S: Store>(s: &S) {
    let c = chain(1, 20, 6);
    let ix = indexer(100);
    for b in c.blocks() {
        let before = s.snapshot().unwrap();
        let before_tip = query::tip(&before).unwrap();
        let cs = ix.apply_block(&s.snapshot().unwrap(), b).unwrap();
        // A snapshot opened before a commit keeps seeing the old state (MVCC backends).
        // The memory backend blocks commits while a snapshot lives, so release it first.
        drop(before);
        s.commit(&cs).unwrap();
        let _ = before_tip;
    }
    assert_matches_model(&s.snapshot().unwrap(), c.blocks());
    assert_eq!(checksum(s), checksum(&fresh(c.blocks(), 100)));
}

fn tip_compare_and_swap<S: Store>(s: &S) {
    let c = chain(2, 3, 3);
    let ix = indexer(100);
    let cs0 = ix
        .apply_block(&s.snapshot().unwrap(), &c.blocks()[0])
        .unwrap();
    s.commit(&cs0).unwrap();
    // Replaying a committed changeset is refused, and nothing changes.
    let sum = checksum(s);
    match s.commit(&cs0) {
        Err(StoreError::TipMismatch { .. }) => {}
        other => panic!("replay must fail with TipMismatch, got {other:?}"),
    }
    assert_eq!(checksum(s), sum);
    // A changeset computed against another tip is refused.
    let other = fresh(&c.blocks()[..2], 100);
    let cs2 = ix
        .apply_block(&other.snapshot().unwrap(), &c.blocks()[2])
        .unwrap();
    assert!(matches!(
        s.commit(&cs2),
        Err(StoreError::TipMismatch { .. })
    ));
    assert_eq!(checksum(s), sum);
}

fn scans<S: Store>(s: &S) {
    let c = chain(3, 30, 8);
    for b in c.blocks() {
        let cs = indexer(100).apply_block(&s.snapshot().unwrap(), b).unwrap();
        s.commit(&cs).unwrap();
    }
    let snap = s.snapshot().unwrap();
    let m = recompute(c.blocks());
    // Paging through a history gives the whole history, newest first, without overlap.
    let (sh, sm) = m
        .scripts
        .iter()
        .max_by_key(|(_, s)| s.history.len())
        .unwrap();
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = query::history(&snap, sh, cursor, 3).unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        cursor = Some(query::HistoryCursor {
            height: last.height,
            index: last.index,
        });
        pages.extend(page);
    }
    let mut expect = sm.history.clone();
    expect.reverse();
    assert_eq!(pages, expect);
    // Blocks by height and hash, with their txids.
    for (h, b) in c.blocks().iter().enumerate() {
        let bi = query::block_at(&snap, h as u32).unwrap().unwrap();
        assert_eq!(bi.block.hash, b.block_hash());
        let by_hash = query::block_by_hash(&snap, &b.block_hash())
            .unwrap()
            .unwrap();
        assert_eq!(by_hash, bi);
        let txids = query::block_txids(&snap, h as u32, 0, 10_000).unwrap();
        let expect: Vec<Txid> = b.txdata.iter().map(|t| t.txid()).collect();
        assert_eq!(txids, expect);
        assert_eq!(bi.tx_count as usize, b.txdata.len());
        assert_eq!(bi.weight, b.weight().to_wu());
    }
    assert!(query::block_at(&snap, 30).unwrap().is_none());
    // Aggregates: every block attributed, buckets sum to the block count.
    let pools = query::pool_distribution(&snap).unwrap();
    assert_eq!(pools.iter().map(|p| p.1).sum::<u64>(), 30);
    assert!(
        pools
            .iter()
            .any(|p| p.0 == btq_index::PoolKey::Named("Pool A".into()))
    );
    let buckets = query::blocks_per_bucket(&snap, 0, u64::MAX).unwrap();
    assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 30);
    let series = query::difficulty_series(&snap, 0, 29, 5).unwrap();
    assert_eq!(series.len(), 6);
    assert!(series.windows(2).all(
        |w| w[0].chain_work < w[1].chain_work || w[0].chain_work.len() < w[1].chain_work.len()
    ));
}

fn apply_undo_identity<S: Store>(s: &S) {
    let c = chain(4, 12, 5);
    let ix = indexer(100);
    let mut sums = vec![checksum(s)];
    for b in c.blocks() {
        let cs = ix.apply_block(&s.snapshot().unwrap(), b).unwrap();
        s.commit(&cs).unwrap();
        sums.push(checksum(s));
    }
    for i in (0..c.blocks().len()).rev() {
        let cs = ix.undo_tip(&s.snapshot().unwrap()).unwrap();
        s.commit(&cs).unwrap();
        assert_eq!(
            checksum(s),
            sums[i],
            "undo of block {i} restores the state before it"
        );
    }
    assert!(query::tip(&s.snapshot().unwrap()).unwrap().is_none());
}

fn batch_equals_single<S: Store>(make: &mut dyn FnMut() -> S) {
    let c = chain(5, 25, 6);
    let ix = indexer(10);
    let a = make();
    // Staged batches through an overlay, merged and committed every 7 blocks.
    let mut staged = ChangeSet::default();
    for (i, b) in c.blocks().iter().enumerate() {
        let cs = {
            let snap = a.snapshot().unwrap();
            ix.apply_block(&Overlay::new(&snap, &staged), b).unwrap()
        };
        staged.merge(cs);
        if i % 7 == 6 {
            a.commit(&staged).unwrap();
            staged = ChangeSet::default();
        }
    }
    a.commit(&staged).unwrap();
    assert_eq!(checksum(&a), checksum(&fresh(c.blocks(), 10)));
}

fn reorg_sync<S: Store>(make: &mut dyn FnMut() -> S) {
    let s = make();
    let c = chain(6, 30, 5);
    let mut node = MemNode {
        blocks: c.blocks().to_vec(),
    };
    sync(&s, &node, 10, 4);
    assert_eq!(checksum(&s), checksum(&fresh(&node.blocks, 10)));
    // Reorg 5 deep onto a longer branch.
    let mut f = c.fork_at(24, 99);
    for _ in 0..8 {
        f.push_block(5);
    }
    node.blocks = f.blocks().to_vec();
    sync(&s, &node, 10, 4);
    assert_matches_model(&s.snapshot().unwrap(), &node.blocks);
    assert_eq!(checksum(&s), checksum(&fresh(&node.blocks, 10)));
    // A reorg deeper than the limit fails clearly without changing anything.
    let mut g = c.fork_at(5, 7);
    for _ in 0..40 {
        g.push_block(2);
    }
    let before = checksum(&s);
    let deep = MemNode {
        blocks: g.blocks().to_vec(),
    };
    let mut syncer = Syncer::new(
        &s,
        deep.clone(),
        ChainSync::new(indexer(10)),
        SyncOptions::default(),
    );
    let err = syncer.sync_to_tip(&mut |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("reorg deeper than the limit"),
        "{err}"
    );
    assert_eq!(checksum(&s), before);
    // With resync enabled the store is rebuilt from scratch.
    let mut syncer = Syncer::new(
        &s,
        deep.clone(),
        ChainSync::new(indexer(10)),
        SyncOptions {
            resync_on_deep_reorg: true,
            ..SyncOptions::default()
        },
    );
    syncer.sync_to_tip(&mut |_| {}).unwrap();
    assert_eq!(syncer.resyncs(), 1);
    assert_eq!(checksum(&s), checksum(&fresh(&deep.blocks, 10)));
}

fn clear_works<S: Store>(s: &S) {
    let c = chain(8, 3, 2);
    for b in c.blocks() {
        let cs = indexer(100).apply_block(&s.snapshot().unwrap(), b).unwrap();
        s.commit(&cs).unwrap();
    }
    s.clear().unwrap();
    assert_eq!(checksum(s), checksum(&MemoryStore::new()));
}

// ---------------- concurrency ----------------

use btq_index::query::HistoryEntry as HE;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
type Expected = HashMap<Option<BlockHash>, Vec<(u64, Vec<HE>)>>;

pub fn hammer<S: Store>(store: &S) {
    let chain = chain(77, 40, 12);
    let blocks = chain.blocks();
    // The watched scripts: the five with the longest histories.
    let model = recompute(blocks);
    let mut by_len: Vec<(&ScriptHash, usize)> = model
        .scripts
        .iter()
        .map(|(k, v)| (k, v.history.len()))
        .collect();
    by_len.sort_by_key(|x| std::cmp::Reverse(x.1));
    let watched: Vec<ScriptHash> = by_len.iter().take(5).map(|x| *x.0).collect();
    // The expected (balance, history newest first) of each watched script at every tip.
    let mut expected: Expected = HashMap::new();
    for n in 0..=blocks.len() {
        let m = recompute(&blocks[..n]);
        let tip = n.checked_sub(1).map(|i| blocks[i].block_hash());
        let states = watched
            .iter()
            .map(|sh| {
                let s = m.scripts.get(sh).cloned().unwrap_or_default();
                let mut h = s.history.clone();
                h.reverse();
                (s.funded - s.spent, h)
            })
            .collect();
        expected.insert(tip, states);
    }
    let ix = indexer(100);
    let stop = AtomicBool::new(false);
    let observed = std::thread::scope(|sc| {
        let readers: Vec<_> = (0..3)
            .map(|r| {
                let (stop, watched, expected) = (&stop, &watched, &expected);
                sc.spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let snap = store.snapshot().unwrap();
                        let tip = query::tip(&snap).unwrap().map(|t| t.block.hash);
                        let i = (n as usize + r) % watched.len();
                        let sh = &watched[i];
                        let bal = query::balance(&snap, sh).unwrap();
                        let hist = query::history(&snap, sh, None, usize::MAX).unwrap();
                        drop(snap);
                        let exp = &expected.get(&tip).expect("tip is a committed tip")[i];
                        assert_eq!(bal, exp.0, "balance at tip {tip:?}");
                        assert_eq!(hist, exp.1, "history at tip {tip:?}");
                        assert_eq!(hist.first().map_or(0, |h| h.balance_after), bal);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        // Writer: apply all, then undo and re-apply the last 15 blocks three times.
        let apply = |b: &Block| {
            let cs = ix.apply_block(&store.snapshot().unwrap(), b).unwrap();
            store.commit(&cs).unwrap();
        };
        for b in blocks {
            apply(b);
        }
        for _ in 0..3 {
            for _ in 0..15 {
                let cs = ix.undo_tip(&store.snapshot().unwrap()).unwrap();
                store.commit(&cs).unwrap();
            }
            for b in &blocks[blocks.len() - 15..] {
                apply(b);
            }
        }
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert!(observed > 100, "readers observed only {observed} states");
    eprintln!("{observed} consistent observations");
}
