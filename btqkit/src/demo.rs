//! `btqkit demo`: a whole pool on one machine with no node and no database. The embedded
//! regtest chain, the Stratum server on loopback (btq-stratum's tokio driver) and a few built-in
//! CPU miners speaking real Stratum over TCP; live progress, then a summary.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use btq_core::pow::ShareDifficulty;
use btq_core::script::ScriptBuf;
use btq_core::time::UnixTime;
use btq_pool::{
    ChainConfig, DEFAULT_VERSION_MASK, EmbeddedChain, ExtraNonce, JobConfig, JobFactory,
    SessionParams, ShareError, ShareValidator, Submit, SubmitOutcome, ValidatorConfig,
    assemble_block,
};
use btq_stratum::{Config, ServerEvent, Verdict};

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
}

fn unix_now() -> UnixTime {
    UnixTime::from_secs(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    rejected: AtomicU64,
    blocks: AtomicU64,
    work: Mutex<f64>,
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
    let payout = ScriptBuf::new_p2wpkh(&[0x42; 20]);
    let mut job_config = JobConfig::new(payout.clone());
    let mut cfg = Config::default();
    job_config.extranonce1_size = usize::from(cfg.extranonce1_size);
    job_config.extranonce2_size = usize::from(cfg.extranonce2_size);
    cfg.vardiff.initial = difficulty;
    cfg.vardiff.min = ShareDifficulty::new(args.difficulty.min(1e-6)).unwrap_or(difficulty);
    let mut factory = JobFactory::new(job_config)?;
    let mut validator = ShareValidator::new(ValidatorConfig::default());

    let server =
        btq_stratum::Server::new(cfg).map_err(|e| anyhow::anyhow!("stratum config: {e}"))?;
    let listener = tokio::net::TcpListener::bind(args.stratum)
        .await
        .with_context(|| format!("bind {}", args.stratum))?;
    let addr = listener.local_addr()?;
    let (handle, mut events, driver) =
        btq_stratum::tokio::spawn(listener, server, btq_stratum::tokio::Options::default());
    println!(
        "btqkit demo: embedded regtest chain, stratum on {addr}, {} miners",
        args.miners
    );

    let template = chain.get_block_template()?;
    let job = validator.add_job(factory.build(Arc::new(template))?);
    handle
        .broadcast_job(to_stratum_job(&job))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let hashes = Arc::new(AtomicU64::new(0));
    let miners: Vec<_> = (0..args.miners)
        .map(|i| {
            let stop = Arc::clone(&stop);
            let hashes = Arc::clone(&hashes);
            std::thread::spawn(move || cpu_miner(addr, i, &stop, &hashes))
        })
        .collect();

    let start = Instant::now();
    let deadline = (args.duration > 0).then(|| start + Duration::from_secs(args.duration));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_tip = chain.tip_hash();
    let mut last_refresh = Instant::now();
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                match ev {
                    ServerEvent::Authorize(a) => {
                        let _ = handle.respond(a.token, Verdict::Accepted).await;
                    }
                    ServerEvent::Submit(s) => {
                        let Some(en1) = ExtraNonce::from_slice(s.extranonce1.as_bytes()) else { continue };
                        let Some(en2) = ExtraNonce::from_slice(s.extranonce2.as_bytes()) else { continue };
                        let session = SessionParams::new(Arc::clone(&s.user), en1, s.difficulty, DEFAULT_VERSION_MASK);
                        let submit = Submit {
                            job_id: btq_pool::JobId::from_u64(s.job_id.to_u64()),
                            extranonce2: en2,
                            ntime: s.ntime,
                            nonce: s.nonce,
                            version_bits: s.version_bits,
                        };
                        chain.set_time(unix_now());
                        let verdict = match validator.validate(&session, &submit, unix_now()) {
                            Ok(a) => {
                                counters.accepted.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut w) = counters.work.lock() {
                                    *w += a.record.difficulty;
                                }
                                match a.block.map(|c| assemble_block(&c)) {
                                    Some(Ok(block)) => match chain.submit_block(&block) {
                                        SubmitOutcome::Accepted => {
                                            counters.blocks.fetch_add(1, Ordering::Relaxed);
                                            println!("  block {} at height {} by {}", block.block_hash(), chain.height(), s.user);
                                            Verdict::BlockFound
                                        }
                                        _ => Verdict::Accepted,
                                    },
                                    _ => Verdict::Accepted,
                                }
                            }
                            Err(e) => {
                                counters.rejected.fetch_add(1, Ordering::Relaxed);
                                verdict_for(&e)
                            }
                        };
                        let _ = handle.respond(s.token, verdict).await;
                    }
                    _ => {}
                }
                // A new tip: a clean job at once.
                if chain.tip_hash() != last_tip {
                    last_tip = chain.tip_hash();
                    last_refresh = Instant::now();
                    let template = chain.get_block_template()?;
                    let job = validator.add_job(factory.build(Arc::new(template))?);
                    let _ = handle.broadcast_job(to_stratum_job(&job)).await;
                }
            }
            _ = tick.tick() => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if last_refresh.elapsed() >= Duration::from_secs(30) {
                    last_refresh = Instant::now();
                    chain.set_time(unix_now());
                    let template = chain.get_block_template()?;
                    let job = validator.add_job(factory.build(Arc::new(template))?);
                    let _ = handle.broadcast_job(to_stratum_job(&job)).await;
                }
                let secs = start.elapsed().as_secs_f64().max(1e-3);
                #[allow(clippy::cast_precision_loss, reason = "display only")]
                let rate = hashes.load(Ordering::Relaxed) as f64 / secs;
                println!(
                    "  {:>4.0}s  height {:>4}  hashrate {:>8.2} MH/s  shares {} ok / {} rejected  blocks {}",
                    secs, chain.height(), rate / 1e6,
                    counters.accepted.load(Ordering::Relaxed),
                    counters.rejected.load(Ordering::Relaxed),
                    counters.blocks.load(Ordering::Relaxed),
                );
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    for m in miners {
        let _ = m.join();
    }
    handle.shutdown().await;
    let _ = driver.await;
    let paid = chain
        .utxos_for(&payout)
        .iter()
        .map(|(_, c)| c.value)
        .sum::<u64>();
    println!(
        "summary: {:.1}s, chain height {}, blocks found {}, shares {} accepted / {} rejected, pool address balance {} sat ({} immature)",
        start.elapsed().as_secs_f64(),
        chain.height(),
        counters.blocks.load(Ordering::Relaxed),
        counters.accepted.load(Ordering::Relaxed),
        counters.rejected.load(Ordering::Relaxed),
        paid,
        if chain.height() < 100 { "all" } else { "some" },
    );
    Ok(())
}

/// The work a miner holds.
struct MinerJob {
    id: String,
    prevhash: [u8; 32],
    coinb1: Vec<u8>,
    coinb2: Vec<u8>,
    branch: Vec<[u8; 32]>,
    version: i32,
    nbits: u32,
    ntime: u32,
}

fn parse_notify(p: &serde_json::Value) -> Option<MinerJob> {
    let s = |i: usize| p.get(i).and_then(serde_json::Value::as_str);
    let prev = btq_pool::parse_stratum_prevhash(s(1)?).ok()?;
    let hex32 = |h: &str| {
        btq_core::hex::decode_array::<4>(h)
            .ok()
            .map(u32::from_be_bytes)
    };
    #[allow(clippy::cast_possible_wrap, reason = "nVersion bits")]
    Some(MinerJob {
        id: s(0)?.to_owned(),
        prevhash: prev.to_byte_array(),
        coinb1: btq_core::hex::decode_bounded(s(2)?, 10_000).ok()?,
        coinb2: btq_core::hex::decode_bounded(s(3)?, 10_000).ok()?,
        branch: p
            .get(4)?
            .as_array()?
            .iter()
            .filter_map(|h| btq_core::hex::decode_array::<32>(h.as_str()?).ok())
            .collect(),
        version: hex32(s(5)?)? as i32,
        nbits: hex32(s(6)?)?,
        ntime: hex32(s(7)?)?,
    })
}

/// A CPU miner speaking Stratum V1 over TCP: subscribe, authorize, then hash the latest job.
fn cpu_miner(addr: SocketAddr, index: usize, stop: &AtomicBool, hashes: &AtomicU64) {
    let Ok(stream) = TcpStream::connect(addr) else {
        return;
    };
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let mut writer = stream;
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    let user = format!("qcrt1qdemo.cpu{index}");
    let hello = format!(
        "{{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"btqkit-demo/0.1\"]}}\n{{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"{user}\",\"x\"]}}\n"
    );
    if writer.write_all(hello.as_bytes()).is_err() {
        return;
    }
    let mut en1 = Vec::new();
    let mut en2_size = 4usize;
    let mut target = ShareDifficulty::ONE.to_target();
    let mut job: Option<MinerJob> = None;
    let mut en2_counter = 0u64;
    let mut next_id = 10u64;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(msg) = rx.try_recv() {
            match msg.get("method").and_then(serde_json::Value::as_str) {
                Some("mining.notify") => {
                    if let Some(j) = msg.get("params").and_then(parse_notify) {
                        job = Some(j);
                        en2_counter = en2_counter.wrapping_add(1);
                    }
                }
                Some("mining.set_difficulty") => {
                    let d = msg
                        .get("params")
                        .and_then(|p| p.get(0))
                        .and_then(serde_json::Value::as_f64)
                        .and_then(|d| ShareDifficulty::new(d).ok());
                    if let Some(d) = d {
                        target = d.to_target();
                    }
                }
                _ if msg.get("id").and_then(serde_json::Value::as_u64) == Some(1) => {
                    let r = msg.get("result");
                    en1 = r
                        .and_then(|r| r.get(1))
                        .and_then(serde_json::Value::as_str)
                        .and_then(|h| btq_core::hex::decode_bounded(h, 32).ok())
                        .unwrap_or_default();
                    en2_size = r
                        .and_then(|r| r.get(2))
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|n| usize::try_from(n).ok())
                        .unwrap_or(4)
                        .clamp(1, 16);
                }
                _ => {}
            }
        }
        let Some(j) = &job else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        // One extranonce2 per batch of 2^16 nonces.
        en2_counter = en2_counter.wrapping_add(1);
        let en2 = ExtraNonce::from_counter(en2_counter, en2_size);
        let Some(en2) = en2 else { return };
        let mut cb = j.coinb1.clone();
        cb.extend_from_slice(&en1);
        cb.extend_from_slice(en2.as_bytes());
        cb.extend_from_slice(&j.coinb2);
        let root = btq_core::block::fold_merkle_branch(btq_core::hash::sha256d(&cb), &j.branch);
        for nonce in 0..65_536u32 {
            let h = btq_pool::header_bytes(j.version, &j.prevhash, &root, j.ntime, j.nbits, nonce);
            let hash = btq_core::hash::BlockHash::from_byte_array(btq_pool::sha256d_80(&h));
            if target.is_met_by(hash) {
                let line = format!(
                    "{{\"id\":{next_id},\"method\":\"mining.submit\",\"params\":[\"{user}\",\"{}\",\"{}\",\"{:08x}\",\"{nonce:08x}\"]}}\n",
                    j.id,
                    btq_core::hex::encode(en2.as_bytes()),
                    j.ntime
                );
                next_id = next_id.wrapping_add(1);
                if writer.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
        }
        hashes.fetch_add(65_536, Ordering::Relaxed);
    }
}
