//! The JSON-RPC client for a BTQ node (feature `runtime-tokio`), over reqwest.
//!
//! Thin: it only moves JSON; parsing and decisions live in the Sans-IO modules.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use btq_core::block::Block;
use btq_core::hash::BlockHash;
use btq_core::script::ScriptBuf;
use serde_json::{Value, json};

use crate::block::SubmitOutcome;
use crate::chain::{AddressValidation, BlockchainInfo, MiningInfo};
use crate::node::{NodeApi, NodeError};
use crate::template::{MAX_TEMPLATE_JSON_LEN, Template};

/// How the client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcAuth {
    /// No credentials.
    None,
    /// `rpcuser`/`rpcpassword`.
    UserPass {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
    /// The node's `.cookie` file (`__cookie__:password`), re-read on every call so that a node
    /// restart is picked up.
    Cookie(PathBuf),
}

/// Where and how to reach a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// `http://host:port/` (the port is always explicit: BTQ regtest's 18443 is bitcoind's too).
    pub url: String,
    /// Credentials.
    pub auth: RpcAuth,
    /// Timeout of ordinary calls.
    pub timeout: Duration,
    /// Timeout of a long-polling `getblocktemplate`.
    pub longpoll_timeout: Duration,
}

impl RpcConfig {
    /// A config with 10 s calls and 60 s long polls.
    pub fn new(url: impl Into<String>, auth: RpcAuth) -> Self {
        Self {
            url: url.into(),
            auth,
            timeout: Duration::from_secs(10),
            longpoll_timeout: Duration::from_secs(60),
        }
    }
}

/// A JSON-RPC client for one node.
#[derive(Debug)]
pub struct RpcClient {
    http: reqwest::Client,
    config: RpcConfig,
    next_id: AtomicU64,
}

fn map_reqwest(e: &reqwest::Error) -> NodeError {
    if e.is_timeout() {
        NodeError::Timeout
    } else {
        NodeError::Unreachable
    }
}

impl RpcClient {
    /// Creates a client.
    ///
    /// # Errors
    /// [`NodeError::Internal`] if the HTTP client cannot be built.
    pub fn new(config: RpcConfig) -> Result<Self, NodeError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(2)
            .build()
            .map_err(|_| NodeError::Internal("http client"))?;
        Ok(Self {
            http,
            config,
            next_id: AtomicU64::new(1),
        })
    }

    /// Returns the config.
    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    /// Calls `method` with `params` and returns the `result`.
    ///
    /// # Errors
    /// Any [`NodeError`].
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, NodeError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params});
        let mut req = self
            .http
            .post(&self.config.url)
            .timeout(timeout)
            .header("content-type", "application/json")
            .body(body.to_string());
        match &self.config.auth {
            RpcAuth::None => {}
            RpcAuth::UserPass { user, password } => req = req.basic_auth(user, Some(password)),
            RpcAuth::Cookie(path) => {
                let text = std::fs::read_to_string(path).map_err(|_| NodeError::Cookie)?;
                let (user, password) = text.trim().split_once(':').ok_or(NodeError::Cookie)?;
                req = req.basic_auth(user, Some(password));
            }
        }
        let resp = req.send().await.map_err(|e| map_reqwest(&e))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(NodeError::Unauthorized);
        }
        if resp
            .content_length()
            .is_some_and(|l| l > MAX_TEMPLATE_JSON_LEN as u64)
        {
            return Err(NodeError::BadResponse("response too long"));
        }
        let bytes = resp.bytes().await.map_err(|e| map_reqwest(&e))?;
        if bytes.len() > MAX_TEMPLATE_JSON_LEN {
            return Err(NodeError::BadResponse("response too long"));
        }
        let v: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) if status != 200 => return Err(NodeError::HttpStatus(status)),
            Err(_) => return Err(NodeError::BadResponse("not json")),
        };
        match v.get("error") {
            Some(Value::Null) | None => {}
            Some(e) => {
                return Err(NodeError::Rpc {
                    code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .chars()
                        .take(200)
                        .collect(),
                });
            }
        }
        if status != 200 {
            return Err(NodeError::HttpStatus(status));
        }
        v.get("result")
            .cloned()
            .ok_or(NodeError::BadResponse("no result"))
    }
}

fn get_str<'a>(v: &'a Value, k: &'static str) -> Result<&'a str, NodeError> {
    v.get(k)
        .and_then(Value::as_str)
        .ok_or(NodeError::BadResponse(k))
}

fn get_u32(v: &Value, k: &'static str) -> Result<u32, NodeError> {
    v.get(k)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(NodeError::BadResponse(k))
}

impl NodeApi for RpcClient {
    async fn get_block_template(&self, longpoll_id: Option<&str>) -> Result<Template, NodeError> {
        let (params, timeout) = match longpoll_id {
            Some(id) => (
                json!([{"rules": ["segwit"], "longpollid": id}]),
                self.config.longpoll_timeout,
            ),
            None => (json!([{"rules": ["segwit"]}]), self.config.timeout),
        };
        let v = self.call("getblocktemplate", params, timeout).await?;
        Ok(Template::from_json_value(&v)?)
    }

    async fn submit_block(&self, block: &Block) -> Result<SubmitOutcome, NodeError> {
        let hex = btq_core::hex::encode(&btq_core::encoding::encode_to_vec(block));
        let v = self
            .call("submitblock", json!([hex]), self.config.timeout)
            .await?;
        Ok(SubmitOutcome::from_rpc_result(&v))
    }

    async fn get_blockchain_info(&self) -> Result<BlockchainInfo, NodeError> {
        let v = self
            .call("getblockchaininfo", json!([]), self.config.timeout)
            .await?;
        let best: BlockHash = get_str(&v, "bestblockhash")?
            .parse()
            .map_err(|_| NodeError::BadResponse("bestblockhash"))?;
        Ok(BlockchainInfo {
            chain: get_str(&v, "chain")?.to_owned(),
            blocks: get_u32(&v, "blocks")?,
            best_block_hash: best,
            difficulty: v.get("difficulty").and_then(Value::as_f64).unwrap_or(0.0),
            median_time: v.get("mediantime").and_then(Value::as_u64).unwrap_or(0),
            initial_block_download: v
                .get("initialblockdownload")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    async fn get_mining_info(&self) -> Result<MiningInfo, NodeError> {
        let v = self
            .call("getmininginfo", json!([]), self.config.timeout)
            .await?;
        Ok(MiningInfo {
            blocks: get_u32(&v, "blocks")?,
            difficulty: v.get("difficulty").and_then(Value::as_f64).unwrap_or(0.0),
            network_hashps: v
                .get("networkhashps")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            pooled_tx: v.get("pooledtx").and_then(Value::as_u64).unwrap_or(0),
            chain: get_str(&v, "chain")?.to_owned(),
        })
    }

    async fn validate_address(&self, address: &str) -> Result<AddressValidation, NodeError> {
        let v = self
            .call("validateaddress", json!([address]), self.config.timeout)
            .await?;
        let is_valid = v.get("isvalid").and_then(Value::as_bool).unwrap_or(false);
        let script_pubkey = match v.get("scriptPubKey").and_then(Value::as_str) {
            Some(h) if is_valid => {
                Some(ScriptBuf::from_hex(h).map_err(|_| NodeError::BadResponse("scriptPubKey"))?)
            }
            _ => None,
        };
        Ok(AddressValidation {
            is_valid,
            script_pubkey,
        })
    }
}
