//! Real sockets on 127.0.0.0/8 with the tokio adapter: thousands of churning connections
//! (junk, floods, drops mid-authorize, oversized lines) while an honest miner keeps mining.
//! Bounded: 3,000 churn connections, at most 64 at a time, and a 60 s overall timeout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use btq_stratum::tokio::{Options, spawn};
use btq_stratum::{Config, Job, JobId, Server, ServerEvent, Verdict};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const CHURN: u32 = 3_000;
const CONCURRENCY: u32 = 64;

fn job(id: u64, clean: bool) -> Job {
    Job {
        id: JobId::from_u64(id),
        prevhash: [7; 32],
        coinb1: vec![1; 50],
        coinb2: vec![2; 40],
        merkle_branch: vec![[3; 32]; 4],
        version: 0x2000_0000,
        nbits: 0x1d00_ffff,
        ntime: 0x6600_0000,
        clean_jobs: clean,
    }
}

async fn connect_from(local: Ipv4Addr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(IpAddr::V4(local), 0))?;
    sock.connect(server).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_on_loopback_keeps_tables_bounded_and_honest_miner_mining() {
    tokio::time::timeout(Duration::from_secs(60), run())
        .await
        .expect("test timed out");
}

async fn run() {
    let min_end = tokio::time::Instant::now() + Duration::from_secs(2);
    let cfg = Config {
        max_sessions: 200,
        max_tracked_prefixes: 256,
        max_bans: 16,
        max_sessions_per_prefix: 32,
        max_connects_per_prefix: 10_000,
        ban_junk_threshold: 16,
        ..Config::default()
    };
    let caps = cfg.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (handle, mut events, driver) =
        spawn(listener, Server::new(cfg).unwrap(), Options::default());
    handle.broadcast_job(job(1, true)).await.unwrap().unwrap();

    // The host: accepts every authorize and share.
    let host = {
        let handle = handle.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let token = match ev {
                    ServerEvent::Authorize(a) => a.token,
                    ServerEvent::Submit(s) => s.token,
                    _ => continue,
                };
                if handle.respond(token, Verdict::Accepted).await.is_err() {
                    break;
                }
            }
        })
    };

    // Jobs every 100 ms.
    let done = Arc::new(AtomicBool::new(false));
    let jobs = {
        let (handle, done) = (handle.clone(), done.clone());
        tokio::spawn(async move {
            let mut id = 2;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = handle.broadcast_job(job(id, id.is_multiple_of(10))).await;
                id += 1;
            }
        })
    };

    // The honest miner on 127.0.0.1.
    let answered = Arc::new(AtomicU64::new(0));
    let notifies = Arc::new(AtomicU64::new(0));
    let honest = {
        let (done, answered, notifies) = (done.clone(), answered.clone(), notifies.clone());
        tokio::spawn(async move {
            let stream = connect_from(Ipv4Addr::LOCALHOST, addr).await.unwrap();
            let (rd, mut wr) = stream.into_split();
            wr.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"honest/1\"]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"honest\",\"x\"]}\n").await.unwrap();
            let current = Arc::new(std::sync::Mutex::new(String::from("1")));
            let reader = {
                let (answered, notifies, current) =
                    (answered.clone(), notifies.clone(), current.clone());
                tokio::spawn(async move {
                    let mut lines = BufReader::new(rd).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                        if v["method"] == "mining.notify" {
                            notifies.fetch_add(1, Ordering::Relaxed);
                            *current.lock().unwrap() = v["params"][0].as_str().unwrap().to_owned();
                        } else if v["id"].as_u64().is_some_and(|id| id >= 100) {
                            // A share racing a clean job is legitimately stale (21); nothing
                            // else may be refused.
                            let stale = v["error"][0] == 21;
                            assert!(
                                stale || (v["error"].is_null() && v["result"] == true),
                                "{line}"
                            );
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            };
            let mut sent = 0u64;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let job = current.lock().unwrap().clone();
                let line = format!(
                    "{{\"id\":{},\"method\":\"mining.submit\",\"params\":[\"honest\",\"{job}\",\"{:08x}\",\"66000000\",\"00000000\"]}}\n",
                    100 + sent,
                    sent
                );
                wr.write_all(line.as_bytes()).await.unwrap();
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(wr);
            reader.abort();
            sent
        })
    };

    // Monitor: tables within caps throughout.
    let monitor = {
        let (handle, done) = (handle.clone(), done.clone());
        tokio::spawn(async move {
            let mut samples = 0;
            while !done.load(Ordering::Relaxed) {
                let (st, conns) = handle.stats().await.unwrap();
                assert!(
                    st.sessions <= caps.max_sessions && conns <= caps.max_sessions,
                    "{st:?}"
                );
                assert!(st.slots <= caps.max_sessions, "{st:?}");
                assert!(st.tracked_prefixes <= caps.max_tracked_prefixes, "{st:?}");
                assert!(st.bans <= caps.max_bans, "{st:?}");
                assert!(st.jobs <= caps.max_jobs, "{st:?}");
                assert!(st.events <= caps.max_events, "{st:?}");
                assert!(st.max_session_output <= caps.max_output_bytes, "{st:?}");
                assert!(
                    st.max_session_pending <= caps.max_pending_per_session,
                    "{st:?}"
                );
                samples += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            samples
        })
    };

    // Churn: 3,000 connections from 127.0.0.2..=127.0.0.41, 64 at a time.
    let mut batch = Vec::new();
    for i in 0..CHURN {
        let local = Ipv4Addr::new(127, 0, 0, 2 + u8::try_from(i % 40).unwrap());
        batch.push(tokio::spawn(async move {
            let Ok(mut s) = connect_from(local, addr).await else { return };
            let r = match i % 6 {
                0 => s.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"m\",\"x\"]}\n").await,
                1 => s.write_all(&b"\x16\x03\x01 not json at all\n".repeat(12)).await,
                2 => s.write_all(&b"{\"id\":1,\"method\":\"mining.extranonce.subscribe\",\"params\":[]}\n".repeat(400)).await,
                3 => s.write_all(&[b'A'; 6000]).await,
                4 => Ok(()),
                _ => s.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n{\"id\":2,\"method\":\"mining.auth").await,
            };
            let _ = r;
            if i.is_multiple_of(3) {
                let mut buf = [0u8; 512];
                let _ = tokio::time::timeout(Duration::from_millis(20), tokio::io::AsyncReadExt::read(&mut s, &mut buf)).await;
            }
        }));
        if batch.len() >= usize::try_from(CONCURRENCY).unwrap() {
            for t in batch.drain(..) {
                t.await.unwrap();
            }
        }
    }
    for t in batch.drain(..) {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Keep the honest miner going for at least 2 s overall, however fast the churn was.
    tokio::time::sleep_until(min_end).await;
    done.store(true, Ordering::Relaxed);
    let sent = honest.await.unwrap();
    let samples = monitor.await.unwrap();
    jobs.await.unwrap();
    let (st, conns) = handle.stats().await.unwrap();
    eprintln!(
        "loopback: honest sent {sent}, answered {}, notifies {}; {samples} samples; final {st:?}, conns {conns}",
        answered.load(Ordering::Relaxed),
        notifies.load(Ordering::Relaxed)
    );
    assert!(sent >= 20, "{sent}");
    assert_eq!(
        answered.load(Ordering::Relaxed),
        sent,
        "every honest submit answered"
    );
    assert!(notifies.load(Ordering::Relaxed) >= 5);
    assert!(st.connects_accepted + st.connects_refused >= u64::from(CHURN) / 2);
    assert!(st.bans_issued > 0);
    handle.shutdown().await;
    driver.await.unwrap();
    host.await.unwrap();
}
