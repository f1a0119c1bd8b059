//! `btqkit demo`: a whole pool on one machine with no node and no database. The embedded
//! regtest chain, the pool service (`btq_pool::service::run_pool`: Stratum on loopback,
//! templates, share validation, block submission, optional `/metrics`) and a few built-in CPU
//! miners speaking real Stratum over TCP; live progress, then a summary.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use btq_core::params::Network;
use btq_core::pow::ShareDifficulty;
use btq_core::script::ScriptBuf;
use btq_core::time::UnixTime;
use btq_pool::miner::CpuMiner;
use btq_pool::service::{ServiceConfig, run_pool, spawn_metrics_server};
use btq_pool::{ChainConfig, EmbeddedChain, EmbeddedNode, JobConfig, NodeSet};

/// Arguments of `btqkit demo`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DemoArgs {
    /// Stratum listen address (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:3333")]
    pub stratum: SocketAddr,
    /// Built-in CPU miners (0: none, wait for external miners).
    #[arg(long, default_value_t = 2)]
    pub miners: usize,
    /// Seconds to run (0: until interrupted).
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// Start share difficulty.
    #[arg(long, default_value_t = 0.0001)]
    pub difficulty: f64,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
}

fn unix_now() -> UnixTime {
    UnixTime::from_secs(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Runs the demo.
///
/// # Errors
/// Startup failures (bind, runtime); everything after startup is reported in the summary.
pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: DemoArgs) -> anyhow::Result<()> {
    let difficulty =
        ShareDifficulty::new(args.difficulty).map_err(|e| anyhow::anyhow!("--difficulty: {e}"))?;
    let mut chain = EmbeddedChain::new_regtest(ChainConfig::default());
    chain.set_time(unix_now());
    let chain = Arc::new(Mutex::new(chain));
    let node = EmbeddedNode::new(Arc::clone(&chain), Arc::new(unix_now));
    let payout = ScriptBuf::new_p2wpkh(&[0x42; 20]);
    let mut cfg = ServiceConfig::new(JobConfig::new(payout.clone()), Network::Regtest.params());
    cfg.stratum.vardiff.initial = difficulty;
    cfg.stratum.vardiff.min = ShareDifficulty::new(args.difficulty.min(1e-6)).unwrap_or(difficulty);
    cfg.logger = Some(Arc::new(|msg: &str| {
        if msg.starts_with("block ") && msg.contains(" found ") {
            println!("  {msg}");
        }
    }));
    let listener = tokio::net::TcpListener::bind(args.stratum)
        .await
        .with_context(|| format!("bind {}", args.stratum))?;
    let pool = run_pool(Arc::new(NodeSet::new(vec![node], 1)), listener, cfg).await?;
    let addr = pool.stratum_addr();
    let metrics_task = match args.metrics {
        Some(m) => {
            let l = tokio::net::TcpListener::bind(m)
                .await
                .with_context(|| format!("bind {m}"))?;
            println!("metrics on http://{}/metrics", l.local_addr()?);
            Some(spawn_metrics_server(l, Arc::clone(pool.metrics())))
        }
        None => None,
    };
    println!(
        "btqkit demo: embedded regtest chain, stratum on {addr}, {} miners",
        args.miners
    );
    let miners: Vec<CpuMiner> = (0..args.miners)
        .map(|i| CpuMiner::spawn(addr, format!("qcrt1qdemo.cpu{i}")))
        .collect();
    let height = || chain.lock().map_or(0, |c| c.height());

    let start = Instant::now();
    let deadline = (args.duration > 0).then(|| start + Duration::from_secs(args.duration));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let secs = start.elapsed().as_secs_f64().max(1e-3);
                let hashes: u64 = miners.iter().map(|m| m.counters().hashes.load(Ordering::Relaxed)).sum();
                #[allow(clippy::cast_precision_loss, reason = "display only")]
                let rate = hashes as f64 / secs;
                let s = pool.metrics().snapshot();
                println!(
                    "  {:>4.0}s  height {:>4}  hashrate {:>8.2} MH/s (pool estimate {:.2})  shares {} ok / {} rejected  blocks {}",
                    secs, height(), rate / 1e6, s.hashrate / 1e6,
                    s.shares_accepted, s.shares_rejected_total(), s.blocks_accepted,
                );
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    for m in miners {
        m.join();
    }
    let s = pool.metrics().snapshot();
    pool.shutdown().await;
    if let Some(t) = metrics_task {
        t.abort();
    }
    let (h, paid) = chain.lock().map_or((0, 0), |c| {
        (
            c.height(),
            c.utxos_for(&payout)
                .iter()
                .map(|(_, c)| c.value)
                .sum::<u64>(),
        )
    });
    println!(
        "summary: {:.1}s, chain height {h}, blocks found {}, shares {} accepted / {} rejected, pool address balance {paid} sat ({} immature)",
        start.elapsed().as_secs_f64(),
        s.blocks_accepted,
        s.shares_accepted,
        s.shares_rejected_total(),
        if h < 100 { "all" } else { "some" },
    );
    Ok(())
}
