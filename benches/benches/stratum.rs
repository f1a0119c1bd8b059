//! Stratum benchmarks: parsing a `mining.submit` line, full session handling of a submit
//! (parse, checks, event, verdict, response), `mining.notify` broadcast to 10,000 sessions, and
//! memory per idle session (computed from sizes, printed, not timed).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::panic
)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use btq_core::time::Timestamp;
use btq_stratum::message::parse_request;
use btq_stratum::{Config, Job, JobId, Server, ServerEvent, SessionId, VardiffConfig, Verdict};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SUBMIT: &[u8] = b"{\"id\":4,\"method\":\"mining.submit\",\"params\":[\"btq1qexampleminer.rig1\",\"1a\",\"0000002a\",\"66000010\",\"deadbeef\",\"00a00000\"]}\n";

fn job(id: u64, clean: bool) -> Job {
    Job {
        id: JobId::from_u64(id),
        prevhash: [7; 32],
        coinb1: vec![1; 60],
        coinb2: vec![2; 50],
        merkle_branch: vec![[3; 32]; 12],
        version: 0x2000_0000,
        nbits: 0x1d00_ffff,
        ntime: 0x6600_0000,
        clean_jobs: clean,
    }
}

fn bench_config(max_sessions: usize) -> Config {
    Config {
        max_sessions,
        max_tracked_prefixes: max_sessions.max(65_536),
        max_connects_per_prefix: u32::MAX,
        line_rate: u32::MAX,
        line_burst: u32::MAX,
        vardiff: VardiffConfig {
            enabled: false,
            ..VardiffConfig::default()
        },
        ..Config::default()
    }
}

fn authorized(server: &mut Server, now: Timestamp, ip: IpAddr) -> SessionId {
    let s = server.handle_connect(now, ip).unwrap();
    server
        .handle_bytes(
            now,
            s,
            b"{\"id\":1,\"method\":\"mining.configure\",\"params\":[[\"version-rolling\"],{\"version-rolling.mask\":\"ffffffff\"}]}\n{\"id\":2,\"method\":\"mining.subscribe\",\"params\":[\"bench\"]}\n{\"id\":3,\"method\":\"mining.authorize\",\"params\":[\"btq1qexampleminer.rig1\",\"x\"]}\n",
        )
        .unwrap();
    while let Some(ev) = server.poll_event() {
        if let ServerEvent::Authorize(a) = ev {
            server.respond(now, a.token, Verdict::Accepted).unwrap();
        }
    }
    let mut sink = Vec::new();
    while server.poll_transmit(&mut sink).is_some() {
        sink.clear();
    }
    s
}

fn parse_submit(c: &mut Criterion) {
    let mut g = c.benchmark_group("stratum");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse mining.submit", |b| {
        b.iter(|| {
            black_box(parse_request(black_box(SUBMIT.strip_suffix(b"\n").unwrap())).unwrap())
        });
    });
    g.finish();
}

fn session_submit(c: &mut Criterion) {
    let mut server = Server::new(bench_config(16)).unwrap();
    let now = Timestamp::from_millis(1);
    server.broadcast_job(&job(0x1a, true)).unwrap();
    let s = authorized(&mut server, now, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let mut out = Vec::with_capacity(1024);
    let mut g = c.benchmark_group("stratum");
    g.throughput(Throughput::Elements(1));
    g.bench_function(
        "session submit: parse, check, event, verdict, response",
        |b| {
            b.iter(|| {
                server.handle_bytes(now, s, black_box(SUBMIT)).unwrap();
                let Some(ServerEvent::Submit(sub)) = server.poll_event() else {
                    panic!("no submit")
                };
                server.respond(now, sub.token, Verdict::Accepted).unwrap();
                out.clear();
                black_box(server.poll_transmit(&mut out));
            });
        },
    );
    g.finish();
}

fn notify_broadcast(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut server = Server::new(bench_config(N)).unwrap();
    let now = Timestamp::from_millis(1);
    server.broadcast_job(&job(1, true)).unwrap();
    for i in 0..N {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + u32::try_from(i).unwrap()));
        authorized(&mut server, now, ip);
    }
    let base = server.memory_estimate();
    println!(
        "memory per idle authorized session (computed from sizes): {} bytes ({} sessions, server total {} bytes); worst case per default Config: {:?}",
        base / N,
        N,
        base,
        Config::default().worst_case_memory()
    );
    let mut out = Vec::with_capacity(4096);
    let mut id = 2;
    let mut g = c.benchmark_group("stratum");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function(
        "notify broadcast to 10,000 sessions (encode + queue + drain)",
        |b| {
            b.iter(|| {
                id += 1;
                server.broadcast_job(&job(id, false)).unwrap();
                let mut bytes = 0;
                while server.poll_transmit(&mut out).is_some() {
                    bytes += out.len();
                    out.clear();
                }
                black_box(bytes)
            });
        },
    );
    g.finish();
}

criterion_group!(benches, parse_submit, session_submit, notify_broadcast);
criterion_main!(benches);
