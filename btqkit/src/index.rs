//! `btqkit index`: follow the node into an index (`sync`) and serve it over HTTP (`serve`).
//!
//! `sync --listen ADDR` does both in one process over one store (the only way with a redb file,
//! which one process locks): the blocking sync loop runs on its own thread, the HTTP API on a
//! tokio runtime, and readers see only committed snapshots. Ctrl-C stops both; with `--once`
//! the server stops when the sync has reached the node's tip. The HTTP API asks the sync's node
//! for raw transactions (`/tx/:txid`); `serve --rpc URL` does the same for a separate server.
//!
//! `sync --zmq-block ENDPOINT` subscribes to the node's `hashblock` ZMQ topic and wakes the sync
//! loop at once; the poll interval stays the fallback for lost notifications and ZMQ errors.
//!
//! Needs `btq-index = { workspace = true, features = ["runtime-tokio", "backend-postgres"] }`
//! and `tokio.workspace = true` in btqkit's dependencies (and `zeromq` for `--zmq-block`).

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use btq_core::params::Network;
use btq_index::driver::{BlockSource, DirSource, Progress, SyncOptions, Syncer};
use btq_index::rpc::{RpcAuth, RpcClient};
use btq_index::{ChainSync, Config, Indexer, Pool, PostgresStore, RedbStore, Store};
use clap::{Args, Subcommand};

/// The indexer.
#[derive(Debug, Subcommand)]
pub(crate) enum IndexCommand {
    /// Follow the node (or a directory of block files) into the index; handles reorgs and
    /// resumes after a crash.
    Sync(SyncArgs),
    /// Serve the index as an Esplora-style HTTP JSON API.
    Serve(ServeArgs),
}

/// Where the index lives.
#[derive(Debug, Args)]
pub(crate) struct DbArgs {
    /// redb database file (created if missing).
    #[arg(long, required_unless_present = "postgres")]
    db: Option<PathBuf>,
    /// PostgreSQL connection string instead of --db (e.g. "host=127.0.0.1 user=btq").
    #[arg(long, conflicts_with = "db")]
    postgres: Option<String>,
    /// PostgreSQL schema holding the tables.
    #[arg(long, default_value = "btq_index")]
    schema: String,
}

/// `btqkit index sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Node RPC URL, e.g. http://127.0.0.1:18443.
    #[arg(long, required_unless_present = "from_dir")]
    rpc: Option<String>,
    /// The node's .cookie file.
    #[arg(long, conflicts_with_all = ["user", "password"])]
    cookie: Option<PathBuf>,
    /// RPC user.
    #[arg(long, requires = "password")]
    user: Option<String>,
    /// RPC password.
    #[arg(long, requires = "user")]
    password: Option<String>,
    /// Index block files `<height>.blk` from this directory instead of the node.
    #[arg(long, conflicts_with = "rpc")]
    from_dir: Option<PathBuf>,
    /// Sync to the node's tip and exit.
    #[arg(long)]
    once: bool,
    /// Seconds between polls of the node once caught up.
    #[arg(long, default_value_t = 5)]
    poll_secs: u64,
    /// Reorg depth limit: deeper reorgs stop the sync (undo data is kept for twice as many
    /// blocks).
    #[arg(long, default_value_t = btq_index::DEFAULT_REORG_DEPTH_LIMIT)]
    reorg_limit: u32,
    /// On a reorg deeper than the limit, resync from the fork point instead of stopping (with
    /// the undo data kept, up to twice the limit; deeper still, clear the index and reindex).
    #[arg(long)]
    resync_on_deep_reorg: bool,
    /// Pool list (JSON array of {"name", "tags": [..], "payout_scripts": [hex..]}).
    #[arg(long)]
    pools: Option<PathBuf>,
    /// Blocks per commit during initial sync.
    #[arg(long, default_value_t = 1000)]
    batch: u32,
    /// Also serve the HTTP API on this address from the same process and store.
    #[arg(long)]
    listen: Option<String>,
    /// The node's ZMQ `hashblock` publisher (`-zmqpubhashblock`), e.g. tcp://127.0.0.1:28332:
    /// a new block wakes the sync at once; polling stays the fallback, so a lost notification or
    /// a ZMQ failure (logged) only delays until the next poll.
    #[arg(long, value_name = "ENDPOINT", conflicts_with = "from_dir")]
    zmq_block: Option<String>,
    /// Network whose address strings the HTTP API accepts and renders (with --listen).
    #[arg(long, default_value = "main")]
    network: String,
}

/// `btqkit index serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3002")]
    listen: String,
    /// Network whose address strings are accepted and rendered.
    #[arg(long, default_value = "main")]
    network: String,
    /// Node RPC URL: `/tx/:txid` then answers full transactions (fetched from the node) and
    /// `/tx/:txid/hex` and `/raw` work; without it `/tx/:txid` answers what the index has.
    #[arg(long)]
    rpc: Option<String>,
    /// The node's .cookie file.
    #[arg(long, requires = "rpc", conflicts_with_all = ["user", "password"])]
    cookie: Option<PathBuf>,
    /// RPC user.
    #[arg(long, requires_all = ["rpc", "password"])]
    user: Option<String>,
    /// RPC password.
    #[arg(long, requires = "user")]
    password: Option<String>,
    /// Seconds a node call for `/tx` may take.
    #[arg(long, default_value_t = 10)]
    rpc_timeout_secs: u64,
}

/// Runs an `index` subcommand.
///
/// # Errors
/// Any failure, with context, for the one-line error the binary prints.
pub(crate) fn run(cmd: IndexCommand) -> anyhow::Result<()> {
    match cmd {
        IndexCommand::Sync(a) => sync(a),
        IndexCommand::Serve(a) => serve(a),
    }
}

fn sync(a: SyncArgs) -> anyhow::Result<()> {
    let pools: Vec<Pool> = match &a.pools {
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("parsing pool list {}", p.display()))?,
        None => Vec::new(),
    };
    let indexer = Indexer::new(Config {
        reorg_depth_limit: a.reorg_limit,
        pools,
        ..Config::default()
    })?;
    match (&a.db.db, &a.db.postgres) {
        (Some(path), _) => {
            // Shared: `index serve` in other processes may open the file read-only.
            let store = RedbStore::open_shared(path)
                .with_context(|| format!("opening {}", path.display()))?;
            sync_with(Arc::new(store), indexer, a)
        }
        (None, Some(url)) => {
            let store =
                PostgresStore::connect(url, &a.db.schema).context("connecting to PostgreSQL")?;
            sync_with(Arc::new(store), indexer, a)
        }
        (None, None) => bail!("give --db or --postgres"),
    }
}

/// How long a node call of the HTTP API (`/tx`) may take in `sync --listen`.
const HTTP_NODE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the sync loop wakes before its poll interval is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// The node has a new block.
    Block,
    /// Stop after the current sync.
    Stop,
}

/// Where blocks come from.
enum Source {
    Node(RpcClient),
    Dir(DirSource),
}

fn rpc_auth(cookie: Option<&PathBuf>, user: Option<&String>, password: Option<&String>) -> RpcAuth {
    match (cookie, user, password) {
        (Some(c), _, _) => RpcAuth::Cookie(c.clone()),
        (None, Some(user), Some(password)) => RpcAuth::UserPass {
            user: user.clone(),
            password: password.clone(),
        },
        _ => RpcAuth::None,
    }
}

fn parse_network(s: &str) -> anyhow::Result<Network> {
    s.parse()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("--network")
}

fn sync_with<S: Store + 'static>(
    store: Arc<S>,
    indexer: Indexer,
    a: SyncArgs,
) -> anyhow::Result<()> {
    let (source, http_node) = if let Some(dir) = &a.from_dir {
        (Source::Dir(DirSource::new(dir)), None)
    } else {
        let Some(url) = &a.rpc else {
            bail!("give --rpc or --from-dir");
        };
        let auth = rpc_auth(a.cookie.as_ref(), a.user.as_ref(), a.password.as_ref());
        // The HTTP API asks the same node for raw transactions, with a shorter timeout.
        let http_node = match &a.listen {
            Some(_) => Some(RpcClient::new(url, auth.clone(), HTTP_NODE_TIMEOUT)?),
            None => None,
        };
        let client = RpcClient::new(url, auth, Duration::from_secs(60))?;
        (Source::Node(client), http_node)
    };
    let (wake_tx, wake_rx) = mpsc::channel();
    if a.listen.is_none() && a.zmq_block.is_none() {
        let r = follow(&*store, source, indexer, &a, &wake_rx);
        drop(wake_tx);
        return r;
    }
    let network = parse_network(&a.network)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = match &a.listen {
        Some(listen) => {
            let listener = rt
                .block_on(tokio::net::TcpListener::bind(listen))
                .with_context(|| format!("listening on {listen}"))?;
            let router = btq_index::http::router_with_node(Arc::clone(&store), network, http_node);
            log(&format!("serving on http://{}", listener.local_addr()?));
            Some(rt.spawn(btq_index::http::serve(listener, router, async {
                let _ = stop_rx.await;
            })))
        }
        None => None,
    };
    if let Some(endpoint) = &a.zmq_block {
        rt.spawn(zmq_wake(endpoint.clone(), wake_tx.clone()));
    }
    // The sync loop on its own thread: a long initial sync never holds a runtime worker, and
    // Ctrl-C does not wait for it (every committed batch is durable; the rest is redone).
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let sync_store = Arc::clone(&store);
    std::thread::Builder::new()
        .name("index-sync".into())
        .spawn(move || {
            let r = follow(&*sync_store, source, indexer, &a, &wake_rx);
            let _ = done_tx.send(r);
        })
        .context("starting the sync thread")?;
    let r = rt.block_on(until_done(done_rx, stop_tx, server));
    let _ = wake_tx.send(Wake::Stop);
    rt.shutdown_timeout(Duration::from_secs(5));
    r
}

#[allow(clippy::print_stderr, reason = "the log goes to stderr")]
fn log(line: &str) {
    eprintln!("{line}");
}

/// Waits for the sync loop to end (an error, or `--once` done) or Ctrl-C, then stops the
/// HTTP server.
async fn until_done(
    done: tokio::sync::oneshot::Receiver<anyhow::Result<()>>,
    stop_server: tokio::sync::oneshot::Sender<()>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
) -> anyhow::Result<()> {
    let r = tokio::select! {
        r = done => r.unwrap_or_else(|_| Err(anyhow::anyhow!("the sync thread failed"))),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    let _ = stop_server.send(());
    let Some(server) = server else {
        return r;
    };
    match server.await {
        Ok(Ok(())) => r,
        Ok(Err(e)) => r.and(Err(e.into())),
        Err(e) => r.and(Err(anyhow::anyhow!("the HTTP server failed: {e}"))),
    }
}

/// Seconds between attempts to (re)subscribe after a ZMQ error.
const ZMQ_RETRY: Duration = Duration::from_secs(5);

/// Wakes the sync loop on every `hashblock` notification from `endpoint`, until the loop is
/// gone. Errors are logged and the subscription retried; polling goes on meanwhile.
async fn zmq_wake(endpoint: String, wake: mpsc::Sender<Wake>) {
    loop {
        match zmq_session(&endpoint, &wake).await {
            Ok(()) => return,
            Err(e) => log(&format!(
                "zmq {endpoint}: {e}; polling continues, retrying in {} s",
                ZMQ_RETRY.as_secs()
            )),
        }
        tokio::time::sleep(ZMQ_RETRY).await;
    }
}

/// One subscription: `Ok` when the sync loop is gone.
async fn zmq_session(endpoint: &str, wake: &mpsc::Sender<Wake>) -> zeromq::ZmqResult<()> {
    use zeromq::{Socket, SocketRecv};
    let mut sock = zeromq::SubSocket::new();
    sock.connect(endpoint).await?;
    sock.subscribe("hashblock").await?;
    log(&format!("zmq: subscribed to hashblock on {endpoint}"));
    loop {
        let msg = sock.recv().await?;
        // topic "hashblock", the 32-byte hash, a 4-byte LE sequence number.
        let is_block = msg.get(0).is_some_and(|t| t.as_ref() == b"hashblock")
            && msg.get(1).is_some_and(|h| h.len() == 32);
        if is_block && wake.send(Wake::Block).is_err() {
            return Ok(());
        }
    }
}

fn follow<S: Store>(
    store: &S,
    source: Source,
    indexer: Indexer,
    a: &SyncArgs,
    wake: &mpsc::Receiver<Wake>,
) -> anyhow::Result<()> {
    match source {
        Source::Node(c) => follow_from(store, c, indexer, a, wake),
        Source::Dir(d) => follow_from(store, d, indexer, a, wake),
    }
}

#[allow(clippy::print_stderr, reason = "progress goes to stderr")]
fn follow_from<S: Store, B: BlockSource>(
    store: &S,
    source: B,
    indexer: Indexer,
    a: &SyncArgs,
    wake: &mpsc::Receiver<Wake>,
) -> anyhow::Result<()> {
    let opts = SyncOptions {
        batch_blocks: a.batch.max(1),
        resync_on_deep_reorg: a.resync_on_deep_reorg,
        ..SyncOptions::default()
    };
    let mut syncer = Syncer::new(store, source, ChainSync::new(indexer), opts);
    let mut last = Instant::now();
    let mut report = |p: &Progress| {
        if last.elapsed() >= Duration::from_secs(2) {
            eprintln!("{p}");
            last = Instant::now();
        }
    };
    loop {
        let tip = syncer.sync_to_tip(&mut report).context("sync")?;
        let p = syncer.progress();
        eprintln!(
            "synced to {}: {} blocks, {} txs, {} undone in {:.1}s ({:.0} tx/s)",
            tip.map_or_else(
                || "empty".to_owned(),
                |t| format!("{} {}", t.height, t.hash)
            ),
            p.blocks,
            p.txs,
            p.undone,
            p.elapsed.as_secs_f64(),
            p.tx_per_sec()
        );
        if a.once {
            return Ok(());
        }
        // Wait for the poll interval or a wake-up; a burst of wake-ups syncs once.
        match wake.recv_timeout(Duration::from_secs(a.poll_secs.max(1))) {
            Ok(Wake::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            Ok(Wake::Block) | Err(mpsc::RecvTimeoutError::Timeout) => {
                while let Ok(w) = wake.try_recv() {
                    if w == Wake::Stop {
                        return Ok(());
                    }
                }
            }
        }
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let network = parse_network(&a.network)?;
    // A blocking client: created before the runtime starts.
    let node = match &a.rpc {
        Some(url) => {
            let auth = rpc_auth(a.cookie.as_ref(), a.user.as_ref(), a.password.as_ref());
            let timeout = Duration::from_secs(a.rpc_timeout_secs.max(1));
            Some(RpcClient::new(url, auth, timeout)?)
        }
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match (&a.db.db, &a.db.postgres) {
        (Some(path), _) => {
            // Read-only, beside the `index sync` process that writes the file.
            let store = RedbStore::open_read_only(path).with_context(|| {
                format!(
                    "opening {} read-only (it is created by `btqkit index sync`)",
                    path.display()
                )
            })?;
            rt.block_on(serve_with(Arc::new(store), network, node, &a.listen))
        }
        (None, Some(url)) => {
            let store =
                PostgresStore::connect(url, &a.db.schema).context("connecting to PostgreSQL")?;
            rt.block_on(serve_with(Arc::new(store), network, node, &a.listen))
        }
        (None, None) => bail!("give --db or --postgres"),
    }
}

#[allow(clippy::print_stderr, reason = "startup line goes to stderr")]
async fn serve_with<S: Store + 'static>(
    store: Arc<S>,
    network: Network,
    node: Option<RpcClient>,
    listen: &str,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    eprintln!("serving on http://{}", listener.local_addr()?);
    let router = btq_index::http::router_with_node(store, network, node);
    btq_index::http::serve(listener, router, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
