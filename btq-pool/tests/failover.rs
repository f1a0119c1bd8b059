//! Node failure: errors, timeouts and a node disappearing mid-run. The pool fails over to the
//! next node, keeps its last job meanwhile, and submission resumes; with `runtime-tokio` the
//! real JSON-RPC client is driven against in-process fake HTTP nodes on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "test helpers"
)]

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use btq_core::block::Block;
use btq_core::time::UnixTime;
use btq_pool::{
    AddressValidation, BlockchainInfo, ChainConfig, EmbeddedChain, EmbeddedNode, MiningInfo,
    NodeApi, NodeError, NodeSet, SubmitOutcome, Template,
};

const UP: u8 = 0;
const ERRORS: u8 = 1;
const DOWN: u8 = 2;

/// A node whose behaviour a test switches: up (delegates to an embedded chain), answering
/// errors, or gone.
struct Flaky {
    inner: EmbeddedNode,
    mode: Arc<AtomicU8>,
    calls: Arc<AtomicUsize>,
}

impl Flaky {
    fn check(&self) -> Result<(), NodeError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.mode.load(Ordering::SeqCst) {
            UP => Ok(()),
            ERRORS => Err(NodeError::Rpc {
                code: -10,
                message: "Bitcoin Core is in initial sync".into(),
            }),
            _ => Err(NodeError::Unreachable),
        }
    }
}

impl NodeApi for Flaky {
    async fn get_block_template(&self, lp: Option<&str>) -> Result<Template, NodeError> {
        self.check()?;
        self.inner.get_block_template(lp).await
    }
    async fn submit_block(&self, block: &Block) -> Result<SubmitOutcome, NodeError> {
        self.check()?;
        self.inner.submit_block(block).await
    }
    async fn get_blockchain_info(&self) -> Result<BlockchainInfo, NodeError> {
        self.check()?;
        self.inner.get_blockchain_info().await
    }
    async fn get_mining_info(&self) -> Result<MiningInfo, NodeError> {
        self.check()?;
        self.inner.get_mining_info().await
    }
    async fn validate_address(&self, a: &str) -> Result<AddressValidation, NodeError> {
        self.check()?;
        self.inner.validate_address(a).await
    }
}

fn embedded() -> EmbeddedNode {
    let chain = Arc::new(Mutex::new(EmbeddedChain::new_regtest(
        ChainConfig::default(),
    )));
    EmbeddedNode::new(chain, Arc::new(|| UnixTime::from_secs(1_800_000_000)))
}

fn mine_on(template: &Template) -> Block {
    use btq_pool::{ExtraNonce, JobConfig, JobFactory, SessionParams, ShareValidator, Submit};
    let mut f = JobFactory::new(JobConfig::new(btq_core::script::ScriptBuf::new_p2wpkh(
        &[1; 20],
    )))
    .unwrap();
    let mut v = ShareValidator::new(Default::default());
    let job = v.add_job(f.build(Arc::new(template.clone())).unwrap());
    let s = SessionParams::new(
        Arc::from("w"),
        ExtraNonce::from_slice(&[0; 4]).unwrap(),
        btq_core::pow::ShareDifficulty::new(1e-10).unwrap(),
        0,
    );
    for nonce in 0.. {
        let sub = Submit {
            job_id: job.id(),
            extranonce2: ExtraNonce::from_slice(&[0; 4]).unwrap(),
            ntime: job.ntime(),
            nonce,
            version_bits: None,
        };
        if let Some(c) = v
            .validate(&s, &sub, UnixTime::from_secs(1_800_000_000))
            .unwrap()
            .block
        {
            return btq_pool::assemble_block(&c).unwrap();
        }
    }
    unreachable!()
}

#[tokio::test]
async fn failover_between_nodes_and_submission_resumes() {
    // Two nodes sharing one chain (as two nodes of one network would agree on it).
    let a = embedded();
    let b = EmbeddedNode::new(
        Arc::clone(a.chain()),
        Arc::new(|| UnixTime::from_secs(1_800_000_000)),
    );
    let (ma, mb) = (Arc::new(AtomicU8::new(UP)), Arc::new(AtomicU8::new(UP)));
    let calls_b = Arc::new(AtomicUsize::new(0));
    let set = NodeSet::new(
        vec![
            Flaky {
                inner: a,
                mode: Arc::clone(&ma),
                calls: Arc::new(AtomicUsize::new(0)),
            },
            Flaky {
                inner: b,
                mode: Arc::clone(&mb),
                calls: Arc::clone(&calls_b),
            },
        ],
        1,
    );
    let (i, t) = set.get_block_template(None).await.unwrap();
    assert_eq!(i, 0);
    assert_eq!(calls_b.load(Ordering::SeqCst), 0);

    // Node 0 answers errors: failover to node 1 within the same call.
    ma.store(ERRORS, Ordering::SeqCst);
    let (i, t2) = set.get_block_template(None).await.unwrap();
    assert_eq!(i, 1);
    assert_eq!(t2.prev_blockhash, t.prev_blockhash);
    assert!(!set.health()[0].healthy);
    assert_eq!(set.active(), Some(1));

    // A block found meanwhile goes to the healthy node only, and is accepted.
    let block = mine_on(&t2);
    let report = set.submit_block(&block).await;
    assert_eq!(report.results.len(), 1);
    assert_eq!(report.best(), Some(&SubmitOutcome::Accepted));

    // Node 1 disappears too: no template, the pool keeps its last job (nothing to assert
    // beyond the typed error), and the block submission is tried on every node.
    mb.store(DOWN, Ordering::SeqCst);
    assert_eq!(
        set.get_block_template(None).await.unwrap_err(),
        NodeError::NoHealthyNode
    );
    let report = set.submit_block(&block).await;
    assert_eq!(report.results.len(), 2);
    assert_eq!(report.best(), None);

    // Node 0 returns; a health check finds it, and work and submission resume.
    ma.store(UP, Ordering::SeqCst);
    assert_eq!(set.check_health().await, 1);
    let (i, t3) = set.get_block_template(None).await.unwrap();
    assert_eq!(i, 0);
    assert_eq!(t3.height, 2);
    let block2 = mine_on(&t3);
    assert_eq!(
        set.submit_block(&block2).await.best(),
        Some(&SubmitOutcome::Accepted)
    );
}

#[cfg(feature = "runtime-tokio")]
mod http {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use btq_pool::rpc::{RpcAuth, RpcClient, RpcConfig};
    use btq_pool::{EmbeddedChain, NodeApi, NodeError, NodeSet, SubmitOutcome};
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::{DOWN, ERRORS, UP};
    const HANG: u8 = 3;

    /// A fake BTQ node: JSON-RPC over HTTP/1.1 on 127.0.0.1, answering from an embedded chain,
    /// checking basic auth `user:pass`.
    async fn fake_node(chain: Arc<Mutex<EmbeddedChain>>, mode: Arc<AtomicU8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let chain = Arc::clone(&chain);
                let mode = Arc::clone(&mode);
                tokio::spawn(async move { serve(sock, chain, mode).await });
            }
        });
        format!("http://{addr}/")
    }

    async fn serve(mut sock: TcpStream, chain: Arc<Mutex<EmbeddedChain>>, mode: Arc<AtomicU8>) {
        loop {
            let mut buf = Vec::new();
            let mut tmp = [0u8; 65536];
            let (head_len, body_len) = loop {
                let Ok(n) = sock.read(&mut tmp).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&tmp[..n]);
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..p]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (p + 4, len);
                }
            };
            while buf.len() < head_len + body_len {
                let Ok(n) = sock.read(&mut tmp).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_len]).to_lowercase();
            // "user:pass" in base64.
            let authorized = head.contains("authorization: basic dxnlcjpwyxnz");
            let req: Value = serde_json::from_slice(&buf[head_len..head_len + body_len]).unwrap();
            let (status, body) = match mode.load(Ordering::SeqCst) {
                DOWN => return, // drop the connection
                HANG => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                ERRORS => (
                    500,
                    json!({"result": null, "error": {"code": -10, "message": "in initial sync"}, "id": req["id"]}),
                ),
                _ if !authorized => (401, json!(null)),
                _ => (200, answer(&chain, &req)),
            };
            let text = if status == 401 {
                String::new()
            } else {
                body.to_string()
            };
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            );
            if sock.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn answer(chain: &Mutex<EmbeddedChain>, req: &Value) -> Value {
        let mut c = chain.lock().unwrap();
        let result = match req["method"].as_str().unwrap() {
            "getblocktemplate" => {
                assert_eq!(req["params"][0]["rules"], json!(["segwit"]));
                c.get_block_template_json()
            }
            "submitblock" => {
                let bytes = hex::decode(req["params"][0].as_str().unwrap()).unwrap();
                let block = btq_core::encoding::decode_from_slice(&bytes).unwrap();
                c.submit_block(&block).to_rpc_result()
            }
            "getblockchaininfo" => json!({
                "chain": "regtest", "blocks": c.height(),
                "bestblockhash": c.tip_hash().to_string(), "difficulty": 4.6e-10,
                "mediantime": c.median_time_past(), "initialblockdownload": false
            }),
            "getmininginfo" => json!({"blocks": c.height(), "difficulty": 4.6e-10,
                "networkhashps": 0.0, "pooledtx": 0, "chain": "regtest"}),
            "validateaddress" => {
                let v = c.validate_address(req["params"][0].as_str().unwrap());
                json!({"isvalid": v.is_valid,
                    "scriptPubKey": v.script_pubkey.map(|s| btq_core::hex::encode(s.as_bytes()))})
            }
            _ => Value::Null,
        };
        json!({"result": result, "error": null, "id": req["id"]})
    }

    fn client(url: String, password: &str) -> RpcClient {
        let mut cfg = RpcConfig::new(
            url,
            RpcAuth::UserPass {
                user: "user".into(),
                password: password.into(),
            },
        );
        cfg.timeout = Duration::from_millis(300);
        RpcClient::new(cfg).unwrap()
    }

    #[tokio::test]
    async fn rpc_client_fails_over_between_fake_http_nodes() {
        let chain = Arc::new(Mutex::new(EmbeddedChain::new_regtest(Default::default())));
        chain
            .lock()
            .unwrap()
            .set_time(btq_core::time::UnixTime::from_secs(1_800_000_000));
        let (ma, mb) = (Arc::new(AtomicU8::new(UP)), Arc::new(AtomicU8::new(UP)));
        let url_a = fake_node(Arc::clone(&chain), Arc::clone(&ma)).await;
        let url_b = fake_node(Arc::clone(&chain), Arc::clone(&mb)).await;

        // Wrong password: a typed error, not a crash.
        let bad = client(url_a.clone(), "nope");
        assert_eq!(
            bad.get_blockchain_info().await.unwrap_err(),
            NodeError::Unauthorized
        );

        let set = NodeSet::new(vec![client(url_a, "pass"), client(url_b, "pass")], 1);
        let (i, t) = set.get_block_template(None).await.unwrap();
        assert_eq!((i, t.height), (0, 1));
        let v = set.nodes()[0]
            .validate_address("qcrt1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgtm9r9t")
            .await
            .unwrap();
        assert!(v.is_valid);
        assert_eq!(set.nodes()[0].get_mining_info().await.unwrap().blocks, 0);

        // Node A answers RPC errors → B.
        ma.store(ERRORS, Ordering::SeqCst);
        let (i, _) = set.get_block_template(None).await.unwrap();
        assert_eq!(i, 1);
        assert!(matches!(
            set.health()[0].last_error,
            Some(NodeError::Rpc { code: -10, .. })
        ));

        // B times out, A disappears: nothing answers.
        mb.store(HANG, Ordering::SeqCst);
        ma.store(DOWN, Ordering::SeqCst);
        assert_eq!(
            set.get_block_template(None).await.unwrap_err(),
            NodeError::NoHealthyNode
        );
        let h = set.health();
        assert_eq!(h[1].last_error, Some(NodeError::Timeout));
        assert_eq!(h[0].last_error, Some(NodeError::Unreachable));

        // B comes back: health check, template, block submitted and accepted over HTTP.
        mb.store(UP, Ordering::SeqCst);
        assert_eq!(set.check_health().await, 1);
        let (i, t) = set.get_block_template(Some("lp")).await.unwrap();
        assert_eq!(i, 1);
        let block = super::mine_on(&t);
        let report = set.submit_block(&block).await;
        assert_eq!(report.best(), Some(&SubmitOutcome::Accepted));
        assert_eq!(chain.lock().unwrap().height(), 1);
        // Submitting again: the node says duplicate.
        assert_eq!(
            set.nodes()[1].submit_block(&block).await.unwrap(),
            SubmitOutcome::Duplicate
        );
    }
}
