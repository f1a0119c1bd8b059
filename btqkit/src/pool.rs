//! `btqkit pool run --config pool.toml`: the pool against real BTQ nodes (JSON-RPC with
//! failover), serving Stratum V1.
//!
//! ```toml
//! network = "regtest"
//! payout_address = "qcrt1q..."      # or payout_script = "0014..."
//! pool_tag = "/btq-kit/"
//! template_refresh_secs = 10
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
use btq_pool::{
    DEFAULT_VERSION_MASK, ExtraNonce, JobConfig, JobFactory, NodeSet, SessionParams, ShareError,
    ShareValidator, Submit, ValidatorConfig, assemble_block, check_block,
};
use btq_stratum::{ServerEvent, Verdict};
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
    listen: Vec<ListenConfig>,
    nodes: Vec<NodeConfig>,
}

fn regtest() -> String {
    "regtest".into()
}
fn ten() -> u64 {
    10
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
    let nodes = NodeSet::new(nodes, 2);

    let listen = cfg
        .listen
        .first()
        .context("configure at least one [[listen]]")?;
    let mut scfg = btq_stratum::Config::default();
    let mut job_config = JobConfig::new(payout);
    if let Some(tag) = &cfg.pool_tag {
        job_config.pool_tag = tag.as_bytes().to_vec();
    }
    job_config.extranonce1_size = usize::from(scfg.extranonce1_size);
    job_config.extranonce2_size = usize::from(scfg.extranonce2_size);
    scfg.vardiff.initial =
        ShareDifficulty::new(listen.difficulty).map_err(|e| anyhow::anyhow!("difficulty: {e}"))?;
    let mut factory = JobFactory::new(job_config)?;
    let mut validator = ShareValidator::new(ValidatorConfig::default());
    let server = btq_stratum::Server::new(scfg).map_err(|e| anyhow::anyhow!("stratum: {e}"))?;
    let listener = tokio::net::TcpListener::bind(listen.addr).await?;
    let (handle, mut events, driver) =
        btq_stratum::tokio::spawn(listener, server, btq_stratum::tokio::Options::default());
    log(&format!("stratum listening on {}", listen.addr));

    let mut tick = tokio::time::interval(Duration::from_secs(cfg.template_refresh_secs.max(1)));
    let mut tip = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // Node failures leave sessions connected on the last job until a template returns.
                match nodes.get_block_template(None).await {
                    Ok((i, t)) => {
                        let new_tip = tip != Some(t.prev_blockhash);
                        tip = Some(t.prev_blockhash);
                        match factory.build(Arc::new(t)) {
                            Ok(job) => {
                                let job = validator.add_job(job);
                                if new_tip {
                                    log(&format!("new tip, height {} from node {i}", job.height()));
                                }
                                let _ = handle.broadcast_job(to_stratum_job(&job)).await;
                            }
                            Err(e) => log(&format!("job build failed: {e}")),
                        }
                    }
                    Err(e) => log(&format!("no template: {e}")),
                }
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                match ev {
                    ServerEvent::Authorize(a) => {
                        let _ = handle.respond(a.token, Verdict::Accepted).await;
                    }
                    ServerEvent::Submit(s) => {
                        let (Some(en1), Some(en2)) = (
                            ExtraNonce::from_slice(s.extranonce1.as_bytes()),
                            ExtraNonce::from_slice(s.extranonce2.as_bytes()),
                        ) else { continue };
                        let session = SessionParams::new(Arc::clone(&s.user), en1, s.difficulty, DEFAULT_VERSION_MASK);
                        let submit = Submit {
                            job_id: btq_pool::JobId::from_u64(s.job_id.to_u64()),
                            extranonce2: en2,
                            ntime: s.ntime,
                            nonce: s.nonce,
                            version_bits: s.version_bits,
                        };
                        let verdict = match validator.validate(&session, &submit, unix_now()) {
                            Ok(a) => match a.block {
                                Some(c) => match assemble_block(&c) {
                                    Ok(block) => {
                                        if let Err(e) = check_block(&block, c.job.template(), network.params()) {
                                            log(&format!("block fails local checks: {e}"));
                                        }
                                        let report = nodes.submit_block(&block).await;
                                        log(&format!("block {} submitted: {:?}", block.block_hash(), report.best()));
                                        Verdict::BlockFound
                                    }
                                    Err(e) => {
                                        log(&format!("block assembly failed: {e}"));
                                        Verdict::InternalError
                                    }
                                },
                                None => Verdict::Accepted,
                            },
                            Err(e) => verdict_for(&e),
                        };
                        let _ = handle.respond(s.token, verdict).await;
                    }
                    _ => {}
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    handle.shutdown().await;
    let _ = driver.await;
    Ok(())
}

fn to_stratum_job(job: &btq_pool::Job) -> btq_stratum::Job {
    let mut prevhash = job.prev_blockhash().to_byte_array();
    for w in prevhash.chunks_exact_mut(4) {
        w.reverse();
    }
    #[allow(clippy::cast_sign_loss, reason = "nVersion bits")]
    btq_stratum::Job {
        id: btq_stratum::JobId::from_u64(job.id().to_u64()),
        prevhash,
        coinb1: job.coinb1().to_vec(),
        coinb2: job.coinb2().to_vec(),
        merkle_branch: job.merkle_branch().to_vec(),
        version: job.version() as u32,
        nbits: job.bits().to_consensus(),
        ntime: job.ntime(),
        clean_jobs: job.clean_jobs(),
    }
}

fn verdict_for(e: &ShareError) -> Verdict {
    use btq_stratum::RejectReason as R;
    match e {
        ShareError::UnknownJob(_) | ShareError::StaleJob(_) | ShareError::JobShareLimit(_) => {
            Verdict::Rejected(R::Stale)
        }
        ShareError::Duplicate => Verdict::Rejected(R::Duplicate),
        ShareError::LowDifficulty => Verdict::Rejected(R::LowDifficulty),
        ShareError::Internal(_) | ShareError::Extranonce1Size { .. } => Verdict::InternalError,
        _ => Verdict::Rejected(R::Invalid),
    }
}
