//! The Sans-IO core: Lithium-signed chains of every output type (including a block close to
//! the 8,000,000 weight limit), pool attribution, reorg property tests against a from-scratch
//! recomputation, and the merge law of changesets.
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

use btq_core::block::Block;
use btq_core::signer::{Prevout, verify_transaction};
use btq_core::tx::{Transaction, TxOut};
use btq_index::driver::{DriverError, SyncOptions, Syncer};
use btq_index::testkit::{LithiumWallet, SCRIPT_KINDS, make_block, script_of_kind};
use btq_index::{
    ChainSync, ChangeSet, IndexError, Indexer, MemoryStore, Merge, Overlay, PoolKey, ScriptHash,
    Store, SyncError, query,
};
use proptest::prelude::*;

fn prevouts_of(tx: &Transaction, blocks: &[Block]) -> Vec<Prevout> {
    tx.input
        .iter()
        .map(|i| {
            let o = blocks
                .iter()
                .flat_map(|b| &b.txdata)
                .find(|t| t.txid() == i.previous_output.txid)
                .map(|t| t.output[i.previous_output.vout as usize].clone())
                .unwrap();
            Prevout {
                value: o.value,
                script_pubkey: o.script_pubkey,
            }
        })
        .collect()
}

#[test]
fn lithium_chain_with_every_output_type_and_a_near_limit_block() {
    let mut w = LithiumWallet::new([7; 32]);
    let wallet_scripts = w.scripts();
    // Block 0: a coinbase funding the wallet's three Lithium output types many times.
    let cb: Vec<TxOut> = (0..1200)
        .map(|i| TxOut {
            value: 1_000_000,
            script_pubkey: wallet_scripts[i % 3].clone(),
        })
        .collect();
    let b0 = make_block(
        btq_core::hash::BlockHash::from_byte_array([0; 32]),
        0,
        1_771_804_800,
        cb,
        b"/BTQ-Pool/",
        vec![],
    );
    w.receive(&b0.txdata[0]);
    let mut blocks = vec![b0];

    // Block 1: Lithium spends to every output type (ECDSA shapes, P2SH, P2WSH, P2TR, P2MR,
    // bare Lithium P2PK, multisig, unknown witness, non-standard, OP_RETURN).
    let mut txs = Vec::new();
    for k in 0..SCRIPT_KINDS {
        let outs = vec![
            script_of_kind(k, k + 1),
            wallet_scripts[(k % 3) as usize].clone(),
        ];
        txs.push(w.spend(2, &outs, 2_000).unwrap().unwrap());
    }
    let payout = script_of_kind(0, 12345);
    let b1 = make_block(
        blocks[0].block_hash(),
        1,
        1_771_804_860,
        vec![TxOut {
            value: 500_000_000,
            script_pubkey: payout.clone(),
        }],
        b"/BTQ-Pool/",
        txs,
    );
    for tx in &b1.txdata[1..] {
        verify_transaction(tx, &prevouts_of(tx, &blocks)).unwrap();
    }
    blocks.push(b1);

    // Block 2: Lithium spends until the block is close to the 8,000,000 weight limit.
    let mut big = Vec::new();
    let mut weight: u64 = 80 * 16 + 2_000; // header, count and coinbase allowance
    while w.coin_count() > 0 {
        let tx = w
            .spend(12, &[wallet_scripts[0].clone()], 10_000)
            .unwrap()
            .unwrap();
        let tw = tx.weight().to_wu();
        if weight + tw > 8_000_000 {
            break;
        }
        weight += tw;
        big.push(tx);
    }
    let b2 = make_block(
        blocks[1].block_hash(),
        2,
        1_771_804_920,
        vec![TxOut {
            value: 500_000_000,
            script_pubkey: payout,
        }],
        b"",
        big,
    );
    let bw = b2.weight().to_wu();
    assert!(bw > 7_600_000 && bw <= 8_000_000, "block weight {bw}");
    verify_transaction(&b2.txdata[1], &prevouts_of(&b2.txdata[1], &blocks)).unwrap();
    blocks.push(b2);

    let ix = Indexer::new(btq_index::Config {
        pools: vec![btq_index::Pool {
            name: "BTQ Pool".into(),
            tags: vec!["/BTQ-Pool/".into()],
            payout_scripts: vec![],
        }],
        ..btq_index::Config::default()
    })
    .unwrap();
    let store = MemoryStore::new();
    for b in &blocks {
        let cs = ix.apply_block(&store.snapshot().unwrap(), b).unwrap();
        store.commit(&cs).unwrap();
    }
    let snap = store.snapshot().unwrap();
    common::assert_matches_model(&snap, &blocks);
    // vsize is ⌈weight / 16⌉, not the node's RPC value (which prints the weight).
    let t = query::tx(&snap, &blocks[2].txdata[1].txid())
        .unwrap()
        .unwrap();
    assert_eq!(t.vsize, t.weight.div_ceil(16));
    assert_eq!(t.weight, blocks[2].txdata[1].weight().to_wu());
    assert!(t.fee == 10_000);
    // Pools: tag match for blocks 0 and 1, the payout script groups block 2.
    let pools = query::pool_distribution(&snap).unwrap();
    assert!(pools.contains(&(PoolKey::Named("BTQ Pool".into()), 2)));
    assert!(
        pools
            .iter()
            .any(|(k, n)| matches!(k, PoolKey::Unknown(_)) && *n == 1)
    );
    // Every ECDSA-shaped and Lithium output is keyed by its script.
    for k in 0..SCRIPT_KINDS - 1 {
        let s = script_of_kind(k, k + 1);
        let sh = ScriptHash::of(s.as_bytes());
        assert_eq!(query::script(&snap, &sh).unwrap(), Some(s));
        assert_eq!(query::utxos(&snap, &sh, 10).unwrap().len(), 1);
    }
    // OP_RETURN outputs are not indexed.
    let op_return = script_of_kind(SCRIPT_KINDS - 1, SCRIPT_KINDS);
    assert_eq!(
        query::script_stats(&snap, &ScriptHash::of(op_return.as_bytes())).unwrap(),
        btq_index::ScriptStats::default()
    );
}

#[test]
fn bad_blocks_are_typed_errors() {
    let c = common::chain(9, 5, 4);
    let ix = Indexer::default();
    let store = common::fresh(&c.blocks()[..3], 100);
    let snap = store.snapshot().unwrap();
    // Not extending the tip.
    assert!(matches!(
        ix.apply_block(&snap, &c.blocks()[4]),
        Err(IndexError::NotExtendingTip { .. })
    ));
    // Spending an unknown output.
    let mut b = c.blocks()[3].clone();
    if let Some(tx) = b.txdata.get_mut(1) {
        tx.input[0].previous_output.vout = 999;
    }
    assert!(matches!(
        ix.apply_block(&snap, &b),
        Err(IndexError::MissingPrevout(_))
    ));
    // Outputs above inputs.
    let mut b = c.blocks()[3].clone();
    if let Some(tx) = b.txdata.get_mut(1) {
        tx.output[0].value = u64::MAX / 2;
    }
    assert!(matches!(
        ix.apply_block(&snap, &b),
        Err(IndexError::BadValues(_))
    ));
    // A confirmed transaction again: its inputs are spent.
    let confirmed = c.blocks()[..3]
        .iter()
        .flat_map(|b| b.txdata.iter().skip(1))
        .next()
        .unwrap()
        .clone();
    let mut b = c.blocks()[3].clone();
    b.txdata.push(confirmed);
    assert!(matches!(
        ix.apply_block(&snap, &b),
        Err(IndexError::MissingPrevout(_))
    ));
    // A confirmed coinbase again (BIP30): a duplicate txid, refused before anything is staged.
    let mut b = c.blocks()[3].clone();
    b.txdata[0] = c.blocks()[1].txdata[0].clone();
    let dup = b.txdata[0].txid();
    assert_eq!(
        ix.apply_block(&snap, &b),
        Err(IndexError::DuplicateTxid(dup))
    );
    // A failed block leaves a staged batch exactly as it was.
    let cix = common::indexer(100); // as `common::fresh` indexes
    let mut staged = ChangeSet::default();
    cix.stage_block(&snap, &mut staged, &c.blocks()[3]).unwrap();
    let before = staged.clone();
    let mut bad = c.blocks()[4].clone();
    let last = bad.txdata.len() - 1;
    assert!(last >= 1, "block 4 has transactions besides its coinbase");
    bad.txdata[last].output[0].value = u64::MAX / 2;
    assert!(matches!(
        cix.stage_block(&snap, &mut staged, &bad),
        Err(IndexError::BadValues(_))
    ));
    assert_eq!(staged, before);
    // ...and staging goes on from there as if the failure had not happened.
    cix.stage_block(&snap, &mut staged, &c.blocks()[4]).unwrap();
    drop(snap);
    store.commit(&staged).unwrap();
    common::assert_same_state(&store, &common::fresh(&c.blocks()[..5], 100));
    assert_eq!(
        common::checksum(&store),
        common::checksum(&common::fresh(&c.blocks()[..5], 100))
    );
    // Undo on an empty index.
    let empty = MemoryStore::new();
    assert!(matches!(
        ix.undo_tip(&empty.snapshot().unwrap()),
        Err(IndexError::NothingToUndo)
    ));
}

#[test]
fn undo_data_is_pruned_at_twice_the_depth_limit() {
    // Twice the limit: after a reorg as deep as the limit, a full limit of undo data is left.
    let c = common::chain(10, 12, 2);
    let store = common::fresh(c.blocks(), 4);
    let ix = common::indexer(4);
    assert_eq!(ix.undo_retention(), 8);
    for _ in 0..8 {
        let cs = ix.undo_tip(&store.snapshot().unwrap()).unwrap();
        store.commit(&cs).unwrap();
    }
    assert!(matches!(
        ix.undo_tip(&store.snapshot().unwrap()),
        Err(IndexError::NoUndoData { height: 3 })
    ));
    common::assert_matches_model(&store.snapshot().unwrap(), &c.blocks()[..4]);
}

/// Syncs `node` into `store` with resync enabled; returns (resyncs, deep reorgs).
fn sync_deep(store: &MemoryStore, node: &common::MemNode, limit: u32) -> (u32, u32) {
    let opts = SyncOptions {
        batch_blocks: 5,
        resync_on_deep_reorg: true,
        ..SyncOptions::default()
    };
    let mut s = Syncer::new(
        store,
        node.clone(),
        ChainSync::new(common::indexer(limit)),
        opts,
    );
    s.sync_to_tip(&mut |_| {}).unwrap();
    (s.resyncs(), s.deep_reorgs())
}

#[test]
fn deep_reorgs_resync_from_the_fork_point_or_reindex() {
    const LIMIT: u32 = 4; // undo data is kept for 8 blocks
    let chain = common::chain(21, 20, 3);
    let store = MemoryStore::new();
    let mut node = common::MemNode {
        blocks: chain.blocks().to_vec(),
    };
    assert_eq!(sync_deep(&store, &node, LIMIT), (0, 0));

    // 6 blocks deep: beyond the limit, within the undo data.
    let mut fork = chain.fork_at(19 - 6, 77);
    for _ in 0..8 {
        fork.push_block(3);
    }
    node.blocks = fork.blocks().to_vec();
    // Without the option: a clear error and nothing changes.
    let before = common::checksum(&store);
    let mut s = Syncer::new(
        &store,
        node.clone(),
        ChainSync::new(common::indexer(LIMIT)),
        SyncOptions::default(),
    );
    let err = s.sync_to_tip(&mut |_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            DriverError::Sync(SyncError::ReorgTooDeep { limit: LIMIT, .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("resync from the fork point"),
        "{err}"
    );
    assert_eq!(common::checksum(&store), before);
    // With it: undo to the fork point and apply the new branch, without a reindex.
    assert_eq!(sync_deep(&store, &node, LIMIT), (0, 1));
    common::assert_matches_model(&store.snapshot().unwrap(), &node.blocks);
    common::assert_same_state(&store, &common::fresh(&node.blocks, LIMIT));

    // 12 blocks deep: beyond the undo data; only a reindex reaches the fork point.
    let tip = fork.next_height() - 1;
    let mut fork2 = fork.fork_at(tip - 12, 78);
    for _ in 0..14 {
        fork2.push_block(3);
    }
    node.blocks = fork2.blocks().to_vec();
    assert_eq!(sync_deep(&store, &node, LIMIT), (1, 1));
    common::assert_matches_model(&store.snapshot().unwrap(), &node.blocks);
    common::assert_same_state(&store, &common::fresh(&node.blocks, LIMIT));
}

#[test]
fn merge_is_sequential_application() {
    // apply(a.merge(b)) == apply(a); apply(b), and merge is associative.
    let c = common::chain(11, 9, 4);
    let ix = common::indexer(100);
    let store = MemoryStore::new();
    let mut parts = Vec::new();
    let mut staged = ChangeSet::default();
    for b in c.blocks() {
        let snap = store.snapshot().unwrap();
        let cs = ix.apply_block(&Overlay::new(&snap, &staged), b).unwrap();
        parts.push(cs.clone());
        staged.merge(cs);
    }
    let mut left = ChangeSet::default();
    for p in parts.iter().take(3) {
        left.merge(p.clone());
    }
    let mut right = ChangeSet::default();
    for p in parts.iter().skip(3) {
        right.merge(p.clone());
    }
    let mut grouped = left;
    grouped.merge(right);
    assert_eq!(grouped, staged);
    store.commit(&staged).unwrap();
    assert_eq!(
        common::checksum(&store),
        common::checksum(&common::fresh(c.blocks(), 100))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random chains, random reorgs up to the depth limit, random batch sizes: after every
    /// step, balances, UTXOs and histories equal a from-scratch recomputation, and the store
    /// equals a fresh index of the same chain (checksum of every table).
    #[test]
    fn reorgs_equal_recomputation(
        seed in any::<u64>(),
        len in 3usize..30,
        steps in proptest::collection::vec((0u32..=8, 0usize..10, 1u32..6, any::<u64>()), 1..5),
    ) {
        const LIMIT: u32 = 8;
        let store = MemoryStore::new();
        let mut chain = common::chain(seed, len, 4);
        let mut node = common::MemNode { blocks: chain.blocks().to_vec() };
        common::sync(&store, &node, LIMIT, 3);
        common::assert_matches_model(&store.snapshot().unwrap(), &node.blocks);
        let mut shrunk = false;
        for (depth, extra, batch, fseed) in steps {
            let tip = chain.next_height() - 1;
            let fork = tip.saturating_sub(depth);
            let mut f = chain.fork_at(fork, fseed);
            for _ in 0..extra {
                f.push_block(4);
            }
            chain = f;
            node.blocks = chain.blocks().to_vec();
            let (_, resyncs) = common::sync_counting_resyncs(&store, &node, LIMIT, batch);
            // Only after a reorg to a lower tip can undo data within the limit be missing
            // (SyncError::UndoUnavailable); the driver then resyncs.
            prop_assert!(resyncs == 0 || shrunk, "resync without a previous shrinking reorg");
            shrunk |= (extra as u32) < depth;
            common::assert_matches_model(&store.snapshot().unwrap(), &node.blocks);
            common::assert_same_state(&store, &common::fresh(&node.blocks, LIMIT));
        }
    }
}
