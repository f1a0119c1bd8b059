//! Fuzz target: a whole Stratum server driven by arbitrary bytes interpreted as a script of
//! connects, input bytes, closes, verdicts (including late ones), time steps, jobs and bans.
//!
//! Checks: no panic, and after every step every table is within its cap.
#![allow(unexpected_cfgs)] // `fuzzing` is set by cargo-fuzz.
#![cfg_attr(fuzzing, no_main)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use btq_core::time::Timestamp;
use btq_stratum::{
    Config, Job, JobId, RejectReason, RequestToken, Server, ServerEvent, SessionId, Verdict,
};

const LINES: &[&[u8]] = &[
    b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"fuzz\"]}\n",
    b"{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"u\",\"p\"]}\n",
    b"{\"id\":3,\"method\":\"mining.submit\",\"params\":[\"u\",\"1\",\"00000000\",\"66000000\",\"00000000\"]}\n",
    b"{\"id\":4,\"method\":\"mining.configure\",\"params\":[[\"version-rolling\"],{\"version-rolling.mask\":\"ffffffff\"}]}\n",
    b"{\"id\":5,\"method\":\"mining.suggest_difficulty\",\"params\":[0.00015]}\n",
    b"{\"id\":6,\"method\":\"mining.submit\",\"params\":[\"u\",\"1\",\"00000000\",\"66000000\",\"00000000\",\"00a00000\"]}\n",
];

fn config() -> Config {
    Config {
        max_sessions: 8,
        max_tracked_prefixes: 8,
        max_bans: 4,
        max_events: 16,
        max_jobs: 2,
        max_pending_per_session: 4,
        max_sessions_per_prefix: 3,
        max_connects_per_prefix: 6,
        max_junk_per_session: 3,
        ban_junk_threshold: 4,
        ..Config::default()
    }
}

fn check(server: &Server, cfg: &Config) {
    let st = server.stats();
    assert!(st.sessions <= cfg.max_sessions && st.slots <= cfg.max_sessions);
    assert!(st.tracked_prefixes <= cfg.max_tracked_prefixes);
    assert!(st.bans <= cfg.max_bans);
    assert!(st.jobs <= cfg.max_jobs);
    assert!(st.events <= cfg.max_events);
    assert!(st.max_session_pending <= cfg.max_pending_per_session);
    assert!(st.max_session_output <= cfg.max_output_bytes);
    assert!(st.max_session_line <= cfg.max_line_bytes);
    assert!(server.memory_estimate() <= cfg.worst_case_memory().total);
}

fn do_test(data: &[u8]) {
    let cfg = config();
    let Ok(mut server) = Server::new(cfg.clone()) else {
        return;
    };
    let mut now = Timestamp::from_millis(1);
    let mut sessions: Vec<SessionId> = Vec::new();
    let mut tokens: Vec<RequestToken> = Vec::new();
    let mut out = Vec::new();
    let mut it = data.iter().copied();
    let mut job_id = 0u64;
    while let Some(op) = it.next() {
        let arg = it.next().unwrap_or(0);
        let pick = |v: &[SessionId]| v.get(usize::from(arg) % v.len().max(1)).copied();
        match op % 10 {
            0 => {
                let ip = if arg & 1 == 0 {
                    IpAddr::V4(Ipv4Addr::new(10, 0, arg >> 4, arg & 0x0f))
                } else {
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        u16::from(arg >> 5),
                        0,
                        0,
                        0,
                        0,
                        u16::from(arg),
                    ))
                };
                if let Ok(s) = server.handle_connect(now, ip) {
                    sessions.push(s);
                }
            }
            1 => {
                if let Some(s) = pick(&sessions) {
                    let line = LINES
                        .get(usize::from(arg >> 4) % LINES.len())
                        .copied()
                        .unwrap_or(b"");
                    let _ = server.handle_bytes(now, s, line);
                }
            }
            2 => {
                // Raw bytes from the input.
                let n = usize::from(arg % 64);
                let chunk: Vec<u8> = it.by_ref().take(n).collect();
                if let Some(s) = pick(&sessions) {
                    let _ = server.handle_bytes(now, s, &chunk);
                }
            }
            3 => {
                if let Some(s) = pick(&sessions) {
                    server.handle_close(now, s);
                }
            }
            4 => {
                if let Some(t) = tokens.get(usize::from(arg) % tokens.len().max(1)).copied() {
                    let v = match arg % 5 {
                        0 => Verdict::Accepted,
                        1 => Verdict::BlockFound,
                        2 => Verdict::Rejected(RejectReason::LowDifficulty),
                        3 => Verdict::Rejected(RejectReason::Stale),
                        _ => Verdict::NodeUnavailable,
                    };
                    let _ = server.respond(now, t, v);
                }
            }
            5 => {
                now = now.saturating_add_millis(u64::from(arg) * 997);
                if server.poll_timeout().is_some_and(|t| t <= now) {
                    server.handle_timeout(now);
                }
            }
            6 => {
                job_id += 1;
                let _ = server.broadcast_job(&Job {
                    id: JobId::from_u64(job_id % 3),
                    prevhash: [arg; 32],
                    coinb1: vec![arg; usize::from(arg)],
                    coinb2: vec![1; 8],
                    merkle_branch: vec![[2; 32]; usize::from(arg % 4)],
                    version: 0x2000_0000,
                    nbits: 0x1d00_ffff,
                    ntime: 0x6600_0000,
                    clean_jobs: arg & 1 == 1,
                });
            }
            7 => server.ban(
                now,
                IpAddr::V4(Ipv4Addr::new(10, 0, arg >> 4, arg & 0x0f)),
                Duration::from_secs(u64::from(arg)),
            ),
            8 => {
                if let Some(s) = pick(&sessions) {
                    let _ = server.set_difficulty(
                        now,
                        s,
                        btq_core::pow::ShareDifficulty::new(f64::from(arg) / 7.0 + 0.0001)
                            .unwrap_or(btq_core::pow::ShareDifficulty::ONE),
                    );
                }
            }
            _ => {}
        }
        while let Some(ev) = server.poll_event() {
            match ev {
                ServerEvent::Authorize(a) => tokens.push(a.token),
                ServerEvent::Submit(s) => tokens.push(s.token),
                ServerEvent::Disconnect { session, .. } => {
                    out.clear();
                    server.take_transmit(session, &mut out);
                    server.handle_close(now, session);
                }
                _ => {}
            }
        }
        if tokens.len() > 64 {
            tokens.drain(..32);
        }
        out.clear();
        while server.poll_transmit(&mut out).is_some() {
            out.clear();
        }
        sessions.retain(|s| server.session(*s).is_some());
        check(&server, &cfg);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| do_test(data));

#[cfg(not(fuzzing))]
fn main() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    for _ in 0..200 {
        let input: Vec<u8> = (0..512)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[0]
            })
            .collect();
        do_test(&input);
    }
}
