//! A built-in CPU miner speaking Stratum V1 over TCP (feature `runtime-tokio`), for the demo
//! and the end-to-end tests: subscribe, authorize, then hash the latest job on one OS thread.
//!
//! It is a test and demonstration tool, not a production miner: one thread, no SIMD, one
//! extranonce2 per batch of 2^16 nonces. It counts what it does ([`MinerCounters`]) so that a
//! test can assert on it, and notices when the pool closes the connection.

use std::io::{BufRead, BufReader, Read as _, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use btq_core::block::fold_merkle_branch;
use btq_core::hash::{BlockHash, sha256d};
use btq_core::hex;
use btq_core::pow::ShareDifficulty;
use serde_json::Value;

use crate::job::parse_stratum_prevhash;
use crate::share::{ExtraNonce, header_bytes, sha256d_80};

/// Longest line the miner reads from the pool.
const MAX_LINE: usize = 64 * 1024;
/// First request id used for `mining.submit`.
const FIRST_SUBMIT_ID: u64 = 10;

/// What a [`CpuMiner`] did, updated live.
#[derive(Debug, Default)]
pub struct MinerCounters {
    /// Hashes computed.
    pub hashes: AtomicU64,
    /// Shares submitted.
    pub submitted: AtomicU64,
    /// Shares the pool accepted (`result: true`).
    pub accepted: AtomicU64,
    /// Shares the pool rejected (an error object).
    pub rejected: AtomicU64,
    /// `mining.notify` messages received.
    pub notifies: AtomicU64,
    /// Whether the subscribe and authorize requests succeeded.
    pub authorized: AtomicBool,
    /// Whether the pool closed the connection (or it failed) before the miner was stopped.
    pub disconnected: AtomicBool,
}

/// A running CPU miner thread.
#[derive(Debug)]
pub struct CpuMiner {
    stop: Arc<AtomicBool>,
    counters: Arc<MinerCounters>,
    thread: Option<JoinHandle<()>>,
}

impl CpuMiner {
    /// Connects to the pool at `addr` as `user` and starts mining on a new thread.
    pub fn spawn(addr: SocketAddr, user: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(MinerCounters::default());
        let thread = {
            let stop = Arc::clone(&stop);
            let counters = Arc::clone(&counters);
            std::thread::spawn(move || run(addr, &user, &stop, &counters))
        };
        Self {
            stop,
            counters,
            thread: Some(thread),
        }
    }

    /// Returns the live counters.
    pub fn counters(&self) -> &Arc<MinerCounters> {
        &self.counters
    }

    /// Asks the miner to stop (it finishes its current batch).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the miner and waits for its thread.
    pub fn join(mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CpuMiner {
    fn drop(&mut self) {
        self.stop();
    }
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

fn parse_notify(p: &Value) -> Option<MinerJob> {
    let s = |i: usize| p.get(i).and_then(Value::as_str);
    let prev = parse_stratum_prevhash(s(1)?).ok()?;
    let hex32 = |h: &str| hex::decode_array::<4>(h).ok().map(u32::from_be_bytes);
    #[allow(clippy::cast_possible_wrap, reason = "nVersion bits")]
    Some(MinerJob {
        id: s(0)?.to_owned(),
        prevhash: prev.to_byte_array(),
        coinb1: hex::decode_bounded(s(2)?, 10_000).ok()?,
        coinb2: hex::decode_bounded(s(3)?, 10_000).ok()?,
        branch: p
            .get(4)?
            .as_array()?
            .iter()
            .filter_map(|h| hex::decode_array::<32>(h.as_str()?).ok())
            .collect(),
        version: hex32(s(5)?)? as i32,
        nbits: hex32(s(6)?)?,
        ntime: hex32(s(7)?)?,
    })
}

/// Reads lines from the pool, forwards notifications and the subscribe answer, counts share
/// answers.
fn read_loop(
    reader: TcpStream,
    tx: &mpsc::Sender<Value>,
    counters: &MinerCounters,
    stop: &AtomicBool,
) {
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE as u64).read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        match v.get("id").and_then(Value::as_u64) {
            Some(id) if id >= FIRST_SUBMIT_ID => {
                if v.get("result") == Some(&Value::Bool(true)) {
                    counters.accepted.fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(2) => {
                if v.get("result") == Some(&Value::Bool(true)) {
                    counters.authorized.store(true, Ordering::Relaxed);
                }
            }
            _ => {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    }
    // The end of the stream is the pool's doing unless the miner was told to stop.
    if !stop.load(Ordering::Relaxed) {
        counters.disconnected.store(true, Ordering::Relaxed);
    }
}

fn run(addr: SocketAddr, user: &str, stop: &Arc<AtomicBool>, counters: &Arc<MinerCounters>) {
    let Ok(stream) = TcpStream::connect(addr) else {
        counters.disconnected.store(true, Ordering::Relaxed);
        return;
    };
    let Ok(reader) = stream.try_clone() else {
        counters.disconnected.store(true, Ordering::Relaxed);
        return;
    };
    let mut writer = stream;
    let (tx, rx) = mpsc::channel::<Value>();
    {
        let counters = Arc::clone(counters);
        let stop = Arc::clone(stop);
        std::thread::spawn(move || read_loop(reader, &tx, &counters, &stop));
    }
    let user_json = Value::from(user).to_string();
    let hello = format!(
        "{{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"btq-pool-cpuminer/0.1\"]}}\n{{\"id\":2,\"method\":\"mining.authorize\",\"params\":[{user_json},\"x\"]}}\n"
    );
    if writer.write_all(hello.as_bytes()).is_err() {
        return;
    }
    let mut en1 = Vec::new();
    let mut en2_size = 4usize;
    let mut target = ShareDifficulty::ONE.to_target();
    let mut job: Option<MinerJob> = None;
    let mut en2_counter = 0u64;
    let mut next_id = FIRST_SUBMIT_ID;
    while !stop.load(Ordering::Relaxed) && !counters.disconnected.load(Ordering::Relaxed) {
        while let Ok(msg) = rx.try_recv() {
            match msg.get("method").and_then(Value::as_str) {
                Some("mining.notify") => {
                    if let Some(j) = msg.get("params").and_then(parse_notify) {
                        counters.notifies.fetch_add(1, Ordering::Relaxed);
                        job = Some(j);
                    }
                }
                Some("mining.set_difficulty") => {
                    let d = msg
                        .get("params")
                        .and_then(|p| p.get(0))
                        .and_then(Value::as_f64)
                        .and_then(|d| ShareDifficulty::new(d).ok());
                    if let Some(d) = d {
                        target = d.to_target();
                    }
                }
                _ if msg.get("id").and_then(Value::as_u64) == Some(1) => {
                    let r = msg.get("result");
                    en1 = r
                        .and_then(|r| r.get(1))
                        .and_then(Value::as_str)
                        .and_then(|h| hex::decode_bounded(h, 32).ok())
                        .unwrap_or_default();
                    en2_size = r
                        .and_then(|r| r.get(2))
                        .and_then(Value::as_u64)
                        .and_then(|n| usize::try_from(n).ok())
                        .unwrap_or(4)
                        .clamp(1, 8);
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
        let Some(en2) = ExtraNonce::from_counter(en2_counter, en2_size) else {
            return;
        };
        let mut cb = j.coinb1.clone();
        cb.extend_from_slice(&en1);
        cb.extend_from_slice(en2.as_bytes());
        cb.extend_from_slice(&j.coinb2);
        let root = fold_merkle_branch(sha256d(&cb), &j.branch);
        for nonce in 0..65_536u32 {
            let h = header_bytes(j.version, &j.prevhash, &root, j.ntime, j.nbits, nonce);
            let hash = BlockHash::from_byte_array(sha256d_80(&h));
            if target.is_met_by(hash) {
                let line = format!(
                    "{{\"id\":{next_id},\"method\":\"mining.submit\",\"params\":[{user_json},\"{}\",\"{}\",\"{:08x}\",\"{nonce:08x}\"]}}\n",
                    j.id,
                    hex::encode(en2.as_bytes()),
                    j.ntime
                );
                next_id = next_id.wrapping_add(1);
                if writer.write_all(line.as_bytes()).is_err() {
                    counters.disconnected.store(true, Ordering::Relaxed);
                    return;
                }
                counters.submitted.fetch_add(1, Ordering::Relaxed);
            }
        }
        counters.hashes.fetch_add(65_536, Ordering::Relaxed);
    }
    let _ = writer.shutdown(std::net::Shutdown::Both);
}
