//! Shared test harness: a server with virtual time and per-session output capture.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::net::IpAddr;

use btq_core::time::Timestamp;
use btq_stratum::{Config, Job, JobId, Server, ServerEvent, SessionId, Submission, Verdict};

/// splitmix64: the seeded RNG of the simulations.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

pub fn job(id: u64, clean: bool) -> Job {
    let mut prevhash = [0u8; 32];
    for (i, b) in prevhash.iter_mut().enumerate() {
        *b = u8::try_from(i).unwrap();
    }
    Job {
        id: JobId::from_u64(id),
        prevhash,
        coinb1: vec![0x01, 0x02],
        coinb2: vec![0x03],
        merkle_branch: vec![[0xab; 32]],
        version: 0x2000_0000,
        nbits: 0x1d00_ffff,
        ntime: 0x6600_0000,
        clean_jobs: clean,
    }
}

pub struct Harness {
    pub server: Server,
    pub now: Timestamp,
    pub events: Vec<ServerEvent>,
    pub out: HashMap<SessionId, Vec<u8>>,
    pub disconnects: Vec<(SessionId, btq_stratum::DisconnectReason)>,
}

impl Harness {
    pub fn new(cfg: Config) -> Self {
        Self {
            server: Server::new(cfg).unwrap(),
            now: Timestamp::from_millis(1_000_000),
            events: Vec::new(),
            out: HashMap::new(),
            disconnects: Vec::new(),
        }
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.saturating_add_millis(ms);
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        self.pump();
    }

    pub fn connect(&mut self, ip: &str) -> SessionId {
        self.server
            .handle_connect(self.now, ip.parse::<IpAddr>().unwrap())
            .unwrap()
    }

    /// Sends bytes, then drains events (kept in `events`) and output.
    pub fn send(&mut self, s: SessionId, bytes: &str) {
        self.server
            .handle_bytes(self.now, s, bytes.as_bytes())
            .unwrap();
        self.pump();
    }

    pub fn pump(&mut self) {
        while let Some(ev) = self.server.poll_event() {
            if let ServerEvent::Disconnect { session, reason } = ev {
                self.disconnects.push((session, reason));
            }
            self.events.push(ev);
        }
        let mut buf = Vec::new();
        while let Some(s) = self.server.poll_transmit(&mut buf) {
            self.out.entry(s).or_default().extend_from_slice(&buf);
            buf.clear();
        }
    }

    /// Takes the captured output of a session as text.
    pub fn take(&mut self, s: SessionId) -> String {
        String::from_utf8(self.out.remove(&s).unwrap_or_default()).unwrap()
    }

    pub fn take_lines(&mut self, s: SessionId) -> Vec<String> {
        self.take(s).lines().map(str::to_owned).collect()
    }

    /// Answers every pending authorize with `auth` and every submit with `share`.
    pub fn answer_all(&mut self, auth: Verdict, share: Verdict) -> Vec<Submission> {
        let evs: Vec<_> = std::mem::take(&mut self.events);
        let mut subs = Vec::new();
        for ev in evs {
            match ev {
                ServerEvent::Authorize(a) => {
                    let _ = self.server.respond(self.now, a.token, auth);
                }
                ServerEvent::Submit(s) => {
                    let _ = self.server.respond(self.now, s.token, share);
                    subs.push(s);
                }
                other => self.events.push(other),
            }
        }
        self.pump();
        subs
    }

    /// Connects, subscribes and authorizes `user`, discarding the handshake output.
    pub fn miner(&mut self, ip: &str, user: &str) -> SessionId {
        let s = self.connect(ip);
        self.send(
            s,
            "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"test/1\"]}\n",
        );
        self.send(
            s,
            &format!(
                "{{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"{user}\",\"x\"]}}\n"
            ),
        );
        self.answer_all(Verdict::Accepted, Verdict::Accepted);
        self.take(s);
        s
    }
}

pub fn submit_line(id: u64, user: &str, job: &str, en2: &str, ntime: &str, nonce: &str) -> String {
    format!(
        "{{\"id\":{id},\"method\":\"mining.submit\",\"params\":[\"{user}\",\"{job}\",\"{en2}\",\"{ntime}\",\"{nonce}\"]}}\n"
    )
}
