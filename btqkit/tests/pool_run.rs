//! `btqkit pool run --config pool.toml` against a fake BTQ node (JSON-RPC over HTTP/1.1 on
//! 127.0.0.1, answering from btq-pool's embedded chain): a built-in CPU miner finds a block the
//! chain accepts, and `/metrics` is scraped over loopback. Bounded: ephemeral loopback ports,
//! every wait under a timeout, the pool process killed at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use btq_core::time::UnixTime;
use btq_pool::miner::CpuMiner;
use btq_pool::{ChainConfig, EmbeddedChain};
use serde_json::{Value, json};

fn now() -> UnixTime {
    UnixTime::from_secs(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

/// Answers one JSON-RPC request from the chain.
fn answer(chain: &Mutex<EmbeddedChain>, req: &Value) -> Value {
    let mut c = chain.lock().unwrap();
    c.set_time(now());
    let result = match req["method"].as_str().unwrap_or("") {
        "getblocktemplate" => c.get_block_template_json(),
        "submitblock" => {
            let bytes =
                btq_core::hex::decode_bounded(req["params"][0].as_str().unwrap(), 1 << 24).unwrap();
            let block = btq_core::encoding::decode_from_slice(&bytes).unwrap();
            c.submit_block(&block).to_rpc_result()
        }
        "getblockchaininfo" => json!({
            "chain": "regtest", "blocks": c.height(),
            "bestblockhash": c.tip_hash().to_string(), "difficulty": 4.6e-10,
            "mediantime": c.median_time_past(), "initialblockdownload": false
        }),
        _ => Value::Null,
    };
    json!({"result": result, "error": null, "id": req["id"]})
}

/// Serves keep-alive HTTP/1.1 JSON-RPC on one connection.
fn serve(sock: TcpStream, chain: &Mutex<EmbeddedChain>) {
    let mut rd = BufReader::new(sock.try_clone().unwrap());
    let mut wr = sock;
    loop {
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if rd.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.to_ascii_lowercase();
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; len];
        if rd.read_exact(&mut body).is_err() {
            return;
        }
        let req: Value = serde_json::from_slice(&body).unwrap();
        let text = answer(chain, &req).to_string();
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if wr.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn fake_node(chain: Arc<Mutex<EmbeddedChain>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            let chain = Arc::clone(&chain);
            std::thread::spawn(move || serve(sock, &chain));
        }
    });
    addr
}

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

/// The address in a log line `{"ts":..,"msg":"<prefix><addr>..."}`.
fn addr_after(line: &str, prefix: &str) -> Option<SocketAddr> {
    let v: Value = serde_json::from_str(line).ok()?;
    let rest = v["msg"].as_str()?.strip_prefix(prefix)?;
    rest.trim_end_matches("/metrics").parse().ok()
}

#[test]
fn pool_run_mines_against_a_node_and_serves_metrics() {
    let mut c = EmbeddedChain::new_regtest(ChainConfig::default());
    c.set_time(now());
    let chain = Arc::new(Mutex::new(c));
    let node = fake_node(Arc::clone(&chain));
    let dir = tempfile_dir();
    let config = dir.join("pool.toml");
    std::fs::write(
        &config,
        format!(
            "network = \"regtest\"\npayout_script = \"0014{}\"\ntemplate_refresh_secs = 5\ntip_poll_ms = 200\nmetrics = \"127.0.0.1:0\"\n[[listen]]\naddr = \"127.0.0.1:0\"\ndifficulty = 0.0001\n[[nodes]]\nurl = \"http://{node}/\"\ntimeout_secs = 5\n",
            "42".repeat(20)
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_btqkit"))
        .args(["pool", "run", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let (mut stratum, mut metrics) = (None, None);
    while stratum.is_none() || metrics.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        stratum = stratum.or_else(|| addr_after(&line, "stratum listening on "));
        metrics = metrics.or_else(|| addr_after(&line, "metrics on http://"));
    }
    let (stratum, metrics) = (stratum.unwrap(), metrics.unwrap());

    let miner = CpuMiner::spawn(stratum, "qcrt1qpoolrun.cpu0".into());
    let end = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let body = scrape(metrics);
        if sample(&body, "btq_pool_sessions_authorized") == 1.0
            && sample(
                &body,
                "btq_pool_blocks_submitted_total{result=\"accepted\"}",
            ) >= 1.0
        {
            break body;
        }
        assert!(
            Instant::now() < end,
            "no accepted block within 60 s:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    miner.join();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    assert!(chain.lock().unwrap().height() >= 1);
    assert_eq!(sample(&body, "btq_pool_sessions"), 1.0);
    assert!(sample(&body, "btq_pool_shares_accepted_total") >= 1.0);
    assert!(sample(&body, "btq_pool_templates_total") >= 1.0);
    assert_eq!(sample(&body, "btq_pool_node_up{node=\"0\"}"), 1.0);
    assert_eq!(sample(&body, "btq_pool_template_failures_total"), 0.0);
}

/// A fresh directory under the system temp dir.
fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "btqkit-pool-run-{}-{}",
        std::process::id(),
        now().as_secs()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
