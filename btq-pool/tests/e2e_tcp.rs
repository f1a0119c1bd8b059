//! End to end over real TCP on 127.0.0.1: the pool service (`btq_pool::service::run_pool`)
//! against the embedded chain, with the built-in CPU miners and with a scripted Stratum client,
//! and the Prometheus `/metrics` endpoint scraped over loopback.
//!
//! The embedded chain runs with a fixed target harder than regtest's (about 2^16 or 2^20 hashes
//! per block) so that ordinary shares and blocks differ. Bounded: at most 2 miner threads, every
//! wait has a timeout (90 s at most).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    reason = "test code"
)]

mod common;

use std::time::Instant;

use btq_pool::NodeSet;
use btq_pool::miner::CpuMiner;
use common::{
    BITS_EASY, BITS_MEDIUM, Scripted, Want, chain, config, height, http_get, node, payout, sample,
    serve_metrics, start, wait_until,
};

/// Two built-in miners mine on the pool over TCP until the embedded chain has accepted 10
/// blocks; every block pays the pool, every found block was accepted, nothing but stale shares
/// was rejected, and `/metrics` reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_miners_find_blocks_the_chain_accepts() {
    const BLOCKS: u32 = 10;
    let t0 = Instant::now();
    let chain = chain(BITS_MEDIUM);
    let pool = start(NodeSet::new(vec![node(&chain)], 2), config(1e-4)).await;
    let metrics_addr = serve_metrics(pool.metrics()).await;
    let miners: Vec<CpuMiner> = (0..2)
        .map(|i| CpuMiner::spawn(pool.stratum_addr(), format!("qcrt1qminer.cpu{i}")))
        .collect();

    wait_until(90, "10 blocks", || height(&chain) >= BLOCKS).await;
    let (status, body) = http_get(metrics_addr, "/metrics").await;
    for m in &miners {
        m.stop();
    }
    let counters: Vec<_> = miners.iter().map(|m| m.counters().clone()).collect();
    for m in miners {
        m.join();
    }
    let (stats, _) = pool.stratum().stats().await.unwrap();
    let snap = pool.metrics().snapshot();
    pool.shutdown().await;

    let h = height(&chain);
    assert!(h >= BLOCKS);
    {
        let c = chain.lock().unwrap();
        // One coinbase output to the pool per block (the commitment output is not a coin).
        assert_eq!(c.utxos_for(&payout()).len(), h as usize);
    }
    assert_eq!(snap.blocks_accepted, u64::from(h), "{snap:?}");
    assert!(snap.blocks_found >= u64::from(h));
    assert!(
        snap.shares_accepted > snap.blocks_found,
        "ordinary shares too"
    );
    assert_eq!(
        snap.shares_rejected[1..],
        [0, 0, 0, 0],
        "only stale rejects: {snap:?}"
    );
    assert_eq!(stats.bans_issued, 0);
    assert_eq!(stats.connects_accepted, 2);
    for c in &counters {
        assert!(c.authorized.load(std::sync::atomic::Ordering::Relaxed));
        assert!(!c.disconnected.load(std::sync::atomic::Ordering::Relaxed));
        assert!(c.accepted.load(std::sync::atomic::Ordering::Relaxed) > 0);
        assert!(c.notifies.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    }

    // The scrape taken while the miners were connected.
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(sample(&body, "btq_pool_sessions"), 2.0);
    assert_eq!(sample(&body, "btq_pool_sessions_authorized"), 2.0);
    assert!(sample(&body, "btq_pool_shares_accepted_total") >= f64::from(BLOCKS));
    assert!(sample(&body, "btq_pool_blocks_found_total") >= f64::from(BLOCKS));
    assert!(
        sample(
            &body,
            "btq_pool_blocks_submitted_total{result=\"accepted\"}"
        ) >= f64::from(BLOCKS)
    );
    assert_eq!(
        sample(
            &body,
            "btq_pool_shares_rejected_total{reason=\"duplicate\"}"
        ),
        0.0
    );
    assert!(sample(&body, "btq_pool_hashrate") > 0.0);
    assert_eq!(sample(&body, "btq_pool_node_up{node=\"0\"}"), 1.0);
    assert!(body.contains("# TYPE btq_pool_shares_rejected_total counter\n"));
    assert!(body.contains("# TYPE btq_pool_hashrate gauge\n"));
    eprintln!(
        "builtin miners: {h} blocks, {} shares in {:?}",
        snap.shares_accepted,
        t0.elapsed()
    );
}

/// A scripted client: a share below the target is rejected (23), a duplicate is rejected (22),
/// a block is accepted by the chain, after which the old job's shares are stale (21) and the
/// new job's shares are accepted. The session stays connected and unbanned throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_client_gets_stale_duplicate_and_low_difficulty_rejects() {
    let chain = chain(BITS_EASY);
    let pool = start(NodeSet::new(vec![node(&chain)], 2), config(1e-6)).await;
    let mut c = Scripted::connect(pool.stratum_addr(), "qcrt1qscripted.w1").await;
    assert_eq!(c.difficulty, 1e-6);
    let j1 = c.latest();
    assert!(j1.clean);

    // Below the share target (and the network's): 23.
    let (en2, nonce) = c.find(&j1, 1, Want::Low);
    assert_eq!(c.submit(&j1, &en2, nonce).await, Err(23));

    // A share: accepted once, then a duplicate: 22.
    let (en2, nonce) = c.find(&j1, 2, Want::Share);
    assert_eq!(c.submit(&j1, &en2, nonce).await, Ok(()));
    assert_eq!(c.submit(&j1, &en2, nonce).await, Err(22));

    // A block: accepted by the pool and by the chain; a clean job follows.
    let (en2, nonce) = c.find(&j1, 100, Want::Block);
    assert_eq!(c.submit(&j1, &en2, nonce).await, Ok(()));
    let j2 = c.wait_clean_job().await;
    assert_ne!(j2.id, j1.id);
    assert_ne!(j2.prevhash, j1.prevhash);
    assert_eq!(height(&chain), 1);

    // A share on the old job after the new tip: stale, 21.
    let (en2, nonce) = c.find(&j1, 200, Want::Share);
    assert_eq!(c.submit(&j1, &en2, nonce).await, Err(21));
    // Work on the new job is accepted.
    let (en2, nonce) = c.find(&j2, 300, Want::Share);
    assert_eq!(c.submit(&j2, &en2, nonce).await, Ok(()));

    let snap = pool.metrics().snapshot();
    assert_eq!(snap.shares_accepted, 3);
    assert_eq!(snap.shares_rejected[1], 1, "duplicate");
    assert_eq!(snap.shares_rejected[2], 1, "low difficulty");
    assert_eq!(snap.blocks_found, 1);
    wait_until(10, "block counted", || {
        pool.metrics().snapshot().blocks_accepted == 1
    })
    .await;
    let (stats, _) = pool.stratum().stats().await.unwrap();
    assert_eq!(stats.sessions, 1);
    assert_eq!(stats.bans_issued, 0);
    pool.shutdown().await;
}

/// BIP 310 version rolling end to end: a share and a block with rolled version bits are
/// accepted and the block (with the rolled version) is accepted by the chain; bits outside the
/// negotiated mask are refused without reaching the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_rolled_shares_and_blocks_are_accepted() {
    let chain = chain(BITS_EASY);
    let pool = start(NodeSet::new(vec![node(&chain)], 2), config(1e-6)).await;
    let mut c = Scripted::connect_opts(pool.stratum_addr(), "qcrt1qrolling.w1", true).await;
    assert_eq!(c.version_mask, 0x1fff_e000);
    let j1 = c.latest();
    c.version_bits = Some(0x0012_4000);
    let (en2, nonce) = c.find(&j1, 1, Want::Share);
    assert_eq!(c.submit(&j1, &en2, nonce).await, Ok(()));
    let (en2, nonce) = c.find(&j1, 50, Want::Block);
    assert_eq!(c.submit(&j1, &en2, nonce).await, Ok(()));
    c.wait_clean_job().await;
    assert_eq!(height(&chain), 1);
    {
        let ch = chain.lock().unwrap();
        assert!(ch.hash_at(1).is_some());
    }
    // Bits outside the mask: refused (20), nothing reaches the pool's validator.
    let j2 = c.latest();
    c.version_bits = Some(0x0000_0001);
    c.version_mask = 0xffff_ffff;
    let (en2, nonce) = c.find(&j2, 70, Want::Share);
    assert_eq!(c.submit(&j2, &en2, nonce).await, Err(20));
    let snap = pool.metrics().snapshot();
    assert_eq!(snap.shares_accepted, 2);
    assert_eq!(snap.shares_rejected_total(), 0);
    pool.shutdown().await;
}

/// The metrics endpoint: 404 elsewhere, 405 for other methods, and the counters of an idle pool.
#[tokio::test]
async fn metrics_endpoint_over_loopback() {
    let chain = chain(BITS_EASY);
    let pool = start(NodeSet::new(vec![node(&chain)], 2), config(1e-6)).await;
    let addr = serve_metrics(pool.metrics()).await;
    wait_until(10, "a template", || pool.metrics().snapshot().templates > 0).await;
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(sample(&body, "btq_pool_sessions"), 0.0);
    assert_eq!(sample(&body, "btq_pool_job_height"), 1.0);
    assert_eq!(sample(&body, "btq_pool_blocks_found_total"), 0.0);
    assert!(sample(&body, "btq_pool_templates_total") >= 1.0);
    for reason in [
        "stale",
        "duplicate",
        "low_difficulty",
        "invalid",
        "internal",
    ] {
        assert_eq!(
            sample(
                &body,
                &format!("btq_pool_shares_rejected_total{{reason=\"{reason}\"}}")
            ),
            0.0
        );
    }
    let (status, _) = http_get(addr, "/nope").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, b"POST /metrics HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut resp)
        .await
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 405"));
    pool.shutdown().await;
}
