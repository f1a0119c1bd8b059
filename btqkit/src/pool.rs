//! `btqkit pool run --config pool.toml`: the pool against real BTQ nodes (JSON-RPC with
//! failover), serving Stratum V1.
//!
//! ```toml
//! network = "regtest"
//! payout_address = "qcrt1q..."      # or payout_script = "0014..."
//! pool_tag = "/btq-kit/"
//! template_refresh_secs = 10
//! tip_poll_ms = 1000                # getblockchaininfo; a new tip fetches a template at once
//! metrics = "127.0.0.1:9108"        # Prometheus GET /metrics (optional)
//! [[listen]]
//! addr = "0.0.0.0:3333"
//! difficulty = 1.0
//! [[nodes]]
//! url = "http://127.0.0.1:18443/"  # the port is always explicit
//! cookie = "/home/btq/.btq/regtest/.cookie"   # or user = "..." / password = "..."
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use btq_core::params::Network;
use btq_core::pow::ShareDifficulty;
use btq_core::script::ScriptBuf;
use btq_core::time::UnixTime;
use btq_pool::rpc::{RpcAuth, RpcClient, RpcConfig};
use btq_pool::service::{ServiceConfig, run_pool, spawn_metrics_server};
use btq_pool::{JobConfig, NodeSet};
use serde::Deserialize;

/// `btqkit pool` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PoolCommand {
    /// Runs the pool.
    Run(PoolArgs),
}

/// Arguments of `btqkit pool run`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PoolArgs {
    /// The TOML config file.
    #[arg(long)]
    pub config: PathBuf,
}

#[derive(Debug, Deserialize)]
struct ListenConfig {
    addr: std::net::SocketAddr,
    #[serde(default = "one")]
    difficulty: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Deserialize)]
struct NodeConfig {
    url: String,
    user: Option<String>,
    password: Option<String>,
    cookie: Option<PathBuf>,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct FileConfig {
    #[serde(default = "regtest")]
    network: String,
    payout_address: Option<String>,
    payout_script: Option<String>,
    #[serde(default)]
    pool_tag: Option<String>,
    #[serde(default = "ten")]
    template_refresh_secs: u64,
    #[serde(default = "thousand")]
    tip_poll_ms: u64,
    /// Prometheus endpoint (`GET /metrics`), off when absent.
    #[serde(default)]
    metrics: Option<std::net::SocketAddr>,
    listen: Vec<ListenConfig>,
    nodes: Vec<NodeConfig>,
}

fn regtest() -> String {
    "regtest".into()
}
fn ten() -> u64 {
    10
}
fn thousand() -> u64 {
    1000
}

fn unix_now() -> UnixTime {
    UnixTime::from_secs(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

fn log(msg: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{{\"ts\":{},\"msg\":{}}}",
            unix_now().as_secs(),
            serde_json::Value::from(msg)
        );
    }
}

/// Runs `btqkit pool <command>`.
///
/// # Errors
/// A bad config or a startup failure.
pub(crate) fn run(command: PoolCommand) -> anyhow::Result<()> {
    let PoolCommand::Run(args) = command;
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("read {}", args.config.display()))?;
    let cfg: FileConfig = toml::from_str(&text).context("parse pool config")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run_async(cfg))
}

async fn run_async(cfg: FileConfig) -> anyhow::Result<()> {
    let network: Network = cfg
        .network
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown network"))?;
    let payout = match (&cfg.payout_address, &cfg.payout_script) {
        (Some(a), _) => btq_core::Address::parse(a, network)
            .map_err(|e| anyhow::anyhow!("payout_address: {e}"))?
            .script_pubkey()
            .clone(),
        (None, Some(h)) => {
            ScriptBuf::from_hex(h).map_err(|e| anyhow::anyhow!("payout_script: {e}"))?
        }
        (None, None) => anyhow::bail!("set payout_address or payout_script"),
    };
    let nodes = cfg
        .nodes
        .iter()
        .map(|n| {
            let auth = match (&n.cookie, &n.user, &n.password) {
                (Some(c), _, _) => RpcAuth::Cookie(c.clone()),
                (None, Some(u), Some(p)) => RpcAuth::UserPass {
                    user: u.clone(),
                    password: p.clone(),
                },
                _ => RpcAuth::None,
            };
            let mut rc = RpcConfig::new(n.url.clone(), auth);
            if let Some(t) = n.timeout_secs {
                rc.timeout = Duration::from_secs(t);
            }
            RpcClient::new(rc).map_err(|e| anyhow::anyhow!("node {}: {e}", n.url))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!nodes.is_empty(), "configure at least one [[nodes]]");
    let nodes = Arc::new(NodeSet::new(nodes, 2));

    let listen = cfg
        .listen
        .first()
        .context("configure at least one [[listen]]")?;
    let mut job_config = JobConfig::new(payout);
    if let Some(tag) = &cfg.pool_tag {
        job_config.pool_tag = tag.as_bytes().to_vec();
    }
    let mut scfg = ServiceConfig::new(job_config, network.params());
    scfg.stratum.vardiff.initial =
        ShareDifficulty::new(listen.difficulty).map_err(|e| anyhow::anyhow!("difficulty: {e}"))?;
    scfg.template_refresh = Duration::from_secs(cfg.template_refresh_secs.max(1));
    scfg.tip_poll = Duration::from_millis(cfg.tip_poll_ms.max(50));
    scfg.logger = Some(Arc::new(log));
    let listener = tokio::net::TcpListener::bind(listen.addr)
        .await
        .with_context(|| format!("bind {}", listen.addr))?;
    let pool = run_pool(nodes, listener, scfg).await?;
    log(&format!("stratum listening on {}", pool.stratum_addr()));
    let metrics_task = match cfg.metrics {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind metrics {addr}"))?;
            log(&format!("metrics on http://{}/metrics", l.local_addr()?));
            Some(spawn_metrics_server(l, Arc::clone(pool.metrics())))
        }
        None => None,
    };
    let _ = tokio::signal::ctrl_c().await;
    log("shutting down");
    pool.shutdown().await;
    if let Some(t) = metrics_task {
        t.abort();
    }
    Ok(())
}
