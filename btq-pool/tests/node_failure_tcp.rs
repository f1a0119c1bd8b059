//! Node failure with miners connected over real TCP on 127.0.0.1: the pool service runs on two
//! nodes sharing the embedded chain. Node 0 answers errors (failover: mining goes on through
//! node 1); then node 0 times out and node 1 disappears (no node: the miners keep the last job);
//! then node 0 returns and blocks are accepted again. Throughout, the sessions stay connected,
//! nobody reconnects, no miner is banned, and no share is rejected for the node's fault.
//! Bounded: 2 miner threads, every phase under a timeout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "test code"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use btq_core::block::Block;
use btq_pool::miner::CpuMiner;
use btq_pool::{
    AddressValidation, BlockchainInfo, EmbeddedNode, MiningInfo, NodeApi, NodeError, NodeSet,
    SubmitOutcome, Template,
};
use common::{BITS_MEDIUM, chain, config, height, node, start, wait_until};

const UP: u8 = 0;
const ERRORS: u8 = 1;
const HANG: u8 = 2;
const DOWN: u8 = 3;

/// A node a test switches between up, answering RPC errors, timing out (after 300 ms) and gone.
struct Flaky {
    inner: EmbeddedNode,
    mode: Arc<AtomicU8>,
}

impl Flaky {
    async fn check(&self) -> Result<(), NodeError> {
        match self.mode.load(Ordering::SeqCst) {
            UP => Ok(()),
            ERRORS => Err(NodeError::Rpc {
                code: -10,
                message: "in initial sync".into(),
            }),
            HANG => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Err(NodeError::Timeout)
            }
            _ => Err(NodeError::Unreachable),
        }
    }
}

impl NodeApi for Flaky {
    async fn get_block_template(&self, lp: Option<&str>) -> Result<Template, NodeError> {
        self.check().await?;
        self.inner.get_block_template(lp).await
    }
    async fn submit_block(&self, block: &Block) -> Result<SubmitOutcome, NodeError> {
        self.check().await?;
        self.inner.submit_block(block).await
    }
    async fn get_blockchain_info(&self) -> Result<BlockchainInfo, NodeError> {
        self.check().await?;
        self.inner.get_blockchain_info().await
    }
    async fn get_mining_info(&self) -> Result<MiningInfo, NodeError> {
        self.check().await?;
        self.inner.get_mining_info().await
    }
    async fn validate_address(&self, a: &str) -> Result<AddressValidation, NodeError> {
        self.check().await?;
        self.inner.validate_address(a).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_failure_keeps_sessions_and_mining_resumes() {
    let t0 = Instant::now();
    let chain = chain(BITS_MEDIUM);
    let (m0, m1) = (Arc::new(AtomicU8::new(UP)), Arc::new(AtomicU8::new(UP)));
    let nodes = NodeSet::new(
        vec![
            Flaky {
                inner: node(&chain),
                mode: Arc::clone(&m0),
            },
            Flaky {
                inner: node(&chain),
                mode: Arc::clone(&m1),
            },
        ],
        1,
    );
    let pool = start(nodes, config(1e-4)).await;
    let miners: Vec<CpuMiner> = (0..2)
        .map(|i| CpuMiner::spawn(pool.stratum_addr(), format!("qcrt1qminer.rig{i}")))
        .collect();
    let metrics = Arc::clone(pool.metrics());

    // Phase 1: both nodes up, blocks are found.
    wait_until(60, "2 blocks", || height(&chain) >= 2).await;

    // Phase 2: node 0 answers errors; the pool fails over to node 1 and mining goes on.
    m0.store(ERRORS, Ordering::SeqCst);
    let h = height(&chain);
    wait_until(60, "2 blocks through node 1", || height(&chain) >= h + 2).await;
    let snap = metrics.snapshot();
    assert!(!snap.nodes[0].healthy);
    assert!(matches!(
        snap.nodes[0].last_error,
        Some(NodeError::Rpc { code: -10, .. })
    ));

    // Phase 3: node 0 times out, node 1 is gone. No template, no block reaches the chain, but
    // the miners keep mining the last job and their shares are still accepted.
    m0.store(HANG, Ordering::SeqCst);
    m1.store(DOWN, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let h = height(&chain);
    let before = metrics.snapshot();
    let accepted_before: u64 = miners
        .iter()
        .map(|m| m.counters().accepted.load(Ordering::Relaxed))
        .sum();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = metrics.snapshot();
    assert_eq!(height(&chain), h, "no node, no block");
    assert!(
        during.shares_accepted > before.shares_accepted,
        "shares accepted on the last job during the outage: {during:?}"
    );
    let accepted_during: u64 = miners
        .iter()
        .map(|m| m.counters().accepted.load(Ordering::Relaxed))
        .sum();
    assert!(accepted_during > accepted_before);
    assert!(during.template_failures > before.template_failures);
    assert!(during.blocks_unsubmitted > 0, "{during:?}");
    assert!(during.nodes.iter().all(|n| !n.healthy));
    assert_eq!(during.nodes[0].last_error, Some(NodeError::Timeout));
    assert_eq!(during.nodes[1].last_error, Some(NodeError::Unreachable));
    let (stats, conns) = pool.stratum().stats().await.unwrap();
    assert_eq!(
        (stats.sessions, stats.authorized, conns),
        (2, 2, 2),
        "{stats:?}"
    );

    // Phase 4: node 0 returns; blocks are accepted again.
    m0.store(UP, Ordering::SeqCst);
    wait_until(60, "2 blocks after the node returns", || {
        height(&chain) >= h + 2
    })
    .await;

    let (stats, conns) = pool.stratum().stats().await.unwrap();
    let snap = metrics.snapshot();
    for m in &miners {
        let c = m.counters();
        assert!(!c.disconnected.load(Ordering::Relaxed), "session dropped");
        assert!(c.accepted.load(Ordering::Relaxed) > 0);
    }
    for m in miners {
        m.join();
    }
    pool.shutdown().await;
    assert_eq!(
        (stats.sessions, stats.authorized, conns),
        (2, 2, 2),
        "{stats:?}"
    );
    assert_eq!(stats.connects_accepted, 2, "nobody reconnected");
    assert_eq!(stats.bans_issued, 0, "nobody banned");
    assert_eq!(stats.bans, 0);
    // The node's failures never turned into a miner's reject; only stale shares at tip changes.
    assert_eq!(snap.shares_rejected[1..], [0, 0, 0, 0], "{snap:?}");
    assert!(snap.nodes[0].healthy);
    eprintln!(
        "node failure: height {}, {} shares, {} blocks unsubmitted during the outage, {:?}",
        height(&chain),
        snap.shares_accepted,
        snap.blocks_unsubmitted,
        t0.elapsed()
    );
}
