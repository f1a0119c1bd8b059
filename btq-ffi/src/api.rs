//! The safe API shared by both bindings.
//!
//! Every item here is exported to Python through UniFFI (proc-macros) and wrapped by the
//! `extern "C"` functions of [`crate::c_abi`], so C, C# and Python see the same capabilities and
//! the same errors. Nothing here adds logic of its own: each method forwards to `btq-core`,
//! `btq-stratum`, `btq-pool`, `btq-payout` or `btq-index` and renders the result.
//!
//! Objects are `Send + Sync`: immutable values ([`Tx`], [`Block`], [`LithiumKeypair`]) need no
//! lock; stateful ones ([`StratumServer`], [`Pool`]) hold a `Mutex`, so calls from several
//! threads are serialized; [`IndexReader`] relies on the store's own MVCC snapshots.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use btq_core::address::{self, Address};
use btq_core::encoding;
use btq_core::lithium::{self, Keypair};
use btq_core::params::Network;
use btq_core::pow::ShareDifficulty;
use btq_core::script::ScriptBuf;
use btq_core::sighash::SighashCache;
use btq_core::time::{Timestamp, UnixTime};
use btq_core::{Block as CoreBlock, Transaction};
use btq_index::{RedbStore, ScriptHash, Store};
use btq_payout::{ConsolidationConfig, MempoolState};
use btq_pool::{
    ExtraNonce, JobConfig, JobFactory, SessionParams, ShareValidator, StratumReject, Submit,
    Template, ValidatorConfig,
};
use btq_stratum::{RequestToken, ServerEvent, SessionId, Verdict};
use serde_json::{Value, json};

/// The largest number of outstanding Stratum request tokens a [`StratumServer`] remembers; the
/// oldest is forgotten first (its verdict is then refused as an unknown token).
pub const MAX_PENDING_TOKENS: usize = 65_536;

/// An error crossing the boundary: a kind (also the C status code) and the Rust error's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum BtqError {
    /// A bad argument: a null pointer, invalid UTF-8, an unknown network name, a wrong length.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// The message.
        message: String,
    },
    /// Bytes or hex that do not decode (transaction, block, hex).
    #[error("decode error: {message}")]
    Decode {
        /// The message.
        message: String,
    },
    /// An address that is invalid or belongs to another network.
    #[error("address error: {message}")]
    Address {
        /// The message.
        message: String,
    },
    /// A Lithium key or signature error.
    #[error("key error: {message}")]
    Key {
        /// The message.
        message: String,
    },
    /// A sighash error (input out of range).
    #[error("sighash error: {message}")]
    Sighash {
        /// The message.
        message: String,
    },
    /// A Stratum server error (refused connection, session gone, dropped verdict).
    #[error("stratum error: {message}")]
    Stratum {
        /// The message.
        message: String,
    },
    /// A pool error (template, job).
    #[error("pool error: {message}")]
    Pool {
        /// The message.
        message: String,
    },
    /// A payout error (UTXO JSON, planning, signing).
    #[error("payout error: {message}")]
    Payout {
        /// The message.
        message: String,
    },
    /// An index store error.
    #[error("index error: {message}")]
    Index {
        /// The message.
        message: String,
    },
    /// A Rust panic caught at the boundary (a bug in btq-kit).
    #[error("internal error: {message}")]
    Internal {
        /// The message.
        message: String,
    },
}

impl BtqError {
    /// Returns the C status code of this error (see `BTQ_ERR_*` in `btq.h`).
    pub fn code(&self) -> i32 {
        match self {
            Self::InvalidArgument { .. } => 1,
            Self::Decode { .. } => 2,
            Self::Address { .. } => 3,
            Self::Key { .. } => 4,
            Self::Sighash { .. } => 5,
            Self::Stratum { .. } => 6,
            Self::Pool { .. } => 7,
            Self::Payout { .. } => 8,
            Self::Index { .. } => 9,
            Self::Internal { .. } => 11,
        }
    }

    pub(crate) fn arg(m: impl std::fmt::Display) -> Self {
        Self::InvalidArgument {
            message: m.to_string(),
        }
    }
    fn decode(m: impl std::fmt::Display) -> Self {
        Self::Decode {
            message: m.to_string(),
        }
    }
    fn address(m: impl std::fmt::Display) -> Self {
        Self::Address {
            message: m.to_string(),
        }
    }
    fn key(m: impl std::fmt::Display) -> Self {
        Self::Key {
            message: m.to_string(),
        }
    }
    fn stratum(m: impl std::fmt::Display) -> Self {
        Self::Stratum {
            message: m.to_string(),
        }
    }
    fn pool(m: impl std::fmt::Display) -> Self {
        Self::Pool {
            message: m.to_string(),
        }
    }
    fn payout(m: impl std::fmt::Display) -> Self {
        Self::Payout {
            message: m.to_string(),
        }
    }
    fn index(m: impl std::fmt::Display) -> Self {
        Self::Index {
            message: m.to_string(),
        }
    }
    pub(crate) fn internal(m: impl std::fmt::Display) -> Self {
        Self::Internal {
            message: m.to_string(),
        }
    }
}

type R<T> = Result<T, BtqError>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while the lock was held was caught at the boundary; the state machines keep
    // their invariants between calls, so the data stays usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parses a network name (`main`, `test`, `signet`, `regtest`, as the node's `-chain`).
///
/// # Errors
/// [`BtqError::InvalidArgument`] for an unknown name.
pub fn parse_network(name: &str) -> R<Network> {
    Network::from_str(name).map_err(BtqError::arg)
}

fn decode_hex(s: &str) -> R<Vec<u8>> {
    btq_core::hex::decode_bounded(s, usize::MAX).map_err(BtqError::decode)
}

/// Returns the btq-kit version.
#[uniffi::export]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Returns the length of `data` (a no-op used to measure the cost of passing bytes).
#[uniffi::export]
pub fn bytes_len(data: &[u8]) -> u64 {
    data.len() as u64
}

// ---------------------------------------------------------------------------------------------
// Transactions and blocks

/// One input of a decoded transaction.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TxInput {
    /// The spent transaction (display hex).
    pub prev_txid: String,
    /// The spent output index.
    pub prev_vout: u32,
    /// scriptSig (hex).
    pub script_sig: String,
    /// Witness items (hex).
    pub witness: Vec<String>,
    /// nSequence.
    pub sequence: u32,
}

/// One output of a decoded transaction.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TxOutput {
    /// Value in satoshis.
    pub value: u64,
    /// scriptPubKey (hex).
    pub script_pubkey: String,
    /// The node's output type name (`witness_v0_keyhash`, …).
    pub script_type: String,
}

/// A decoded transaction as plain values.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TxInfo {
    /// txid (display hex).
    pub txid: String,
    /// wtxid (display hex).
    pub wtxid: String,
    /// nVersion.
    pub version: i32,
    /// nLockTime.
    pub lock_time: u32,
    /// Serialized size with witness.
    pub size: u64,
    /// Weight (witness scale factor 16).
    pub weight: u64,
    /// Virtual size.
    pub vsize: u64,
    /// The inputs.
    pub inputs: Vec<TxInput>,
    /// The outputs.
    pub outputs: Vec<TxOutput>,
}

/// A decoded transaction.
#[derive(Debug, uniffi::Object)]
pub struct Tx {
    pub(crate) inner: Transaction,
}

#[uniffi::export]
impl Tx {
    /// Decodes a transaction from its bytes (with or without witness).
    ///
    /// # Errors
    /// [`BtqError::Decode`].
    #[uniffi::constructor]
    pub fn decode(bytes: &[u8]) -> R<Arc<Self>> {
        let inner = encoding::decode_from_slice(bytes).map_err(BtqError::decode)?;
        Ok(Arc::new(Self { inner }))
    }

    /// Decodes a transaction from hex.
    ///
    /// # Errors
    /// [`BtqError::Decode`].
    #[uniffi::constructor]
    pub fn from_hex(hex: &str) -> R<Arc<Self>> {
        Self::decode(&decode_hex(hex)?)
    }

    /// Returns the txid (display hex).
    pub fn txid(&self) -> String {
        self.inner.txid().to_string()
    }
    /// Returns the wtxid (display hex).
    pub fn wtxid(&self) -> String {
        self.inner.wtxid().to_string()
    }
    /// Returns the weight.
    pub fn weight(&self) -> u64 {
        self.inner.weight().to_wu()
    }
    /// Returns the virtual size.
    pub fn vsize(&self) -> u64 {
        self.inner.vsize()
    }
    /// Returns the number of inputs.
    pub fn input_count(&self) -> u64 {
        self.inner.input.len() as u64
    }
    /// Returns the number of outputs.
    pub fn output_count(&self) -> u64 {
        self.inner.output.len() as u64
    }
    /// Returns the serialized bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode_to_vec(&self.inner)
    }
    /// Returns the transaction as plain values.
    pub fn info(&self) -> TxInfo {
        tx_info(&self.inner)
    }
    /// Returns the transaction as JSON (the fields of [`TxInfo`], addresses for `network` when
    /// given).
    ///
    /// # Errors
    /// [`BtqError::InvalidArgument`] for an unknown network.
    pub fn to_json(&self, network: Option<String>) -> R<String> {
        let net = network.as_deref().map(parse_network).transpose()?;
        Ok(tx_json(&self.inner, net).to_string())
    }

    /// Computes the BIP143 sighash of a P2WPKH-Lithium input (scriptCode `76a914<h160>88bb`).
    ///
    /// # Errors
    /// [`BtqError::InvalidArgument`] for a hash that is not 20 bytes, [`BtqError::Sighash`] for
    /// an input out of range.
    pub fn p2wpkh_lithium_sighash(
        &self,
        input_index: u64,
        pubkey_hash: &[u8],
        amount: u64,
        hash_type: u32,
    ) -> R<Vec<u8>> {
        let h: [u8; 20] = pubkey_hash
            .try_into()
            .map_err(|_| BtqError::arg("pubkey hash must be 20 bytes"))?;
        let idx = usize::try_from(input_index).map_err(BtqError::arg)?;
        let digest = SighashCache::new(&self.inner)
            .p2wpkh_lithium_sighash(idx, &h, amount, hash_type)
            .map_err(|e| BtqError::Sighash {
                message: e.to_string(),
            })?;
        Ok(digest.to_byte_array().to_vec())
    }
}

fn tx_info(tx: &Transaction) -> TxInfo {
    TxInfo {
        txid: tx.txid().to_string(),
        wtxid: tx.wtxid().to_string(),
        version: tx.version,
        lock_time: tx.lock_time,
        size: tx.total_size() as u64,
        weight: tx.weight().to_wu(),
        vsize: tx.vsize(),
        inputs: tx
            .input
            .iter()
            .map(|i| TxInput {
                prev_txid: i.previous_output.txid.to_string(),
                prev_vout: i.previous_output.vout,
                script_sig: btq_core::hex::encode(i.script_sig.as_bytes()),
                witness: i
                    .witness
                    .items()
                    .iter()
                    .map(|w| btq_core::hex::encode(w))
                    .collect(),
                sequence: i.sequence,
            })
            .collect(),
        outputs: tx
            .output
            .iter()
            .map(|o| TxOutput {
                value: o.value,
                script_pubkey: btq_core::hex::encode(o.script_pubkey.as_bytes()),
                script_type: o.script_pubkey.script_type().rpc_name().to_owned(),
            })
            .collect(),
    }
}

fn tx_json(tx: &Transaction, network: Option<Network>) -> Value {
    let info = tx_info(tx);
    let vin: Vec<Value> = info
        .inputs
        .iter()
        .map(|i| {
            json!({"txid": i.prev_txid, "vout": i.prev_vout, "scriptSig": i.script_sig,
                   "txinwitness": i.witness, "sequence": i.sequence})
        })
        .collect();
    let vout: Vec<Value> = tx
        .output
        .iter()
        .zip(&info.outputs)
        .enumerate()
        .map(|(n, (o, info))| {
            let addr = network
                .and_then(|net| Address::from_script(&o.script_pubkey, net).ok())
                .map(|a| a.to_string());
            json!({"n": n, "value": info.value, "scriptPubKey": {"hex": info.script_pubkey,
                   "type": info.script_type, "address": addr}})
        })
        .collect();
    json!({"txid": info.txid, "hash": info.wtxid, "version": info.version, "size": info.size,
           "vsize": info.vsize, "weight": info.weight, "locktime": info.lock_time,
           "vin": vin, "vout": vout})
}

/// A decoded block.
#[derive(Debug, uniffi::Object)]
pub struct Block {
    pub(crate) inner: CoreBlock,
}

#[uniffi::export]
impl Block {
    /// Decodes a block from its bytes.
    ///
    /// # Errors
    /// [`BtqError::Decode`].
    #[uniffi::constructor]
    pub fn decode(bytes: &[u8]) -> R<Arc<Self>> {
        let inner = encoding::decode_from_slice(bytes).map_err(BtqError::decode)?;
        Ok(Arc::new(Self { inner }))
    }
    /// Returns the block hash (display hex).
    pub fn block_hash(&self) -> String {
        self.inner.block_hash().to_string()
    }
    /// Returns the weight.
    pub fn weight(&self) -> u64 {
        self.inner.weight().to_wu()
    }
    /// Returns the number of transactions.
    pub fn tx_count(&self) -> u64 {
        self.inner.txdata.len() as u64
    }
    /// Returns the txids (display hex), in block order.
    pub fn txids(&self) -> Vec<String> {
        self.inner
            .txdata
            .iter()
            .map(|t| t.txid().to_string())
            .collect()
    }
    /// Returns the BIP34 height of the coinbase, if any.
    pub fn bip34_height(&self) -> Option<u32> {
        self.inner.bip34_height()
    }
    /// Returns the header fields and txids as JSON.
    pub fn to_json(&self) -> String {
        let h = &self.inner.header;
        json!({"hash": self.block_hash(), "version": h.version,
               "previousblockhash": h.prev_blockhash.to_string(),
               "merkleroot": h.merkle_root.to_string(), "time": h.time,
               "bits": format!("{:08x}", h.bits.to_consensus()), "nonce": h.nonce,
               "difficulty": h.difficulty(), "size": self.inner.total_size(),
               "weight": self.weight(), "height": self.bip34_height(), "tx": self.txids()})
        .to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses

/// The answer of [`validate_address`], shaped like the node's `validateaddress`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AddressValidation {
    /// Whether the address is valid for the network.
    pub is_valid: bool,
    /// The address in its canonical form for the network (empty when invalid).
    pub address: String,
    /// scriptPubKey (hex; empty when invalid).
    pub script_pubkey: String,
    /// The node's output type name (empty when invalid).
    pub script_type: String,
    /// Whether it is a P2SH address.
    pub is_script: bool,
    /// Whether it is a segwit address.
    pub is_witness: bool,
    /// Why it is invalid (empty when valid).
    pub error: String,
}

/// Validates an address for a network, like the node's `validateaddress` (no node needed).
///
/// # Errors
/// [`BtqError::InvalidArgument`] for an unknown network; an invalid address is not an error.
#[uniffi::export]
pub fn validate_address(address: &str, network: &str) -> R<AddressValidation> {
    let net = parse_network(network)?;
    Ok(match Address::parse(address, net) {
        Ok(a) => {
            let t = a.script_type();
            let spk = a.script_pubkey().as_bytes();
            AddressValidation {
                is_valid: true,
                address: a.to_string(),
                script_pubkey: btq_core::hex::encode(spk),
                script_type: t.rpc_name().to_owned(),
                is_script: matches!(t, btq_core::script::ScriptType::P2sh),
                is_witness: spk
                    .first()
                    .is_some_and(|op| *op == 0 || (0x51..=0x60).contains(op))
                    && (4..=42).contains(&spk.len()),
                error: String::new(),
            }
        }
        Err(e) => AddressValidation {
            is_valid: false,
            address: String::new(),
            script_pubkey: String::new(),
            script_type: String::new(),
            is_script: false,
            is_witness: false,
            error: e.to_string(),
        },
    })
}

/// Renders [`validate_address`]'s answer as the node's JSON (`isvalid`, `address`,
/// `scriptPubKey`, `isscript`, `iswitness`, `error`).
///
/// # Errors
/// As [`validate_address`].
#[uniffi::export]
pub fn validate_address_json(address: &str, network: &str) -> R<String> {
    let v = validate_address(address, network)?;
    Ok(if v.is_valid {
        json!({"isvalid": true, "address": v.address, "scriptPubKey": v.script_pubkey,
               "isscript": v.is_script, "iswitness": v.is_witness, "type": v.script_type})
    } else {
        json!({"isvalid": false, "error": v.error})
    }
    .to_string())
}

/// Decodes an address of `network` to its scriptPubKey.
///
/// # Errors
/// [`BtqError::Address`] for an invalid or foreign address.
#[uniffi::export]
pub fn address_to_script(address: &str, network: &str) -> R<Vec<u8>> {
    let net = parse_network(network)?;
    let a = Address::parse(address, net).map_err(BtqError::address)?;
    Ok(a.script_pubkey().as_bytes().to_vec())
}

/// Renders a scriptPubKey as an address of `network`.
///
/// # Errors
/// [`BtqError::Address`] for a script without an address form.
#[uniffi::export]
pub fn script_to_address(script_pubkey: &[u8], network: &str) -> R<String> {
    let net = parse_network(network)?;
    let a = Address::from_script(&ScriptBuf::from(script_pubkey.to_vec()), net)
        .map_err(BtqError::address)?;
    Ok(a.to_string())
}

/// Returns the networks an address string of any BTQ network belongs to (chain names).
///
/// # Errors
/// [`BtqError::Address`].
#[uniffi::export]
pub fn address_networks(address: &str) -> R<Vec<String>> {
    let d = address::decode_any(address).map_err(BtqError::address)?;
    Ok(d.networks
        .iter()
        .map(|n| n.chain_name().to_owned())
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Lithium

/// A Lithium (ML-DSA-44, the node's "Dilithium2") keypair.
#[derive(Debug, uniffi::Object)]
pub struct LithiumKeypair {
    pub(crate) inner: Keypair,
}

#[uniffi::export]
impl LithiumKeypair {
    /// Derives a keypair from a 32-byte seed (FIPS 204 `KeyGen_internal`).
    ///
    /// # Errors
    /// [`BtqError::InvalidArgument`] for a seed that is not 32 bytes.
    #[uniffi::constructor]
    pub fn from_seed(seed: &[u8]) -> R<Arc<Self>> {
        let s: [u8; 32] = seed
            .try_into()
            .map_err(|_| BtqError::arg(format!("seed must be 32 bytes, got {}", seed.len())))?;
        Ok(Arc::new(Self {
            inner: Keypair::from_seed(&s),
        }))
    }

    /// Imports the node's 3,872-byte keypair format (`sk ‖ pk`).
    ///
    /// # Errors
    /// [`BtqError::Key`].
    #[uniffi::constructor]
    pub fn from_node_keypair(bytes: &[u8]) -> R<Arc<Self>> {
        let inner = Keypair::from_node_keypair(bytes).map_err(BtqError::key)?;
        Ok(Arc::new(Self { inner }))
    }

    /// Returns the 1,312-byte public key.
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public_key().to_vec()
    }
    /// Returns HASH160 of the public key (the P2WPKH-Lithium program).
    pub fn pubkey_hash(&self) -> Vec<u8> {
        self.inner.public_key().hash160().to_vec()
    }
    /// Returns the P2WPKH address of the key for `network`.
    ///
    /// # Errors
    /// [`BtqError::InvalidArgument`] for an unknown network.
    pub fn p2wpkh_address(&self, network: &str) -> R<String> {
        let net = parse_network(network)?;
        let spk = ScriptBuf::new_p2wpkh(&self.inner.public_key().hash160());
        Ok(Address::from_script(&spk, net)
            .map_err(BtqError::address)?
            .to_string())
    }
    /// Signs `msg` (deterministic ML-DSA-44), returning the 2,420-byte signature.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.inner.sign(msg).to_vec()
    }
    /// Returns the node's 3,872-byte keypair format.
    pub fn to_node_keypair(&self) -> Vec<u8> {
        self.inner.to_node_keypair_bytes()
    }
}

/// Verifies a Lithium signature with the node's rules; false for any malformed input.
#[uniffi::export]
pub fn lithium_verify(public_key: &[u8], msg: &[u8], signature: &[u8]) -> bool {
    lithium::verify(public_key, msg, signature)
}

// ---------------------------------------------------------------------------------------------
// Stratum

struct StratumState {
    server: btq_stratum::Server,
    tokens: BTreeMap<u64, RequestToken>,
    next_token: u64,
}

/// A Sans-IO Stratum V1 server the host feeds with connection events and bytes (default
/// configuration: bounded admission, bans, vardiff).
#[derive(uniffi::Object)]
pub struct StratumServer {
    state: Mutex<StratumState>,
}

fn session_id(v: u64) -> SessionId {
    #[allow(clippy::cast_possible_truncation, reason = "packed u32 halves")]
    SessionId::from_parts(v as u32, (v >> 32) as u32)
}

fn session_u64(s: SessionId) -> u64 {
    (u64::from(s.generation()) << 32) | u64::from(s.index())
}

fn prefix_string(p: btq_stratum::Prefix) -> String {
    p.to_string()
}

/// A verdict code for [`StratumServer::respond`]: 0 accepted, 1 block found, 2 stale,
/// 3 duplicate, 4 low difficulty, 5 unauthorized, 6 invalid, 7 node unavailable, 8 internal.
fn verdict(code: u32) -> R<Verdict> {
    use btq_stratum::RejectReason as Rj;
    Ok(match code {
        0 => Verdict::Accepted,
        1 => Verdict::BlockFound,
        2 => Verdict::Rejected(Rj::Stale),
        3 => Verdict::Rejected(Rj::Duplicate),
        4 => Verdict::Rejected(Rj::LowDifficulty),
        5 => Verdict::Rejected(Rj::Unauthorized),
        6 => Verdict::Rejected(Rj::Invalid),
        7 => Verdict::NodeUnavailable,
        8 => Verdict::InternalError,
        _ => return Err(BtqError::arg(format!("unknown verdict code {code}"))),
    })
}

/// Bytes to send to one session.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Transmit {
    /// The session (packed id).
    pub session: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

impl StratumState {
    fn remember(&mut self, token: RequestToken) -> u64 {
        let id = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        if self.tokens.len() >= MAX_PENDING_TOKENS {
            self.tokens.pop_first();
        }
        self.tokens.insert(id, token);
        id
    }

    fn event_json(&mut self, e: ServerEvent) -> Value {
        match e {
            ServerEvent::Authorize(a) => {
                let t = self.remember(a.token);
                json!({"type": "authorize", "token": t, "session": session_u64(a.token.session()),
                       "username": &*a.username, "password": a.password.as_deref()})
            }
            ServerEvent::Submit(s) => {
                let t = self.remember(s.token);
                json!({"type": "submit", "token": t, "session": session_u64(s.token.session()),
                       "user": &*s.user, "job_id": s.job_id.to_string(),
                       "extranonce1": s.extranonce1.to_string(),
                       "extranonce2": s.extranonce2.to_string(),
                       "ntime": format!("{:08x}", s.ntime), "nonce": format!("{:08x}", s.nonce),
                       "version": format!("{:08x}", s.version),
                       "version_bits": s.version_bits.map(|v| format!("{v:08x}")),
                       "difficulty": s.difficulty.get(),
                       "previous_difficulty": s.previous_difficulty.map(ShareDifficulty::get)})
            }
            ServerEvent::Disconnect { session, reason } => {
                json!({"type": "disconnect", "session": session_u64(session),
                       "reason": format!("{reason:?}")})
            }
            ServerEvent::Banned {
                prefix,
                until,
                reason,
            } => json!({"type": "banned", "prefix": prefix_string(prefix),
                        "until_ms": until.as_millis(), "reason": format!("{reason:?}")}),
            _ => json!({"type": "other"}),
        }
    }
}

#[uniffi::export]
impl StratumServer {
    /// Creates a server with the default configuration.
    ///
    /// # Errors
    /// [`BtqError::Stratum`] if the default configuration is refused (never in practice).
    #[uniffi::constructor]
    pub fn new() -> R<Arc<Self>> {
        let server =
            btq_stratum::Server::new(btq_stratum::Config::default()).map_err(BtqError::stratum)?;
        Ok(Arc::new(Self {
            state: Mutex::new(StratumState {
                server,
                tokens: BTreeMap::new(),
                next_token: 1,
            }),
        }))
    }

    /// A connection was accepted from `peer_ip`; returns the session id.
    ///
    /// # Errors
    /// [`BtqError::InvalidArgument`] for a bad IP; [`BtqError::Stratum`] when refused (banned,
    /// full, rate limited): close the socket.
    pub fn connect(&self, now_ms: u64, peer_ip: &str) -> R<u64> {
        let ip: IpAddr = peer_ip.parse().map_err(BtqError::arg)?;
        let mut st = lock(&self.state);
        let id = st
            .server
            .handle_connect(Timestamp::from_millis(now_ms), ip)
            .map_err(BtqError::stratum)?;
        Ok(session_u64(id))
    }

    /// Bytes arrived from a session's socket.
    ///
    /// # Errors
    /// [`BtqError::Stratum`] if the session is not live.
    pub fn receive(&self, now_ms: u64, session: u64, data: &[u8]) -> R<()> {
        let mut st = lock(&self.state);
        st.server
            .handle_bytes(Timestamp::from_millis(now_ms), session_id(session), data)
            .map_err(BtqError::stratum)
    }

    /// The session's connection closed; returns false if it was not live.
    pub fn close(&self, now_ms: u64, session: u64) -> bool {
        let mut st = lock(&self.state);
        let sid = session_id(session);
        st.tokens.retain(|_, t| t.session() != sid);
        st.server.handle_close(Timestamp::from_millis(now_ms), sid)
    }

    /// Runs the timers due at `now_ms`.
    pub fn timeout(&self, now_ms: u64) {
        lock(&self.state)
            .server
            .handle_timeout(Timestamp::from_millis(now_ms));
    }

    /// Returns the next deadline (ms), if any.
    pub fn poll_timeout(&self) -> Option<u64> {
        lock(&self.state)
            .server
            .poll_timeout()
            .map(Timestamp::as_millis)
    }

    /// Returns the next bytes to send, if any.
    pub fn poll_transmit(&self) -> Option<Transmit> {
        let mut st = lock(&self.state);
        let mut data = Vec::new();
        st.server.poll_transmit(&mut data).map(|s| Transmit {
            session: session_u64(s),
            data,
        })
    }

    /// Returns the next event as JSON (`type`: `authorize`, `submit`, `disconnect`, `banned`),
    /// if any. Authorize and submit carry a `token` to pass to [`StratumServer::respond`].
    pub fn poll_event(&self) -> Option<String> {
        let mut st = lock(&self.state);
        let e = st.server.poll_event()?;
        Some(st.event_json(e).to_string())
    }

    /// Answers an authorize or submit event (verdict codes: 0 accepted, 1 block found,
    /// 2 stale, 3 duplicate, 4 low difficulty, 5 unauthorized, 6 invalid, 7 node unavailable,
    /// 8 internal error).
    ///
    /// # Errors
    /// [`BtqError::InvalidArgument`] for an unknown verdict code; [`BtqError::Stratum`] when
    /// the verdict is dropped (session gone, unknown or answered token).
    pub fn respond(&self, now_ms: u64, token: u64, verdict_code: u32) -> R<()> {
        let v = verdict(verdict_code)?;
        let mut st = lock(&self.state);
        let t = st
            .tokens
            .remove(&token)
            .ok_or_else(|| BtqError::stratum(format!("unknown request token {token}")))?;
        st.server
            .respond(Timestamp::from_millis(now_ms), t, v)
            .map_err(BtqError::stratum)
    }

    /// Sends a job (from [`Pool::add_template`]'s JSON `stratum_job`) to every authorized
    /// session.
    ///
    /// # Errors
    /// [`BtqError::InvalidArgument`] for malformed job JSON, [`BtqError::Stratum`] for a job
    /// the server refuses.
    pub fn broadcast_job(&self, job_json: &str) -> R<()> {
        let job = stratum_job_from_json(job_json)?;
        lock(&self.state)
            .server
            .broadcast_job(&job)
            .map_err(BtqError::stratum)
    }

    /// Returns the number of live sessions.
    pub fn session_count(&self) -> u64 {
        lock(&self.state).server.stats().sessions as u64
    }
}

fn stratum_job_from_json(s: &str) -> R<btq_stratum::Job> {
    let v: Value = serde_json::from_str(s).map_err(BtqError::arg)?;
    let hex_field = |k: &str| -> R<Vec<u8>> {
        decode_hex(
            v.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| BtqError::arg(format!("job JSON: missing {k}")))?,
        )
    };
    let u32_field = |k: &str| -> R<u32> {
        v.get(k)
            .and_then(Value::as_u64)
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| BtqError::arg(format!("job JSON: missing {k}")))
    };
    let prevhash: [u8; 32] = hex_field("prevhash")?
        .try_into()
        .map_err(|_| BtqError::arg("job JSON: prevhash must be 32 bytes"))?;
    let mut branch = Vec::new();
    for h in v
        .get("merkle_branch")
        .and_then(Value::as_array)
        .ok_or_else(|| BtqError::arg("job JSON: missing merkle_branch"))?
    {
        let b: [u8; 32] = decode_hex(h.as_str().unwrap_or_default())?
            .try_into()
            .map_err(|_| BtqError::arg("job JSON: branch hash must be 32 bytes"))?;
        branch.push(b);
    }
    Ok(btq_stratum::Job {
        id: btq_stratum::JobId::from_u64(
            v.get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| BtqError::arg("job JSON: missing id"))?,
        ),
        prevhash,
        coinb1: hex_field("coinb1")?,
        coinb2: hex_field("coinb2")?,
        merkle_branch: branch,
        version: u32_field("version")?,
        nbits: u32_field("nbits")?,
        ntime: u32_field("ntime")?,
        clean_jobs: v.get("clean_jobs").and_then(Value::as_bool).unwrap_or(true),
    })
}

// ---------------------------------------------------------------------------------------------
// Pool

struct PoolState {
    factory: JobFactory,
    validator: ShareValidator,
}

/// Jobs from `getblocktemplate` and share validation for one pool payout script.
#[derive(uniffi::Object)]
pub struct Pool {
    state: Mutex<PoolState>,
}

#[uniffi::export]
impl Pool {
    /// Creates a pool paying the coinbase to `payout_address` on `network` (default job
    /// config: tag `/btq-kit/`, 4+4-byte extranonces; default validator limits).
    ///
    /// # Errors
    /// [`BtqError::Address`], [`BtqError::Pool`].
    #[uniffi::constructor]
    pub fn new(payout_address: &str, network: &str) -> R<Arc<Self>> {
        let net = parse_network(network)?;
        let a = Address::parse(payout_address, net).map_err(BtqError::address)?;
        let factory =
            JobFactory::new(JobConfig::new(a.script_pubkey().clone())).map_err(BtqError::pool)?;
        Ok(Arc::new(Self {
            state: Mutex::new(PoolState {
                factory,
                validator: ShareValidator::new(ValidatorConfig::default()),
            }),
        }))
    }

    /// Builds a job from a `getblocktemplate` result (JSON) and keeps it for share
    /// validation. Returns JSON with `job_id`, `height`, `notify` (the `mining.notify` params),
    /// `extranonce1_size`, `extranonce2_size` and `stratum_job` (for
    /// [`StratumServer::broadcast_job`]).
    ///
    /// # Errors
    /// [`BtqError::Pool`] for a template or job error.
    pub fn add_template(&self, template_json: &str) -> R<String> {
        let t = Template::from_json_str(template_json).map_err(BtqError::pool)?;
        let mut st = lock(&self.state);
        let job = st.factory.build(Arc::new(t)).map_err(BtqError::pool)?;
        let job = st.validator.add_job(job);
        let mut prevhash = job.prev_blockhash().to_byte_array();
        for w in prevhash.chunks_exact_mut(4) {
            w.reverse();
        }
        #[allow(clippy::cast_sign_loss, reason = "nVersion bits")]
        let version = job.version() as u32;
        let branch: Vec<String> = job
            .merkle_branch()
            .iter()
            .map(|h| btq_core::hex::encode(h))
            .collect();
        Ok(json!({
            "job_id": job.id().to_string(),
            "height": job.height(),
            "notify": job.notify_params().to_json(),
            "extranonce1_size": job.extranonce1_size(),
            "extranonce2_size": job.extranonce2_size(),
            "network_difficulty": job.network_difficulty(),
            "stratum_job": {
                "id": job.id().to_u64(), "prevhash": btq_core::hex::encode(&prevhash),
                "coinb1": btq_core::hex::encode(job.coinb1()),
                "coinb2": btq_core::hex::encode(job.coinb2()),
                "merkle_branch": branch, "version": version,
                "nbits": job.bits().to_consensus(), "ntime": job.ntime(),
                "clean_jobs": job.clean_jobs()
            }
        })
        .to_string())
    }

    /// Validates a share. A rejected share is not an error: the JSON answer has
    /// `accepted: false`, the Stratum `code` and `message`, `miner_fault` and `error`;
    /// an accepted one has `accepted: true`, `hash`, `actual_difficulty`, `is_block` and, for
    /// a block, `block_hex` (the assembled block to submit).
    ///
    /// `extranonce1`, `extranonce2`, `ntime`, `nonce` and `version_bits` are the hex strings of
    /// the submit; `now_secs` is the pool's Unix time.
    ///
    /// # Errors
    /// [`BtqError::InvalidArgument`] for a bad extranonce1 or difficulty; [`BtqError::Pool`]
    /// if a block candidate cannot be assembled.
    #[allow(clippy::too_many_arguments, reason = "the fields of mining.submit")]
    pub fn validate_share(
        &self,
        worker: &str,
        extranonce1: &str,
        difficulty: f64,
        version_mask: u32,
        job_id: &str,
        extranonce2: &str,
        ntime: &str,
        nonce: &str,
        version_bits: Option<String>,
        now_secs: u64,
    ) -> R<String> {
        let en1 = ExtraNonce::from_slice(&decode_hex(extranonce1)?)
            .ok_or_else(|| BtqError::arg("extranonce1 too long"))?;
        let diff = ShareDifficulty::new(difficulty).map_err(BtqError::arg)?;
        let session = SessionParams::new(Arc::from(worker), en1, diff, version_mask);
        let mut st = lock(&self.state);
        let en2_size = st
            .validator
            .job(
                job_id
                    .parse()
                    .unwrap_or(btq_pool::JobId::from_u64(u64::MAX)),
            )
            .map_or(extranonce2.len() / 2, |j| j.extranonce2_size());
        let result = Submit::from_hex(
            job_id,
            extranonce2,
            ntime,
            nonce,
            version_bits.as_deref(),
            en2_size,
        )
        .and_then(|s| {
            st.validator
                .validate(&session, &s, UnixTime::from_secs(now_secs))
        });
        drop(st);
        Ok(match result {
            Ok(acc) => {
                let block_hex = acc
                    .block
                    .as_ref()
                    .map(|c| btq_pool::assemble_block(c).map_err(BtqError::pool))
                    .transpose()?
                    .map(|b| btq_core::hex::encode(&encoding::encode_to_vec(&b)));
                json!({"accepted": true, "hash": acc.record.hash.to_string(),
                       "actual_difficulty": acc.record.actual_difficulty,
                       "difficulty": acc.record.difficulty, "height": acc.record.height,
                       "is_block": acc.record.is_block, "block_hex": block_hex})
            }
            Err(e) => {
                let r = StratumReject::from(&e);
                json!({"accepted": false, "code": r.code, "message": r.message,
                       "miner_fault": r.miner_fault, "error": e.to_string()})
            }
        }
        .to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Payout

/// Plans the consolidation of the pool's UTXOs (`listunspent` JSON) into `dest_address` and
/// signs every planned transaction with `key`. Returns JSON: `txs` (each `txid`, `hex`, `fee`,
/// `weight`, `vsize`, `inputs`), `rejected` (inputs left out, with the reason) and `deferred`.
///
/// # Errors
/// [`BtqError::Payout`] for bad UTXO JSON, a refused plan or a signing failure;
/// [`BtqError::Address`] for a bad destination.
#[uniffi::export]
pub fn consolidate(
    listunspent_json: &str,
    key: &LithiumKeypair,
    dest_address: &str,
    network: &str,
    feerate: u64,
) -> R<String> {
    let net = parse_network(network)?;
    let utxos = btq_payout::parse_utxos(listunspent_json).map_err(BtqError::payout)?;
    let dest = Address::parse(dest_address, net).map_err(BtqError::address)?;
    let cfg = ConsolidationConfig {
        feerate,
        ..ConsolidationConfig::default()
    };
    let h = key.inner.public_key().hash160();
    let plan = btq_payout::plan_consolidation(
        &utxos,
        &h,
        dest.script_pubkey(),
        &MempoolState::default(),
        &cfg,
    )
    .map_err(BtqError::payout)?;
    let signed = btq_payout::sign_all(&plan.txs, &key.inner).map_err(|errs| {
        BtqError::payout(
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let txs: Vec<Value> = signed
        .iter()
        .zip(&plan.txs)
        .map(|(tx, p)| {
            json!({"txid": tx.txid().to_string(),
                   "hex": btq_core::hex::encode(&encoding::encode_to_vec(tx)),
                   "fee": p.fee.to_sat(), "weight": tx.weight().to_wu(), "vsize": tx.vsize(),
                   "inputs": p.inputs.len()})
        })
        .collect();
    let rejected: Vec<Value> = plan
        .rejected
        .iter()
        .map(|r| {
            json!({"txid": r.outpoint.txid.to_string(), "vout": r.outpoint.vout,
                   "reason": r.issue.to_string()})
        })
        .collect();
    Ok(json!({"txs": txs, "rejected": rejected, "deferred": plan.deferred}).to_string())
}

// ---------------------------------------------------------------------------------------------
// Index

/// An index store (redb) opened for queries. btq-ffi exposes no write path: the store is only
/// read. redb locks the file, so open a copy or stop the indexer first.
#[derive(uniffi::Object)]
pub struct IndexReader {
    store: RedbStore,
}

impl IndexReader {
    fn script_hash(address: &str, network: &str) -> R<ScriptHash> {
        let spk = address_to_script(address, network)?;
        Ok(ScriptHash::of(&spk))
    }
}

#[uniffi::export]
impl IndexReader {
    /// Opens the redb store at `path`.
    ///
    /// # Errors
    /// [`BtqError::Index`] (missing path, locked or corrupt file).
    #[uniffi::constructor]
    pub fn open(path: &str) -> R<Arc<Self>> {
        let store = RedbStore::open(path).map_err(BtqError::index)?;
        Ok(Arc::new(Self { store }))
    }

    /// Returns the tip as JSON (`null` for an empty store, else `height` and `hash`).
    ///
    /// # Errors
    /// [`BtqError::Index`].
    pub fn tip_json(&self) -> R<String> {
        let snap = self.store.snapshot().map_err(BtqError::index)?;
        let tip = btq_index::query::tip(&snap).map_err(BtqError::index)?;
        Ok(match tip {
            Some(t) => json!({"height": t.block.height, "hash": t.block.hash.to_string()}),
            None => Value::Null,
        }
        .to_string())
    }

    /// Returns an address's confirmed balance and statistics as JSON.
    ///
    /// # Errors
    /// [`BtqError::Address`], [`BtqError::Index`].
    pub fn balance_json(&self, address: &str, network: &str) -> R<String> {
        let sh = Self::script_hash(address, network)?;
        let snap = self.store.snapshot().map_err(BtqError::index)?;
        let stats = btq_index::query::script_stats(&snap, &sh).map_err(BtqError::index)?;
        Ok(json!({"address": address, "scripthash": sh.to_string(),
                  "balance": stats.balance(), "chain_stats": stats})
        .to_string())
    }

    /// Returns up to `limit` history entries of an address, newest first, as JSON.
    ///
    /// # Errors
    /// [`BtqError::Address`], [`BtqError::Index`].
    pub fn history_json(&self, address: &str, network: &str, limit: u32) -> R<String> {
        let sh = Self::script_hash(address, network)?;
        let snap = self.store.snapshot().map_err(BtqError::index)?;
        let h =
            btq_index::query::history(&snap, &sh, None, limit as usize).map_err(BtqError::index)?;
        serde_json::to_string(&h).map_err(BtqError::internal)
    }

    /// Returns up to `limit` UTXOs of an address as JSON.
    ///
    /// # Errors
    /// [`BtqError::Address`], [`BtqError::Index`].
    pub fn utxos_json(&self, address: &str, network: &str, limit: u32) -> R<String> {
        let sh = Self::script_hash(address, network)?;
        let snap = self.store.snapshot().map_err(BtqError::index)?;
        let u = btq_index::query::utxos(&snap, &sh, limit as usize).map_err(BtqError::index)?;
        serde_json::to_string(&u).map_err(BtqError::internal)
    }
}
