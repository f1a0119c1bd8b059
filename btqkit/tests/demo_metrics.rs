//! `btqkit demo --metrics`: the demo's Prometheus endpoint scraped over loopback while its
//! built-in miners are connected, then the demo stops by itself with a summary. Bounded: an
//! 8-second demo on ephemeral 127.0.0.1 ports.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    resp.split_once("\r\n\r\n").unwrap().1.to_owned()
}

fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{body}"))
        .parse()
        .unwrap()
}

#[test]
fn demo_serves_metrics_while_mining() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_btqkit"))
        .args([
            "demo",
            "--stratum",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--miners",
            "2",
            "--duration",
            "8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let addr: SocketAddr = loop {
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        lines.push(line.clone());
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            break rest.strip_suffix("/metrics").unwrap().parse().unwrap();
        }
    };
    // Poll until both miners are in and a block was accepted.
    let end = Instant::now() + Duration::from_secs(7);
    let body = loop {
        let body = scrape(addr);
        if sample(&body, "btq_pool_sessions") == 2.0
            && sample(&body, "btq_pool_sessions_authorized") == 2.0
            && sample(
                &body,
                "btq_pool_blocks_submitted_total{result=\"accepted\"}",
            ) >= 1.0
        {
            break body;
        }
        assert!(
            Instant::now() < end,
            "never saw 2 sessions and a block:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(sample(&body, "btq_pool_shares_accepted_total") >= 1.0);
    assert!(sample(&body, "btq_pool_hashrate") > 0.0);
    assert_eq!(sample(&body, "btq_pool_node_up{node=\"0\"}"), 1.0);
    assert_eq!(sample(&body, "btq_pool_bans_total"), 0.0);

    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    assert!(status.success());
    let summary = lines.iter().find(|l| l.starts_with("summary: ")).unwrap();
    assert!(!summary.contains("blocks found 0,"), "{summary}");
}
