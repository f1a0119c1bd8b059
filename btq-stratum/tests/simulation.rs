//! Deterministic simulation (no sockets, virtual time, seeded splitmix64): one million
//! connect → subscribe → authorize → disconnect cycles from one million distinct IPv4 and IPv6
//! addresses, a share of them hostile, while honest miners keep mining. Every table is checked
//! against its cap every 10,000 cycles.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use btq_core::time::Timestamp;
use btq_stratum::{
    Config, RejectReason, RequestToken, RespondError, Server, ServerEvent, SessionId, Submission,
    Verdict, server::MAX_BAN_NOTICES,
};
use common::{SplitMix64, job};

const SEED: u64 = 0x5eed_2026_0003;
const CYCLES: u64 = 1_000_000;
const HONEST: u32 = 16;

#[derive(Default)]
struct Honest {
    sent: u64,
    answered: u64,
    notifies: u64,
    next_id: u64,
}

struct Sim {
    server: Server,
    now: Timestamp,
    rng: SplitMix64,
    honest: HashMap<SessionId, Honest>,
    auths: Vec<btq_stratum::AuthorizeRequest>,
    submits: Vec<Submission>,
    late: VecDeque<(RequestToken, u64)>,
    buf: Vec<u8>,
    job_id: u64,
    disconnected: u64,
    bans_seen: u64,
    refused: u64,
    late_dropped: u64,
}

impl Sim {
    fn pump(&mut self) {
        while let Some(ev) = self.server.poll_event() {
            match ev {
                ServerEvent::Authorize(a) => self.auths.push(a),
                ServerEvent::Submit(s) => {
                    if self.honest.contains_key(&s.token.session()) {
                        self.server
                            .respond(self.now, s.token, Verdict::Accepted)
                            .unwrap();
                    } else {
                        self.submits.push(s);
                    }
                }
                ServerEvent::Disconnect { session, .. } => {
                    assert!(
                        !self.honest.contains_key(&session),
                        "honest miner disconnected (seed {SEED:#x})"
                    );
                    self.buf.clear();
                    self.server.take_transmit(session, &mut self.buf);
                    assert!(self.server.handle_close(self.now, session));
                    self.disconnected += 1;
                }
                ServerEvent::Banned { .. } => self.bans_seen += 1,
                _ => {}
            }
        }
        self.buf.clear();
        while let Some(s) = self.server.poll_transmit(&mut self.buf) {
            if let Some(h) = self.honest.get_mut(&s) {
                for line in self.buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    if line.starts_with(b"{\"id\":null,\"method\":\"mining.notify\"") {
                        h.notifies += 1;
                    } else if !line.starts_with(b"{\"id\":null") {
                        assert!(
                            line.ends_with(b"\"error\":null}"),
                            "{}",
                            String::from_utf8_lossy(line)
                        );
                        h.answered += 1;
                    }
                }
            }
            self.buf.clear();
        }
    }

    fn tick(&mut self, ms: u64) {
        self.now = self.now.saturating_add_millis(ms);
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
    }

    fn send(&mut self, s: SessionId, bytes: &[u8]) {
        // The session may have been closed by the server already: that is an error we expect.
        let _ = self.server.handle_bytes(self.now, s, bytes);
        self.pump();
    }

    fn answer_auths(&mut self, verdict: Verdict) {
        for a in std::mem::take(&mut self.auths) {
            let r = self.server.respond(self.now, a.token, verdict);
            // The session may have been closed meanwhile (flood, ban): then the answer is dropped.
            assert!(r.is_ok() || matches!(r, Err(RespondError::SessionGone(_))));
        }
        self.pump();
    }

    fn honest_submit(&mut self, s: SessionId) {
        let h = self.honest.get_mut(&s).unwrap();
        h.sent += 1;
        h.next_id += 1;
        let line = format!(
            "{{\"id\":{},\"method\":\"mining.submit\",\"params\":[\"honest\",\"{:x}\",\"{:08x}\",\"66000000\",\"00000000\"]}}\n",
            h.next_id + 100,
            self.job_id,
            h.next_id
        );
        self.send(s, line.as_bytes());
    }

    fn check_caps(&self, cfg: &Config, cycle: u64) {
        let st = self.server.stats();
        let ctx = format!("cycle {cycle}, seed {SEED:#x}: {st:?}");
        assert!(st.sessions <= cfg.max_sessions, "{ctx}");
        assert!(st.slots <= cfg.max_sessions, "{ctx}");
        assert!(st.tracked_prefixes <= cfg.max_tracked_prefixes, "{ctx}");
        assert!(st.bans <= cfg.max_bans, "{ctx}");
        assert!(st.jobs <= cfg.max_jobs, "{ctx}");
        assert!(st.events <= cfg.max_events, "{ctx}");
        assert!(st.ban_notices <= MAX_BAN_NOTICES, "{ctx}");
        assert!(
            st.pending_requests <= st.sessions * cfg.max_pending_per_session,
            "{ctx}"
        );
        assert!(
            st.max_session_pending <= cfg.max_pending_per_session,
            "{ctx}"
        );
        assert!(st.max_session_output <= cfg.max_output_bytes, "{ctx}");
        assert!(st.max_session_line <= cfg.max_line_bytes, "{ctx}");
        assert!(
            st.ready_queue <= st.slots && st.closing_queue <= st.slots,
            "{ctx}"
        );
        let mem = self.server.memory_estimate();
        assert!(mem <= cfg.worst_case_memory().total, "{ctx}: {mem}");
        // Only the honest miners stay connected between cycles.
        assert_eq!(st.sessions, HONEST as usize, "{ctx}");
    }
}

fn address(cycle: u64) -> IpAddr {
    if cycle.is_multiple_of(2) {
        IpAddr::V4(Ipv4Addr::from(
            0x0a00_0000 + u32::try_from(cycle / 2).unwrap(),
        ))
    } else {
        // 64 consecutive IPv6 addresses share a /64, so per-prefix caps and bans bite.
        let i = cycle / 2;
        let hi = 0x2001_0db8_0000_0000u64 | (i >> 6);
        let lo = i & 0x3f;
        IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)))
    }
}

#[test]
fn million_cycle_churn_stays_within_caps() {
    let started = Instant::now();
    let cfg = Config {
        max_sessions: 1000,
        max_tracked_prefixes: 2048,
        max_bans: 512,
        max_events: 2048,
        max_jobs: 8,
        max_sessions_per_prefix: 16,
        max_connects_per_prefix: 60,
        ban_refused_threshold: 100,
        ..Config::default()
    };
    let mut sim = Sim {
        server: Server::new(cfg.clone()).unwrap(),
        now: Timestamp::from_millis(1),
        rng: SplitMix64(SEED),
        honest: HashMap::new(),
        auths: Vec::new(),
        submits: Vec::new(),
        late: VecDeque::new(),
        buf: Vec::new(),
        job_id: 1,
        disconnected: 0,
        bans_seen: 0,
        refused: 0,
        late_dropped: 0,
    };
    sim.server.broadcast_job(&job(1, true)).unwrap();
    for i in 0..HONEST {
        let ip = IpAddr::V4(Ipv4Addr::new(172, 16, 0, u8::try_from(i).unwrap()));
        let s = sim.server.handle_connect(sim.now, ip).unwrap();
        sim.honest.insert(s, Honest::default());
        sim.send(s, b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"honest\"]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"honest\",\"x\"]}\n");
        sim.answer_auths(Verdict::Accepted);
        sim.honest.get_mut(&s).unwrap().answered = 0;
    }
    let honest_ids: Vec<SessionId> = sim.honest.keys().copied().collect();
    let junk = b"\x16\x03\x01\x02\x00garbage that is not json\n".repeat(10);
    let flood =
        b"{\"id\":7,\"method\":\"mining.extranonce.subscribe\",\"params\":[]}\n".repeat(300);
    let oversized = vec![b'A'; 5000];
    let handshake = b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"m\",\"x\"]}\n";

    for cycle in 0..CYCLES {
        sim.tick(1);
        if cycle.is_multiple_of(10_000) && cycle > 0 {
            sim.job_id += 1;
            sim.server
                .broadcast_job(&job(sim.job_id, cycle.is_multiple_of(50_000)))
                .unwrap();
            sim.pump();
        }
        if cycle.is_multiple_of(100) {
            let s = honest_ids[usize::try_from((cycle / 100) % u64::from(HONEST)).unwrap()];
            sim.honest_submit(s);
        }
        // Late answers for sessions long gone.
        while sim.late.front().is_some_and(|(_, due)| *due <= cycle) {
            let (token, _) = sim.late.pop_front().unwrap();
            let v = if sim.rng.below(2) == 0 {
                Verdict::Rejected(RejectReason::Unauthorized)
            } else {
                Verdict::Accepted
            };
            let r = sim.server.respond(sim.now, token, v);
            assert_eq!(
                r,
                Err(RespondError::SessionGone(token.session())),
                "seed {SEED:#x}"
            );
            sim.late_dropped += 1;
        }

        let Ok(s) = sim.server.handle_connect(sim.now, address(cycle)) else {
            sim.refused += 1;
            continue;
        };
        let r = sim.rng.below(100);
        match r {
            0..60 => {
                sim.send(s, handshake);
                let v = if sim.rng.below(20) == 0 {
                    Verdict::NodeUnavailable
                } else {
                    Verdict::Accepted
                };
                sim.answer_auths(v);
                if v == Verdict::Accepted && sim.rng.below(3) == 0 {
                    let line = format!(
                        "{{\"id\":3,\"method\":\"mining.submit\",\"params\":[\"m\",\"{:x}\",\"00000001\",\"66000000\",\"00000000\"]}}\n",
                        sim.job_id
                    );
                    sim.send(s, line.as_bytes());
                    for sub in std::mem::take(&mut sim.submits) {
                        sim.server
                            .respond(sim.now, sub.token, Verdict::Accepted)
                            .unwrap();
                    }
                }
            }
            60..70 => sim.send(s, &junk),
            70..78 => sim.send(s, &flood),
            78..88 => {
                sim.send(s, handshake);
                sim.answer_auths(Verdict::Accepted);
                for i in 0..5 {
                    let line = format!(
                        "{{\"id\":{i},\"method\":\"mining.submit\",\"params\":[\"m\",\"{:x}\",\"0000000{i}\",\"66000000\",\"00000000\"]}}\n",
                        sim.job_id
                    );
                    sim.send(s, line.as_bytes());
                }
                for sub in std::mem::take(&mut sim.submits) {
                    let r = sim.server.respond(
                        sim.now,
                        sub.token,
                        Verdict::Rejected(RejectReason::LowDifficulty),
                    );
                    assert!(r.is_ok() || matches!(r, Err(RespondError::SessionGone(_))));
                }
            }
            88..95 => {
                // Authorize, then vanish before the node answers.
                sim.send(s, handshake);
                for a in std::mem::take(&mut sim.auths) {
                    let due = cycle + 1 + sim.rng.below(50);
                    if sim.late.len() < 1000 {
                        sim.late.push_back((a.token, due));
                    }
                }
                // Half of them also leave a submit in flight.
                if sim.rng.below(2) == 0 {
                    let _ = sim.server.handle_bytes(
                        sim.now,
                        s,
                        b"{\"id\":9,\"method\":\"mining.subscribe\",\"params\":[]}\n{\"id\":10,",
                    );
                }
            }
            _ => sim.send(s, &oversized),
        }
        sim.pump();
        sim.submits.clear();
        sim.auths.clear();
        sim.server.handle_close(sim.now, s);
        sim.pump();

        if (cycle + 1).is_multiple_of(10_000) {
            sim.check_caps(&cfg, cycle + 1);
        }
    }
    let st = sim.server.stats();
    eprintln!(
        "sim: {CYCLES} cycles in {:.1?}; refused {}, server-initiated disconnects {}, bans {} (table {}), late answers dropped {}; stats {st:?}",
        started.elapsed(),
        sim.refused,
        sim.disconnected,
        sim.bans_seen,
        st.bans,
        sim.late_dropped
    );
    assert!(
        sim.bans_seen > 100
            && sim.late_dropped > 10_000
            && sim.refused > 10_000
            && sim.disconnected > 100_000
    );
    // Honest miners: still connected, got every job, every submit answered.
    for (id, h) in &sim.honest {
        assert!(sim.server.session(*id).is_some(), "{id}");
        assert_eq!(
            h.sent, h.answered,
            "{id}: sent {} answered {}",
            h.sent, h.answered
        );
        assert!(h.sent >= CYCLES / 100 / u64::from(HONEST));
        assert!(
            h.notifies >= CYCLES / 10_000,
            "{id}: {} notifies",
            h.notifies
        );
    }
    // After the penalty window passes, nothing of the churn remains but the honest prefixes.
    for _ in 0..700 {
        sim.tick(1000);
        sim.pump();
    }
    for s in &honest_ids {
        sim.honest_submit(*s);
    }
    sim.pump();
    let st = sim.server.stats();
    assert_eq!(st.sessions, HONEST as usize);
    assert_eq!(st.tracked_prefixes, HONEST as usize, "{st:?}");
    assert_eq!(st.bans, 0, "{st:?}");
    assert_eq!(st.pending_requests, 0);
    for h in sim.honest.values() {
        assert_eq!(h.sent, h.answered);
    }
}
