//! The node's JSON-RPC as a [`BlockSource`] (blocking; `getblockchaininfo`, `getblockhash`,
//! `getblock <hash> 0`), with cookie or user/password authentication, plus raw transactions
//! (`getrawtransaction <txid> false <blockhash>`, one or a batch) for the HTTP API.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use btq_core::hash::{BlockHash, Txid};
use serde_json::{Value, json};
use thiserror::Error;

use crate::driver::{BlockSource, MAX_BLOCK_BYTES};
use crate::schema::BlockRef;

/// Largest RPC response read (a hex-encoded maximum block plus JSON framing).
pub const MAX_RESPONSE_BYTES: u64 = (MAX_BLOCK_BYTES as u64) * 2 + 4096;

/// How to authenticate to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RpcAuth {
    /// No authentication.
    None,
    /// `-rpcuser` / `-rpcpassword`.
    UserPass {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
    /// The node's `.cookie` file (re-read after a 401, since the node rewrites it on restart).
    Cookie(PathBuf),
}

/// An RPC failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The HTTP request failed (connection refused, timeout).
    #[error("http: {0}")]
    Http(String),
    /// The node answered with an HTTP error status and no JSON-RPC error.
    #[error("http status {0}")]
    Status(u16),
    /// The cookie file cannot be read or has no `user:password`.
    #[error("cookie file {path:?}: {reason}")]
    Cookie {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The response is over [`MAX_RESPONSE_BYTES`].
    #[error("response over {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    /// The response is not the JSON expected.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// The node returned a JSON-RPC error.
    #[error("rpc error {code}: {message}")]
    Rpc {
        /// The error code.
        code: i64,
        /// The message.
        message: String,
    },
}

/// A blocking JSON-RPC client for the BTQ node. Clones share the HTTP connection pool.
#[derive(Debug, Clone)]
pub struct RpcClient {
    url: String,
    http: reqwest::blocking::Client,
    auth: RpcAuth,
    creds: Option<(String, String)>,
    id: u64,
}

fn read_cookie(path: &Path) -> Result<(String, String), RpcError> {
    let bad = |reason: String| RpcError::Cookie {
        path: path.to_path_buf(),
        reason,
    };
    let s = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let line = s.lines().next().unwrap_or_default();
    let (u, p) = line
        .split_once(':')
        .ok_or_else(|| bad("no user:password".into()))?;
    Ok((u.to_owned(), p.to_owned()))
}

impl RpcClient {
    /// Creates a client for `url` (e.g. `http://127.0.0.1:18443`).
    ///
    /// # Errors
    /// An unreadable cookie file or an HTTP client setup failure.
    pub fn new(url: &str, auth: RpcAuth, timeout: Duration) -> Result<Self, RpcError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| RpcError::Http(e.to_string()))?;
        let creds = match &auth {
            RpcAuth::None => None,
            RpcAuth::UserPass { user, password } => Some((user.clone(), password.clone())),
            RpcAuth::Cookie(p) => Some(read_cookie(p)?),
        };
        Ok(Self {
            url: url.to_owned(),
            http,
            auth,
            creds,
            id: 0,
        })
    }

    fn send(&mut self, body: &Value) -> Result<(u16, Vec<u8>), RpcError> {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some((u, p)) = &self.creds {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().map_err(|e| RpcError::Http(e.to_string()))?;
        let status = resp.status().as_u16();
        let mut buf = Vec::new();
        resp.take(MAX_RESPONSE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| RpcError::Http(e.to_string()))?;
        if buf.len() as u64 > MAX_RESPONSE_BYTES {
            return Err(RpcError::TooLarge);
        }
        Ok((status, buf))
    }

    /// Posts `body`, re-reading the cookie once after a 401; returns the status and the JSON.
    fn post(&mut self, body: &Value) -> Result<(u16, Value), RpcError> {
        let (mut status, mut buf) = self.send(body)?;
        if status == 401
            && let RpcAuth::Cookie(p) = &self.auth
        {
            self.creds = Some(read_cookie(p)?);
            (status, buf) = self.send(body)?;
        }
        match serde_json::from_slice(&buf) {
            Ok(v) => Ok((status, v)),
            Err(_) if status != 200 => Err(RpcError::Status(status)),
            Err(_) => Err(RpcError::Malformed("not JSON")),
        }
    }

    /// Calls `method` with `params` and returns the `result`.
    ///
    /// # Errors
    /// Transport, status, size, JSON or JSON-RPC errors.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.id = self.id.wrapping_add(1);
        let body = json!({"jsonrpc": "1.0", "id": self.id, "method": method, "params": params});
        let (status, v) = self.post(&body)?;
        result_of(status, &v)
    }

    /// Calls several methods in one JSON-RPC batch (one HTTP request); returns each call's
    /// result in order.
    ///
    /// # Errors
    /// The batch as a whole failed (transport, status, size, JSON); errors of single calls are
    /// in the list.
    pub fn call_batch(
        &mut self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.id.wrapping_add(1);
        let body: Vec<Value> = calls
            .iter()
            .map(|(method, params)| {
                self.id = self.id.wrapping_add(1);
                json!({"jsonrpc": "1.0", "id": self.id, "method": method, "params": params})
            })
            .collect();
        let (status, v) = self.post(&Value::Array(body))?;
        let Value::Array(items) = v else {
            // A node that rejects the whole batch answers with one error object.
            return Err(result_of(status, &v)
                .err()
                .unwrap_or(RpcError::Malformed("batch answer is not a list")));
        };
        let mut out: Vec<Result<Value, RpcError>> = (0..calls.len())
            .map(|_| Err(RpcError::Malformed("no answer in the batch")))
            .collect();
        for item in &items {
            let slot = item
                .get("id")
                .and_then(Value::as_u64)
                .map(|id| id.wrapping_sub(first))
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| out.get_mut(i));
            if let Some(slot) = slot {
                *slot = result_of(200, item);
            }
        }
        Ok(out)
    }

    /// Returns the serialized transaction `txid` confirmed in block `block`.
    ///
    /// # Errors
    /// As [`RpcClient::call`]; a result that is not hex is `Malformed`.
    pub fn raw_transaction(&mut self, txid: &Txid, block: &BlockHash) -> Result<Vec<u8>, RpcError> {
        let v = self.call("getrawtransaction", raw_tx_params(txid, block))?;
        tx_bytes(&v)
    }

    /// Returns several transactions (each `(txid, block)`) in one batch, in order.
    ///
    /// # Errors
    /// As [`RpcClient::call_batch`].
    pub fn raw_transactions(
        &mut self,
        txs: &[(Txid, BlockHash)],
    ) -> Result<Vec<Result<Vec<u8>, RpcError>>, RpcError> {
        let calls: Vec<(&str, Value)> = txs
            .iter()
            .map(|(t, b)| ("getrawtransaction", raw_tx_params(t, b)))
            .collect();
        Ok(self
            .call_batch(&calls)?
            .into_iter()
            .map(|r| r.and_then(|v| tx_bytes(&v)))
            .collect())
    }
}

fn raw_tx_params(txid: &Txid, block: &BlockHash) -> Value {
    json!([txid.to_string(), false, block.to_string()])
}

fn tx_bytes(v: &Value) -> Result<Vec<u8>, RpcError> {
    let s = v
        .as_str()
        .ok_or(RpcError::Malformed("transaction is not a hex string"))?;
    btq_core::hex::decode_bounded(s, MAX_BLOCK_BYTES)
        .map_err(|_| RpcError::Malformed("transaction hex"))
}

/// The `result` of one JSON-RPC answer, or its error.
fn result_of(status: u16, v: &Value) -> Result<Value, RpcError> {
    match v.get("error") {
        Some(Value::Null) | None => {}
        Some(err) => {
            return Err(RpcError::Rpc {
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .chars()
                    .take(500)
                    .collect(),
            });
        }
    }
    if status != 200 {
        return Err(RpcError::Status(status));
    }
    v.get("result")
        .cloned()
        .ok_or(RpcError::Malformed("no result"))
}

fn parse_hash(v: &Value) -> Result<BlockHash, RpcError> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or(RpcError::Malformed("bad block hash"))
}

impl BlockSource for RpcClient {
    type Error = RpcError;

    fn tip(&mut self) -> Result<BlockRef, RpcError> {
        let v = self.call("getblockchaininfo", json!([]))?;
        let height = v
            .get("blocks")
            .and_then(Value::as_u64)
            .and_then(|h| u32::try_from(h).ok())
            .ok_or(RpcError::Malformed("bad blocks"))?;
        let hash = parse_hash(v.get("bestblockhash").unwrap_or(&Value::Null))?;
        Ok(BlockRef { height, hash })
    }

    fn block_hash(&mut self, height: u32) -> Result<Option<BlockHash>, RpcError> {
        match self.call("getblockhash", json!([height])) {
            Ok(v) => parse_hash(&v).map(Some),
            // RPC_INVALID_PARAMETER: "Block height out of range".
            Err(RpcError::Rpc { code: -8, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>, RpcError> {
        let v = self.call("getblock", json!([hash.to_string(), 0]))?;
        let s = v
            .as_str()
            .ok_or(RpcError::Malformed("block is not a hex string"))?;
        btq_core::hex::decode_bounded(s, MAX_BLOCK_BYTES)
            .map_err(|_| RpcError::Malformed("block hex"))
    }
}
