//! Shared helpers of the end-to-end tests: an embedded chain with a chosen target, the pool
//! service on 127.0.0.1 port 0, a scripted Stratum client and a `/metrics` scraper.
#![allow(dead_code, unreachable_pub, reason = "each test file uses a subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "test code"
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use btq_core::block::fold_merkle_branch;
use btq_core::hash::{BlockHash, sha256d};
use btq_core::pow::{CompactTarget, ShareDifficulty, Target};
use btq_core::script::ScriptBuf;
use btq_core::time::UnixTime;
use btq_pool::service::{Metrics, PoolService, ServiceConfig, run_pool, spawn_metrics_server};
use btq_pool::{
    ChainConfig, EmbeddedChain, EmbeddedNode, ExtraNonce, JobConfig, NodeApi, NodeSet,
    header_bytes, parse_stratum_prevhash, sha256d_80,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// About 65,536 hashes per block (difficulty 2^-16).
pub const BITS_EASY: u32 = 0x1f00_ffff;
/// About 1,048,560 hashes per block (difficulty 2^-12).
pub const BITS_MEDIUM: u32 = 0x1e0f_fff0;

pub fn payout() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&[0x42; 20])
}

pub fn unix_now() -> UnixTime {
    UnixTime::from_secs(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

pub fn chain(bits: u32) -> Arc<Mutex<EmbeddedChain>> {
    let mut c = EmbeddedChain::new_regtest(ChainConfig {
        pow_bits: Some(CompactTarget::from_consensus(bits)),
        ..ChainConfig::default()
    });
    c.set_time(unix_now());
    Arc::new(Mutex::new(c))
}

pub fn node(chain: &Arc<Mutex<EmbeddedChain>>) -> EmbeddedNode {
    EmbeddedNode::new(Arc::clone(chain), Arc::new(unix_now))
}

pub fn height(chain: &Arc<Mutex<EmbeddedChain>>) -> u32 {
    chain.lock().unwrap().height()
}

/// A service config: fixed share difficulty `difficulty` (vardiff off), fast tip polling.
pub fn config(difficulty: f64) -> ServiceConfig {
    let mut cfg = ServiceConfig::new(
        JobConfig::new(payout()),
        btq_core::params::Network::Regtest.params(),
    );
    let d = ShareDifficulty::new(difficulty).unwrap();
    cfg.stratum.vardiff.initial = d;
    cfg.stratum.vardiff.min = ShareDifficulty::new(1e-6).unwrap();
    cfg.stratum.vardiff.enabled = false;
    cfg.template_refresh = Duration::from_secs(5);
    cfg.tip_poll = Duration::from_millis(100);
    cfg
}

pub async fn start<N: NodeApi + 'static>(nodes: NodeSet<N>, cfg: ServiceConfig) -> PoolService {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    run_pool(Arc::new(nodes), listener, cfg).await.unwrap()
}

/// Serves `metrics` on 127.0.0.1 port 0 and returns the address.
pub async fn serve_metrics(metrics: &Arc<Metrics>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    spawn_metrics_server(listener, Arc::clone(metrics));
    addr
}

/// `GET path` over loopback: (status line, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut resp = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// Returns the value of the sample `name` (with its labels) in a scrape.
pub fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in\n{body}"))
        .parse()
        .unwrap()
}

/// Waits until `cond` holds, polling every 50 ms, or panics after `secs` seconds.
pub async fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A job as a miner sees it.
#[derive(Debug, Clone)]
pub struct NotifyJob {
    pub id: String,
    pub prevhash: [u8; 32],
    pub coinb1: Vec<u8>,
    pub coinb2: Vec<u8>,
    pub branch: Vec<[u8; 32]>,
    pub version: i32,
    pub nbits: u32,
    pub ntime: u32,
    pub clean: bool,
}

impl NotifyJob {
    fn parse(p: &Value) -> Self {
        let s = |i: usize| p[i].as_str().unwrap();
        let word = |i: usize| u32::from_str_radix(s(i), 16).unwrap();
        Self {
            id: s(0).to_owned(),
            prevhash: parse_stratum_prevhash(s(1)).unwrap().to_byte_array(),
            coinb1: hex::decode(s(2)).unwrap(),
            coinb2: hex::decode(s(3)).unwrap(),
            branch: p[4]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    hex::decode(h.as_str().unwrap())
                        .unwrap()
                        .try_into()
                        .unwrap()
                })
                .collect(),
            version: word(5) as i32,
            nbits: word(6),
            ntime: word(7),
            clean: p[8].as_bool().unwrap(),
        }
    }

    /// The header hash for an extranonce pair and nonce.
    pub fn hash(&self, en1: &[u8], en2: &[u8], nonce: u32) -> BlockHash {
        self.hash_with_version(self.version, en1, en2, nonce)
    }

    /// The header hash with a rolled version.
    pub fn hash_with_version(&self, version: i32, en1: &[u8], en2: &[u8], nonce: u32) -> BlockHash {
        let mut cb = self.coinb1.clone();
        cb.extend_from_slice(en1);
        cb.extend_from_slice(en2);
        cb.extend_from_slice(&self.coinb2);
        let root = fold_merkle_branch(sha256d(&cb), &self.branch);
        let h = header_bytes(
            version,
            &self.prevhash,
            &root,
            self.ntime,
            self.nbits,
            nonce,
        );
        BlockHash::from_byte_array(sha256d_80(&h))
    }

    pub fn network_target(&self) -> Target {
        CompactTarget::from_consensus(self.nbits)
            .to_target()
            .unwrap()
    }
}

/// What kind of nonce to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Meets the share target but not the network target.
    Share,
    /// Meets the network target.
    Block,
    /// Meets neither.
    Low,
}

/// A Stratum client driven step by step by a test.
pub struct Scripted {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    next_id: u64,
    pub user: String,
    pub en1: Vec<u8>,
    pub en2_size: usize,
    pub difficulty: f64,
    pub jobs: Vec<NotifyJob>,
    /// Negotiated version-rolling mask, and the bits to roll into submitted headers.
    pub version_mask: u32,
    pub version_bits: Option<u32>,
}

impl Scripted {
    /// Connects, subscribes, authorizes and waits for the first job.
    pub async fn connect(addr: SocketAddr, user: &str) -> Self {
        Self::connect_opts(addr, user, false).await
    }

    /// Like [`Scripted::connect`], negotiating BIP 310 version rolling first if `rolling`.
    pub async fn connect_opts(addr: SocketAddr, user: &str, rolling: bool) -> Self {
        let s = TcpStream::connect(addr).await.unwrap();
        let (rd, wr) = s.into_split();
        let mut c = Self {
            rd: BufReader::new(rd),
            wr,
            next_id: 3,
            user: user.to_owned(),
            en1: Vec::new(),
            en2_size: 0,
            difficulty: 0.0,
            jobs: Vec::new(),
            version_mask: 0,
            version_bits: None,
        };
        if rolling {
            c.send(
                json!({"id": 0, "method": "mining.configure", "params": [["version-rolling"],
                {"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2}]}),
            )
            .await;
            let r = c.response(0).await;
            assert_eq!(r["result"]["version-rolling"], json!(true));
            c.version_mask =
                u32::from_str_radix(r["result"]["version-rolling.mask"].as_str().unwrap(), 16)
                    .unwrap();
        }
        c.send(json!({"id": 1, "method": "mining.subscribe", "params": ["scripted/1.0"]}))
            .await;
        let r = c.response(1).await;
        c.en1 = hex::decode(r["result"][1].as_str().unwrap()).unwrap();
        c.en2_size = r["result"][2].as_u64().unwrap() as usize;
        c.send(json!({"id": 2, "method": "mining.authorize", "params": [user, "x"]}))
            .await;
        assert_eq!(c.response(2).await["result"], json!(true));
        while c.jobs.is_empty() || c.difficulty == 0.0 {
            c.read_one().await;
        }
        c
    }

    async fn send(&mut self, v: Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.wr.write_all(line.as_bytes()).await.unwrap();
    }

    /// Reads one line, applying notifications; returns it.
    async fn read_one(&mut self) -> Value {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(20), self.rd.read_line(&mut line))
            .await
            .expect("no message from the pool within 20 s")
            .unwrap();
        assert!(n > 0, "the pool closed the connection");
        let v: Value = serde_json::from_str(&line).unwrap();
        match v["method"].as_str() {
            Some("mining.notify") => self.jobs.push(NotifyJob::parse(&v["params"])),
            Some("mining.set_difficulty") => self.difficulty = v["params"][0].as_f64().unwrap(),
            _ => {}
        }
        v
    }

    /// Reads until the response to `id`.
    async fn response(&mut self, id: u64) -> Value {
        loop {
            let v = self.read_one().await;
            if v["id"].as_u64() == Some(id) && v.get("method").is_none() {
                return v;
            }
        }
    }

    /// Waits for a `mining.notify` with `clean_jobs` after the ones seen so far.
    pub async fn wait_clean_job(&mut self) -> NotifyJob {
        let seen = self.jobs.len();
        loop {
            self.read_one().await;
            if let Some(j) = self
                .jobs
                .get(seen..)
                .and_then(|s| s.iter().find(|j| j.clean))
            {
                return j.clone();
            }
        }
    }

    pub fn latest(&self) -> NotifyJob {
        self.jobs.last().unwrap().clone()
    }

    /// Finds an (extranonce2, nonce) of the wanted kind on `job`, extranonce2 counting from
    /// `en2`.
    pub fn find(&self, job: &NotifyJob, en2: u64, want: Want) -> (Vec<u8>, u32) {
        let share = ShareDifficulty::new(self.difficulty).unwrap().to_target();
        let net = job.network_target();
        for e in en2.. {
            let en2b = ExtraNonce::from_counter(e, self.en2_size)
                .unwrap()
                .as_bytes()
                .to_vec();
            for nonce in 0..1_000_000u32 {
                let h = job.hash_with_version(self.header_version(job), &self.en1, &en2b, nonce);
                let kind = if net.is_met_by(h) {
                    Want::Block
                } else if share.is_met_by(h) {
                    Want::Share
                } else {
                    Want::Low
                };
                if kind == want {
                    return (en2b, nonce);
                }
            }
        }
        unreachable!()
    }

    /// The header version this client mines `job` with.
    pub fn header_version(&self, job: &NotifyJob) -> i32 {
        match self.version_bits {
            None => job.version,
            Some(bits) => {
                ((job.version as u32 & !self.version_mask) | (bits & self.version_mask)) as i32
            }
        }
    }

    /// Submits and returns the response: `Ok(())` for `true`, `Err(code)` for an error.
    pub async fn submit(&mut self, job: &NotifyJob, en2: &[u8], nonce: u32) -> Result<(), i64> {
        let id = self.next_id;
        self.next_id += 1;
        let mut params = json!([
            self.user,
            job.id,
            hex::encode(en2),
            format!("{:08x}", job.ntime),
            format!("{nonce:08x}")
        ]);
        if let Some(bits) = self.version_bits {
            params
                .as_array_mut()
                .unwrap()
                .push(json!(format!("{bits:08x}")));
        }
        self.send(json!({"id": id, "method": "mining.submit", "params": params}))
            .await;
        let r = self.response(id).await;
        if r["result"] == json!(true) {
            Ok(())
        } else {
            Err(r["error"][0].as_i64().unwrap())
        }
    }
}
