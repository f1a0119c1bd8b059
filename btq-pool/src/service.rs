//! The pool service (feature `runtime-tokio`): the Stratum server (btq-stratum's tokio driver)
//! wired to the job factory, the share validator and a [`NodeSet`], with Prometheus metrics.
//! `btqkit pool run` runs it against JSON-RPC nodes, `btqkit demo` and the end-to-end tests
//! against the embedded chain ([`crate::EmbeddedNode`]).
//!
//! ## Tasks
//! - **Host loop**: answers authorizations, validates shares, hands blocks to the submitter and
//!   turns templates into jobs. It never waits on a node, so a slow, failing or vanished node
//!   leaves every session connected on its last job; no verdict blames a miner for it.
//! - **Template task**: fetches a template every [`ServiceConfig::template_refresh`], polls the
//!   tip every [`ServiceConfig::tip_poll`] and fetches at once when it moved, and refetches
//!   after every block submission. Failures are counted and retried on the next tick.
//! - **Submitter**: submits found blocks to every healthy node, one at a time, from a queue of
//!   at most [`ServiceConfig::max_queued_blocks`].
//! - **Metrics** (optional): [`spawn_metrics_server`], a minimal HTTP/1.1 endpoint serving
//!   [`Metrics::render`] on `GET /metrics`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use btq_core::block::Block;
use btq_core::hash::BlockHash;
use btq_core::params::ChainParams;
use btq_core::time::UnixTime;
use btq_stratum::{RejectReason as StratumRejectReason, ServerEvent, Submission, Verdict};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::block::{SubmitOutcome, assemble_block, check_block};
use crate::job::{Job, JobConfig, JobError, JobFactory};
use crate::node::{NodeApi, NodeError, NodeHealth, NodeSet};
use crate::share::{
    ExtraNonce, SessionParams, ShareError, ShareValidator, Submit, ValidatorConfig,
};
use crate::template::Template;

/// A log sink: one human-readable line per call.
pub type Logger = Arc<dyn Fn(&str) + Send + Sync>;

/// Window of the hashrate estimate, in seconds.
pub const HASHRATE_WINDOW_SECS: usize = 60;

/// Service settings.
#[derive(Clone)]
pub struct ServiceConfig {
    /// The Stratum server's limits, extranonce sizes and vardiff.
    pub stratum: btq_stratum::Config,
    /// The Stratum driver's options.
    pub stratum_options: btq_stratum::tokio::Options,
    /// The coinbase: payout script, pool tag, fixed payouts. Its extranonce sizes are set from
    /// [`ServiceConfig::stratum`].
    pub job: JobConfig,
    /// Share validator limits.
    pub validator: ValidatorConfig,
    /// The network's parameters, for the local checks of assembled blocks.
    pub params: &'static ChainParams,
    /// Fetch a fresh template (new transactions) this often. Default 30 s.
    pub template_refresh: Duration,
    /// Ask the node for its tip this often; a new tip fetches a template at once. Default 1 s.
    pub tip_poll: Duration,
    /// Found blocks waiting for submission (more are dropped and counted). Default 16.
    pub max_queued_blocks: usize,
    /// Where log lines go (none by default).
    pub logger: Option<Logger>,
}

impl core::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("stratum", &self.stratum)
            .field("job", &self.job)
            .field("template_refresh", &self.template_refresh)
            .field("tip_poll", &self.tip_poll)
            .finish_non_exhaustive()
    }
}

impl ServiceConfig {
    /// Defaults for `params`' network around a job config.
    pub fn new(job: JobConfig, params: &'static ChainParams) -> Self {
        Self {
            stratum: btq_stratum::Config::default(),
            stratum_options: btq_stratum::tokio::Options::default(),
            job,
            validator: ValidatorConfig::default(),
            params,
            template_refresh: Duration::from_secs(30),
            tip_poll: Duration::from_secs(1),
            max_queued_blocks: 16,
            logger: None,
        }
    }
}

/// A failure starting the service.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The Stratum config is invalid.
    #[error("stratum config: {0}")]
    Stratum(#[from] btq_stratum::ConfigError),
    /// The job config is invalid.
    #[error("job config: {0}")]
    Job(#[from] JobError),
    /// A socket failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Share reject reasons as exported (the `reason` label).
const REJECT_LABELS: [&str; 5] = [
    "stale",
    "duplicate",
    "low_difficulty",
    "invalid",
    "internal",
];

fn reject_index(e: &ShareError) -> usize {
    match e {
        ShareError::UnknownJob(_) | ShareError::StaleJob(_) | ShareError::JobShareLimit(_) => 0,
        ShareError::Duplicate => 1,
        ShareError::LowDifficulty => 2,
        ShareError::Internal(_) | ShareError::Extranonce1Size { .. } => 4,
        _ => 3,
    }
}

/// Maps a validation error to the Stratum verdict.
pub fn verdict_for(e: &ShareError) -> Verdict {
    match reject_index(e) {
        0 => Verdict::Rejected(StratumRejectReason::Stale),
        1 => Verdict::Rejected(StratumRejectReason::Duplicate),
        2 => Verdict::Rejected(StratumRejectReason::LowDifficulty),
        4 => Verdict::InternalError,
        _ => Verdict::Rejected(StratumRejectReason::Invalid),
    }
}

/// Accepted work per second over the last [`HASHRATE_WINDOW_SECS`] seconds.
#[derive(Debug)]
struct WorkWindow {
    start: Instant,
    /// (second since start, summed share difficulty) per slot.
    slots: [(u64, f64); HASHRATE_WINDOW_SECS],
}

impl WorkWindow {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            slots: [(u64::MAX, 0.0); HASHRATE_WINDOW_SECS],
        }
    }

    fn add(&mut self, difficulty: f64) {
        let sec = self.start.elapsed().as_secs();
        let i = usize::try_from(sec % HASHRATE_WINDOW_SECS as u64).unwrap_or(0);
        if let Some(slot) = self.slots.get_mut(i) {
            if slot.0 != sec {
                *slot = (sec, 0.0);
            }
            slot.1 += difficulty;
        }
    }

    /// Hashes per second: difficulty × 2^32 per share over the window (or the uptime).
    fn hashrate(&self) -> f64 {
        let elapsed = self.start.elapsed().as_secs_f64();
        let now = self.start.elapsed().as_secs();
        let oldest = now.saturating_sub(HASHRATE_WINDOW_SECS as u64 - 1);
        let work: f64 = self
            .slots
            .iter()
            .filter(|(s, _)| *s != u64::MAX && *s >= oldest && *s <= now)
            .map(|(_, d)| d)
            .sum();
        #[allow(clippy::cast_precision_loss, reason = "window length")]
        let secs = elapsed.clamp(1.0, HASHRATE_WINDOW_SECS as f64);
        work * 4_294_967_296.0 / secs
    }
}

/// Live counters of a running pool, rendered in the Prometheus text format.
#[derive(Debug)]
pub struct Metrics {
    sessions: AtomicU64,
    authorized: AtomicU64,
    bans: AtomicU64,
    shares_accepted: AtomicU64,
    shares_rejected: [AtomicU64; REJECT_LABELS.len()],
    blocks_found: AtomicU64,
    blocks_accepted: AtomicU64,
    blocks_rejected: AtomicU64,
    blocks_unsubmitted: AtomicU64,
    templates: AtomicU64,
    template_failures: AtomicU64,
    job_height: AtomicU64,
    work: Mutex<WorkWindow>,
    nodes: Mutex<Vec<NodeHealth>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Live Stratum sessions.
    pub sessions: u64,
    /// Authorized sessions.
    pub authorized: u64,
    /// Bans issued by the Stratum server since start.
    pub bans: u64,
    /// Shares accepted.
    pub shares_accepted: u64,
    /// Shares rejected by the pool, per reason: stale, duplicate, low difficulty, invalid,
    /// internal.
    pub shares_rejected: [u64; 5],
    /// Shares that met the network target and passed the local block checks.
    pub blocks_found: u64,
    /// Blocks a node accepted.
    pub blocks_accepted: u64,
    /// Blocks every node rejected.
    pub blocks_rejected: u64,
    /// Blocks no node answered for (down, timed out) or dropped from a full queue.
    pub blocks_unsubmitted: u64,
    /// Templates fetched.
    pub templates: u64,
    /// Failed template fetches.
    pub template_failures: u64,
    /// Height of the latest job.
    pub job_height: u64,
    /// The hashrate estimate (H/s).
    pub hashrate: f64,
    /// Each node's health.
    pub nodes: Vec<NodeHealth>,
}

impl MetricsSnapshot {
    /// Total shares rejected by the pool.
    pub fn shares_rejected_total(&self) -> u64 {
        self.shares_rejected.iter().sum()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn add(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Zeroed counters.
    pub fn new() -> Self {
        Self {
            sessions: AtomicU64::new(0),
            authorized: AtomicU64::new(0),
            bans: AtomicU64::new(0),
            shares_accepted: AtomicU64::new(0),
            shares_rejected: Default::default(),
            blocks_found: AtomicU64::new(0),
            blocks_accepted: AtomicU64::new(0),
            blocks_rejected: AtomicU64::new(0),
            blocks_unsubmitted: AtomicU64::new(0),
            templates: AtomicU64::new(0),
            template_failures: AtomicU64::new(0),
            job_height: AtomicU64::new(0),
            work: Mutex::new(WorkWindow::new()),
            nodes: Mutex::new(Vec::new()),
        }
    }

    /// Returns a copy of every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut rejected = [0u64; 5];
        for (r, c) in rejected.iter_mut().zip(&self.shares_rejected) {
            *r = l(c);
        }
        MetricsSnapshot {
            sessions: l(&self.sessions),
            authorized: l(&self.authorized),
            bans: l(&self.bans),
            shares_accepted: l(&self.shares_accepted),
            shares_rejected: rejected,
            blocks_found: l(&self.blocks_found),
            blocks_accepted: l(&self.blocks_accepted),
            blocks_rejected: l(&self.blocks_rejected),
            blocks_unsubmitted: l(&self.blocks_unsubmitted),
            templates: l(&self.templates),
            template_failures: l(&self.template_failures),
            job_height: l(&self.job_height),
            hashrate: self.work.lock().map_or(0.0, |w| w.hashrate()),
            nodes: self.nodes.lock().map(|n| n.clone()).unwrap_or_default(),
        }
    }

    fn record_share(&self, difficulty: f64) {
        add(&self.shares_accepted);
        if let Ok(mut w) = self.work.lock() {
            w.add(difficulty);
        }
    }

    fn set_nodes(&self, health: Vec<NodeHealth>) {
        if let Ok(mut n) = self.nodes.lock() {
            *n = health;
        }
    }

    /// Renders the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let s = self.snapshot();
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let one = |v: u64| vec![(String::new(), v.to_string())];
        metric(
            "btq_pool_sessions",
            "gauge",
            "Live Stratum sessions.",
            &one(s.sessions),
        );
        metric(
            "btq_pool_sessions_authorized",
            "gauge",
            "Authorized Stratum sessions.",
            &one(s.authorized),
        );
        metric(
            "btq_pool_bans_total",
            "counter",
            "Address prefixes banned by the Stratum server.",
            &one(s.bans),
        );
        metric(
            "btq_pool_shares_accepted_total",
            "counter",
            "Shares accepted.",
            &one(s.shares_accepted),
        );
        let rejected: Vec<(String, String)> = REJECT_LABELS
            .iter()
            .zip(s.shares_rejected)
            .map(|(l, v)| (format!("{{reason=\"{l}\"}}"), v.to_string()))
            .collect();
        metric(
            "btq_pool_shares_rejected_total",
            "counter",
            "Shares rejected by the pool, by reason.",
            &rejected,
        );
        metric(
            "btq_pool_hashrate",
            "gauge",
            "Hashrate estimate from accepted shares over the last 60 s (H/s).",
            &[(String::new(), format!("{:.3}", s.hashrate))],
        );
        metric(
            "btq_pool_blocks_found_total",
            "counter",
            "Shares meeting the network target that passed the local block checks.",
            &one(s.blocks_found),
        );
        metric(
            "btq_pool_blocks_submitted_total",
            "counter",
            "Found blocks by submission result.",
            &[
                (
                    "{result=\"accepted\"}".into(),
                    s.blocks_accepted.to_string(),
                ),
                (
                    "{result=\"rejected\"}".into(),
                    s.blocks_rejected.to_string(),
                ),
                (
                    "{result=\"unsubmitted\"}".into(),
                    s.blocks_unsubmitted.to_string(),
                ),
            ],
        );
        metric(
            "btq_pool_templates_total",
            "counter",
            "Block templates fetched.",
            &one(s.templates),
        );
        metric(
            "btq_pool_template_failures_total",
            "counter",
            "Failed template fetches (no node answered).",
            &one(s.template_failures),
        );
        metric(
            "btq_pool_job_height",
            "gauge",
            "Height of the block the current job builds.",
            &one(s.job_height),
        );
        let up: Vec<(String, String)> = s
            .nodes
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    format!("{{node=\"{i}\"}}"),
                    u64::from(h.healthy).to_string(),
                )
            })
            .collect();
        metric(
            "btq_pool_node_up",
            "gauge",
            "Whether each configured node is healthy (1) or not (0).",
            &up,
        );
        let fails: Vec<(String, String)> = s
            .nodes
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    format!("{{node=\"{i}\"}}"),
                    h.consecutive_failures.to_string(),
                )
            })
            .collect();
        metric(
            "btq_pool_node_consecutive_failures",
            "gauge",
            "Failed calls to each node since its last success.",
            &fails,
        );
        out
    }
}

/// Longest HTTP request head the metrics endpoint reads.
const MAX_HTTP_HEAD: usize = 8 * 1024;
/// Most metrics connections served at once (more are dropped).
const MAX_HTTP_CONNS: usize = 32;

/// Serves `metrics` over HTTP/1.1 on `listener`: `GET /metrics` answers the text exposition
/// format, anything else 404 (405 for other methods). One request per connection, heads capped
/// at 8 KiB and read within 5 s, at most 32 connections at once.
pub fn spawn_metrics_server(listener: TcpListener, metrics: Arc<Metrics>) -> JoinHandle<()> {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNS));
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                continue;
            };
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let _permit = permit;
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), serve_http(sock, &metrics)).await;
            });
        }
    })
}

async fn serve_http(mut sock: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        if head.len() > MAX_HTTP_HEAD {
            return respond(&mut sock, "431 Request Header Fields Too Large", "").await;
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => respond(&mut sock, "200 OK", &metrics.render()).await,
        ("GET", _) => respond(&mut sock, "404 Not Found", "not found\n").await,
        _ => respond(&mut sock, "405 Method Not Allowed", "").await,
    }
}

async fn respond(sock: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(resp.as_bytes()).await?;
    sock.shutdown().await
}

/// A running pool. Dropping it does not stop it; call [`PoolService::shutdown`].
#[derive(Debug)]
pub struct PoolService {
    stratum_addr: SocketAddr,
    metrics: Arc<Metrics>,
    stratum: btq_stratum::tokio::Handle,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    driver: JoinHandle<()>,
}

impl PoolService {
    /// The address the Stratum server listens on.
    pub fn stratum_addr(&self) -> SocketAddr {
        self.stratum_addr
    }

    /// The live metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The Stratum server's handle (stats, manual broadcasts).
    pub fn stratum(&self) -> &btq_stratum::tokio::Handle {
        &self.stratum
    }

    /// Stops the tasks (a node call still running after 2 s is abandoned), closes every
    /// session and waits for the Stratum driver.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for mut t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(2), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
        self.stratum.shutdown().await;
        let _ = self.driver.await;
    }
}

fn unix_now() -> UnixTime {
    UnixTime::from_secs(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Converts a pool job to the Stratum server's job.
pub fn to_stratum_job(job: &Job) -> btq_stratum::Job {
    #[allow(clippy::cast_sign_loss, reason = "nVersion bits")]
    btq_stratum::Job {
        id: btq_stratum::JobId::from_u64(job.id().to_u64()),
        prevhash: btq_stratum::Job::stratum_prevhash(job.prev_blockhash()),
        coinb1: job.coinb1().to_vec(),
        coinb2: job.coinb2().to_vec(),
        merkle_branch: job.merkle_branch().to_vec(),
        version: job.version() as u32,
        nbits: job.bits().to_consensus(),
        ntime: job.ntime(),
        clean_jobs: job.clean_jobs(),
    }
}

/// Starts the pool: the Stratum server on `listener`, the template task and the block
/// submitter against `nodes`. Returns once the server is accepting (the first template
/// arrives asynchronously).
///
/// # Errors
/// An invalid Stratum or job config.
pub async fn run_pool<N: NodeApi + 'static>(
    nodes: Arc<NodeSet<N>>,
    listener: TcpListener,
    mut config: ServiceConfig,
) -> Result<PoolService, ServiceError> {
    config.job.extranonce1_size = usize::from(config.stratum.extranonce1_size);
    config.job.extranonce2_size = usize::from(config.stratum.extranonce2_size);
    let factory = JobFactory::new(config.job.clone())?;
    let server = btq_stratum::Server::new(config.stratum.clone())?;
    let stratum_addr = listener.local_addr()?;
    let (handle, events, driver) =
        btq_stratum::tokio::spawn(listener, server, config.stratum_options.clone());
    let metrics = Arc::new(Metrics::new());
    metrics.set_nodes(nodes.health());
    let (stop, stop_rx) = watch::channel(false);
    let refresh = Arc::new(Notify::new());
    let (template_tx, template_rx) = mpsc::channel(4);
    let (block_tx, block_rx) = mpsc::channel(config.max_queued_blocks.max(1));
    let log: Logger = config.logger.clone().unwrap_or_else(|| Arc::new(|_| {}));

    let templates = tokio::spawn(template_task(
        Arc::clone(&nodes),
        template_tx,
        Arc::clone(&refresh),
        Arc::clone(&metrics),
        config.template_refresh,
        config.tip_poll,
        stop_rx.clone(),
        Arc::clone(&log),
    ));
    let submitter = tokio::spawn(submit_task(
        Arc::clone(&nodes),
        block_rx,
        Arc::clone(&refresh),
        Arc::clone(&metrics),
        stop_rx.clone(),
        Arc::clone(&log),
    ));
    let host = Host {
        handle: handle.clone(),
        factory,
        validator: ShareValidator::new(config.validator),
        params: config.params,
        metrics: Arc::clone(&metrics),
        block_tx,
        version_mask: config.stratum.version_rolling_mask,
        log,
    };
    let host_task = tokio::spawn(host.run(events, template_rx, stop_rx));
    Ok(PoolService {
        stratum_addr,
        metrics,
        stratum: handle,
        stop,
        tasks: vec![host_task, templates, submitter],
        driver,
    })
}

#[allow(clippy::too_many_arguments, reason = "one task's wiring")]
async fn template_task<N: NodeApi>(
    nodes: Arc<NodeSet<N>>,
    tx: mpsc::Sender<Template>,
    refresh: Arc<Notify>,
    metrics: Arc<Metrics>,
    every: Duration,
    tip_poll: Duration,
    mut stop: watch::Receiver<bool>,
    log: Logger,
) {
    let mut full = tokio::time::interval(every.max(Duration::from_millis(10)));
    let mut poll = tokio::time::interval(tip_poll.max(Duration::from_millis(10)));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tip: Option<BlockHash> = None;
    let mut failing = false;
    loop {
        let fetch = tokio::select! {
            _ = stop.changed() => return,
            _ = full.tick() => true,
            () = refresh.notified() => true,
            _ = poll.tick() => match nodes.get_blockchain_info().await {
                Ok(info) => tip != Some(info.best_block_hash),
                // Counted by the template fetch below, which tries every node again.
                Err(_) => true,
            },
        };
        if !fetch {
            metrics.set_nodes(nodes.health());
            continue;
        }
        match nodes.get_block_template(None).await {
            Ok((i, t)) => {
                add(&metrics.templates);
                if failing {
                    log(&format!(
                        "node {i} answers again; template for height {}",
                        t.height
                    ));
                    failing = false;
                }
                tip = Some(t.prev_blockhash);
                if tx.send(t).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                add(&metrics.template_failures);
                if !failing {
                    log(&format!("no template ({e}); miners keep the last job"));
                    failing = true;
                }
            }
        }
        metrics.set_nodes(nodes.health());
    }
}

async fn submit_task<N: NodeApi>(
    nodes: Arc<NodeSet<N>>,
    mut rx: mpsc::Receiver<Block>,
    refresh: Arc<Notify>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    log: Logger,
) {
    loop {
        let block = tokio::select! {
            _ = stop.changed() => return,
            b = rx.recv() => match b { Some(b) => b, None => return },
        };
        let report = nodes.submit_block(&block).await;
        let hash = block.block_hash();
        match report.best() {
            Some(SubmitOutcome::Accepted) => {
                add(&metrics.blocks_accepted);
                log(&format!("block {hash} accepted"));
            }
            Some(other) => {
                add(&metrics.blocks_rejected);
                log(&format!("block {hash} rejected: {other:?}"));
            }
            None => {
                add(&metrics.blocks_unsubmitted);
                let err = report
                    .results
                    .first()
                    .and_then(|(_, r)| r.as_ref().err())
                    .map_or_else(|| NodeError::NoHealthyNode.to_string(), ToString::to_string);
                log(&format!("block {hash} not submitted: {err}"));
            }
        }
        metrics.set_nodes(nodes.health());
        refresh.notify_one();
    }
}

struct Host {
    handle: btq_stratum::tokio::Handle,
    factory: JobFactory,
    validator: ShareValidator,
    params: &'static ChainParams,
    metrics: Arc<Metrics>,
    block_tx: mpsc::Sender<Block>,
    version_mask: u32,
    log: Logger,
}

impl Host {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<ServerEvent>,
        mut templates: mpsc::Receiver<Template>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut stats_tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                ev = events.recv() => match ev {
                    Some(ev) => self.event(ev).await,
                    None => return,
                },
                t = templates.recv() => match t {
                    Some(t) => self.template(t).await,
                    None => return,
                },
                _ = stats_tick.tick() => {
                    if let Ok((st, _)) = self.handle.stats().await {
                        let store = |c: &AtomicU64, v: usize| {
                            c.store(u64::try_from(v).unwrap_or(u64::MAX), Ordering::Relaxed);
                        };
                        store(&self.metrics.sessions, st.sessions);
                        store(&self.metrics.authorized, st.authorized);
                        self.metrics.bans.store(st.bans_issued, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    async fn template(&mut self, t: Template) {
        match self.factory.build(Arc::new(t)) {
            Ok(job) => {
                let job = self.validator.add_job(job);
                self.metrics
                    .job_height
                    .store(u64::from(job.height()), Ordering::Relaxed);
                if job.clean_jobs() {
                    (self.log)(&format!(
                        "new tip: job {} for height {}",
                        job.id(),
                        job.height()
                    ));
                }
                if let Ok(Err(e)) = self.handle.broadcast_job(to_stratum_job(&job)).await {
                    (self.log)(&format!("job {} not broadcast: {e}", job.id()));
                }
            }
            Err(e) => (self.log)(&format!("job build failed: {e}")),
        }
    }

    async fn event(&mut self, ev: ServerEvent) {
        match ev {
            ServerEvent::Authorize(a) => {
                let _ = self.handle.respond(a.token, Verdict::Accepted).await;
            }
            ServerEvent::Submit(s) => {
                let verdict = self.share(&s);
                let _ = self.handle.respond(s.token, verdict).await;
            }
            ServerEvent::Banned { prefix, reason, .. } => {
                (self.log)(&format!("banned {prefix}: {reason:?}"));
            }
            _ => {}
        }
    }

    fn share(&mut self, s: &Submission) -> Verdict {
        let (Some(en1), Some(en2)) = (
            ExtraNonce::from_slice(s.extranonce1.as_bytes()),
            ExtraNonce::from_slice(s.extranonce2.as_bytes()),
        ) else {
            if let Some(c) = self.metrics.shares_rejected.get(4) {
                add(c);
            }
            return Verdict::InternalError;
        };
        let submit = Submit {
            job_id: crate::JobId::from_u64(s.job_id.to_u64()),
            extranonce2: en2,
            ntime: s.ntime,
            nonce: s.nonce,
            // The Stratum server checked the bits against the session's negotiated mask and
            // resolved the header version (miners may send the bits alone or the full version).
            version_bits: s.version_bits.map(|_| s.version & self.version_mask),
        };
        let now = unix_now();
        let mask = self.version_mask;
        let session = SessionParams::new(Arc::clone(&s.user), en1, s.difficulty, mask);
        let mut result = self.validator.validate(&session, &submit, now);
        // Right after a difficulty change, shares at the previous difficulty still count.
        if let (Err(ShareError::LowDifficulty), Some(prev)) = (&result, s.previous_difficulty) {
            let session = SessionParams::new(Arc::clone(&s.user), en1, prev, mask);
            result = self.validator.validate(&session, &submit, now);
        }
        let accepted = match result {
            Ok(a) => a,
            Err(e) => {
                if let Some(c) = self.metrics.shares_rejected.get(reject_index(&e)) {
                    add(c);
                }
                return verdict_for(&e);
            }
        };
        self.metrics.record_share(accepted.record.difficulty);
        let Some(candidate) = accepted.block else {
            return Verdict::Accepted;
        };
        let block = match assemble_block(&candidate) {
            Ok(b) => b,
            Err(e) => {
                (self.log)(&format!("block assembly failed: {e}"));
                return Verdict::Accepted;
            }
        };
        if let Err(e) = check_block(&block, candidate.job.template(), self.params) {
            (self.log)(&format!(
                "block {} fails local checks: {e}",
                block.block_hash()
            ));
            return Verdict::Accepted;
        }
        add(&self.metrics.blocks_found);
        (self.log)(&format!(
            "block {} found at height {} by {}",
            block.block_hash(),
            candidate.job.height(),
            s.user
        ));
        if self.block_tx.try_send(block).is_err() {
            add(&self.metrics.blocks_unsubmitted);
            (self.log)("block submission queue full: block dropped");
        }
        Verdict::BlockFound
    }
}
