//! Parsing `getblocktemplate` results (BIP22/23/145, `rules: ["segwit"]`) into a typed
//! [`Template`].
//!
//! Parsing is bounded and never panics: the JSON text is capped at [`MAX_TEMPLATE_JSON_LEN`]
//! before serde sees it, the transaction count at [`MAX_TEMPLATE_TXS`], every hex field is
//! length-checked, and every transaction's `txid`/`hash` must match its `data`.

use btq_core::block::WITNESS_COMMITMENT_PREFIX;
use btq_core::encoding;
use btq_core::hash::{self, BlockHash, Txid, Wtxid};
use btq_core::hex as bhex;
use btq_core::pow::{CompactTarget, Target};
use btq_core::script::ScriptBuf;
use btq_core::tx::Transaction;
use serde::Deserialize;
use thiserror::Error;

/// Largest `getblocktemplate` JSON text accepted (bytes). An 8 MB block is 16 MB of hex; with
/// the per-transaction fields this stays well under the cap.
pub const MAX_TEMPLATE_JSON_LEN: usize = 48 * 1024 * 1024;
/// Largest number of template transactions accepted (an 8,000,000 WU block holds at most
/// 8,333 transactions of the 960 WU minimum).
pub const MAX_TEMPLATE_TXS: usize = 8_400;
/// Largest serialized transaction accepted in a template (`MAX_BLOCK_SERIALIZED_SIZE`).
pub const MAX_TEMPLATE_TX_LEN: usize = 8_000_000;

/// An error parsing a `getblocktemplate` result.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The JSON text is longer than the cap.
    #[error("template json of {len} bytes exceeds the limit of {limit}")]
    TooLong {
        /// The length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The JSON is malformed or a field has the wrong type (serde's line and column).
    #[error("malformed template json at line {line} column {column}")]
    Json {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// A field's value is outside its valid range or badly encoded.
    #[error("invalid template field `{field}`")]
    InvalidField {
        /// The field name.
        field: &'static str,
    },
    /// Too many transactions.
    #[error("template with {count} transactions exceeds the limit of {limit}")]
    TooManyTransactions {
        /// The count.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A transaction's `data` does not decode.
    #[error("template transaction {index} does not decode: {source}")]
    BadTransaction {
        /// Its index in `transactions`.
        index: usize,
        /// The decoding error.
        source: encoding::DecodeError,
    },
    /// A transaction's `txid` or `hash` differs from its `data`.
    #[error("template transaction {index}: {field} does not match its data")]
    HashMismatch {
        /// Its index in `transactions`.
        index: usize,
        /// `txid` or `hash`.
        field: &'static str,
    },
    /// The `segwit` rule is missing (the node always sets it since segwit is active).
    #[error("template lacks the segwit rule")]
    NoSegwit,
}

/// One transaction of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateTx {
    /// The decoded transaction.
    pub tx: Transaction,
    /// Its txid.
    pub txid: Txid,
    /// Its wtxid.
    pub wtxid: Wtxid,
    /// Its fee in satoshis.
    pub fee: u64,
    /// Its sigop cost.
    pub sigops: u64,
    /// Its weight.
    pub weight: u64,
    /// 1-based indexes of template transactions it depends on.
    pub depends: Vec<u32>,
}

/// A block template: everything needed to build jobs and assemble blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Block version (`version`).
    pub version: i32,
    /// The tip the block builds on (`previousblockhash`).
    pub prev_blockhash: BlockHash,
    /// The transactions after the coinbase.
    pub transactions: Vec<TemplateTx>,
    /// Subsidy plus fees (`coinbasevalue`, satoshis).
    pub coinbase_value: u64,
    /// The network target (`target`).
    pub target: Target,
    /// The compact target (`bits`).
    pub bits: CompactTarget,
    /// The node's current time (`curtime`).
    pub cur_time: u32,
    /// The earliest valid block time (`mintime`, median time past + 1).
    pub min_time: u32,
    /// The height of the block to build (`height`).
    pub height: u32,
    /// The witness commitment output script (`default_witness_commitment`).
    pub default_witness_commitment: Option<ScriptBuf>,
    /// The long-poll id (`longpollid`).
    pub longpoll_id: Option<String>,
    /// Block weight limit (`weightlimit`, 8,000,000 if absent).
    pub weight_limit: u64,
    /// Block sigop-cost limit (`sigoplimit`, 80,000 if absent).
    pub sigop_limit: u64,
    /// Raw coinbase flags to include in the scriptSig (`coinbaseaux.flags`).
    pub coinbase_aux_flags: Vec<u8>,
}

#[derive(Deserialize)]
struct RawTx {
    data: String,
    txid: Option<String>,
    hash: Option<String>,
    #[serde(default)]
    depends: Vec<u32>,
    #[serde(default)]
    fee: u64,
    #[serde(default)]
    sigops: u64,
    #[serde(default)]
    weight: u64,
}

#[derive(Deserialize)]
struct RawTemplate {
    version: i64,
    #[serde(default)]
    rules: Vec<String>,
    previousblockhash: String,
    #[serde(default)]
    transactions: Vec<RawTx>,
    #[serde(default)]
    coinbaseaux: Option<serde_json::Map<String, serde_json::Value>>,
    coinbasevalue: u64,
    #[serde(default)]
    longpollid: Option<String>,
    target: String,
    mintime: u64,
    curtime: u64,
    bits: String,
    height: u64,
    #[serde(default)]
    default_witness_commitment: Option<String>,
    #[serde(default)]
    weightlimit: Option<u64>,
    #[serde(default)]
    sigoplimit: Option<u64>,
}

fn field<T>(r: Option<T>, field: &'static str) -> Result<T, TemplateError> {
    r.ok_or(TemplateError::InvalidField { field })
}

impl Template {
    /// Parses the JSON text of a `getblocktemplate` result (the `result` object itself).
    ///
    /// # Errors
    /// [`TemplateError`] for oversized, malformed or inconsistent input.
    pub fn from_json_str(s: &str) -> Result<Self, TemplateError> {
        if s.len() > MAX_TEMPLATE_JSON_LEN {
            return Err(TemplateError::TooLong {
                len: s.len(),
                limit: MAX_TEMPLATE_JSON_LEN,
            });
        }
        let raw: RawTemplate = serde_json::from_str(s).map_err(|e| TemplateError::Json {
            line: e.line(),
            column: e.column(),
        })?;
        Self::from_raw(raw)
    }

    /// Parses an already decoded `getblocktemplate` result.
    ///
    /// # Errors
    /// [`TemplateError`] for malformed or inconsistent input.
    pub fn from_json_value(v: &serde_json::Value) -> Result<Self, TemplateError> {
        let raw = RawTemplate::deserialize(v).map_err(|e| TemplateError::Json {
            line: e.line(),
            column: e.column(),
        })?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawTemplate) -> Result<Self, TemplateError> {
        if !raw.rules.iter().any(|r| r == "segwit" || r == "!segwit") {
            return Err(TemplateError::NoSegwit);
        }
        if raw.transactions.len() > MAX_TEMPLATE_TXS {
            return Err(TemplateError::TooManyTransactions {
                count: raw.transactions.len(),
                limit: MAX_TEMPLATE_TXS,
            });
        }
        let version = field(i32::try_from(raw.version).ok(), "version")?;
        let prev_blockhash: BlockHash =
            field(raw.previousblockhash.parse().ok(), "previousblockhash")?;
        let target =
            Target::from_be_bytes(field(bhex::decode_array::<32>(&raw.target).ok(), "target")?);
        let bits_bytes = field(bhex::decode_array::<4>(&raw.bits).ok(), "bits")?;
        let bits = CompactTarget::from_consensus(u32::from_be_bytes(bits_bytes));
        let cur_time = field(u32::try_from(raw.curtime).ok(), "curtime")?;
        let min_time = field(u32::try_from(raw.mintime).ok(), "mintime")?;
        let height = field(
            u32::try_from(raw.height)
                .ok()
                .filter(|h| i32::try_from(*h).is_ok()),
            "height",
        )?;
        if raw.coinbasevalue > btq_core::amount::MAX_MONEY {
            return Err(TemplateError::InvalidField {
                field: "coinbasevalue",
            });
        }
        let default_witness_commitment = match raw.default_witness_commitment {
            None => None,
            Some(h) => {
                let b = field(
                    bhex::decode_bounded(&h, 100).ok(),
                    "default_witness_commitment",
                )?;
                if b.len() < 38 || !b.starts_with(&WITNESS_COMMITMENT_PREFIX) {
                    return Err(TemplateError::InvalidField {
                        field: "default_witness_commitment",
                    });
                }
                Some(ScriptBuf::from_bytes(b))
            }
        };
        let coinbase_aux_flags = match raw
            .coinbaseaux
            .as_ref()
            .and_then(|m| m.get("flags"))
            .and_then(serde_json::Value::as_str)
        {
            Some(f) => field(bhex::decode_bounded(f, 64).ok(), "coinbaseaux")?,
            None => Vec::new(),
        };
        let mut transactions = Vec::with_capacity(raw.transactions.len());
        for (index, t) in raw.transactions.into_iter().enumerate() {
            let bytes = field(
                bhex::decode_bounded(&t.data, MAX_TEMPLATE_TX_LEN).ok(),
                "transactions.data",
            )?;
            let tx: Transaction = encoding::decode_from_slice(&bytes)
                .map_err(|source| TemplateError::BadTransaction { index, source })?;
            let txid = tx.txid();
            let wtxid = tx.wtxid();
            if let Some(s) = &t.txid {
                let given: Txid = field(s.parse().ok(), "transactions.txid")?;
                if given != txid {
                    return Err(TemplateError::HashMismatch {
                        index,
                        field: "txid",
                    });
                }
            }
            if let Some(s) = &t.hash {
                let given: Wtxid = field(s.parse().ok(), "transactions.hash")?;
                if given != wtxid {
                    return Err(TemplateError::HashMismatch {
                        index,
                        field: "hash",
                    });
                }
            }
            if t.fee > btq_core::amount::MAX_MONEY {
                return Err(TemplateError::InvalidField {
                    field: "transactions.fee",
                });
            }
            let weight = if t.weight == 0 {
                tx.weight().to_wu()
            } else {
                t.weight
            };
            transactions.push(TemplateTx {
                tx,
                txid,
                wtxid,
                fee: t.fee,
                sigops: t.sigops,
                weight,
                depends: t.depends,
            });
        }
        Ok(Self {
            version,
            prev_blockhash,
            transactions,
            coinbase_value: raw.coinbasevalue,
            target,
            bits,
            cur_time,
            min_time,
            height,
            default_witness_commitment,
            longpoll_id: raw.longpollid,
            weight_limit: raw
                .weightlimit
                .unwrap_or(btq_core::tx::Weight::MAX_BLOCK.to_wu()),
            sigop_limit: raw
                .sigoplimit
                .unwrap_or(btq_core::policy::MAX_BLOCK_SIGOPS_COST),
            coinbase_aux_flags,
        })
    }

    /// Returns the sum of the template transactions' fees, or `None` on overflow.
    pub fn total_fees(&self) -> Option<u64> {
        self.transactions
            .iter()
            .try_fold(0u64, |acc, t| acc.checked_add(t.fee))
    }

    /// Returns the txids of the template transactions in internal byte order (the merkle leaves
    /// after the coinbase).
    pub fn txid_leaves(&self) -> Vec<[u8; 32]> {
        self.transactions
            .iter()
            .map(|t| t.txid.to_byte_array())
            .collect()
    }

    /// Computes the witness commitment script for these transactions and a coinbase witness
    /// reserved value, as `GenerateCoinbaseCommitment` does.
    pub fn compute_witness_commitment(&self, reserved: &[u8; 32]) -> ScriptBuf {
        witness_commitment_script(self.transactions.iter().map(|t| t.wtxid), reserved)
    }
}

/// Computes the witness commitment output script `6a24aa21a9ed ‖ sha256d(root ‖ reserved)`,
/// where `root` is the witness merkle root with the coinbase's wtxid counted as zero and
/// `wtxids` are the wtxids of the transactions after the coinbase.
pub fn witness_commitment_script(
    wtxids: impl IntoIterator<Item = Wtxid>,
    reserved: &[u8; 32],
) -> ScriptBuf {
    let leaves = core::iter::once([0u8; 32]).chain(wtxids.into_iter().map(Wtxid::to_byte_array));
    let root = hash::merkle_root(leaves).unwrap_or([0u8; 32]);
    let mut buf = [0u8; 64];
    let (l, r) = buf.split_at_mut(32);
    l.copy_from_slice(&root);
    r.copy_from_slice(reserved);
    let commitment = hash::sha256d(&buf);
    let mut script = Vec::with_capacity(38);
    script.extend_from_slice(&WITNESS_COMMITMENT_PREFIX);
    script.extend_from_slice(&commitment);
    ScriptBuf::from_bytes(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = include_str!("../../../shared/vectors/gbt-empty.json");
    const TWO: &str = include_str!("../../../shared/vectors/gbt-with-2tx.json");

    #[test]
    fn parses_node_templates() {
        let t = Template::from_json_str(EMPTY).unwrap();
        assert_eq!(t.height, 349);
        assert_eq!(t.bits.to_consensus(), 0x207f_ffff);
        assert_eq!(t.version, 0x3000_0000);
        assert_eq!(t.coinbase_value, 500_000_000);
        assert!(t.transactions.is_empty());
        assert_eq!(t.target, t.bits.to_target().unwrap());
        let t2 = Template::from_json_str(TWO).unwrap();
        assert_eq!(t2.transactions.len(), 2);
        assert_eq!(t2.total_fees(), Some(t2.coinbase_value - 500_000_000));
    }

    #[test]
    fn commitment_matches_node() {
        for s in [EMPTY, TWO] {
            let t = Template::from_json_str(s).unwrap();
            assert_eq!(
                Some(t.compute_witness_commitment(&[0; 32])),
                t.default_witness_commitment
            );
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            Template::from_json_str("{"),
            Err(TemplateError::Json { .. })
        ));
        let mut v: serde_json::Value = serde_json::from_str(EMPTY).unwrap();
        v["bits"] = "zz".into();
        assert_eq!(
            Template::from_json_value(&v),
            Err(TemplateError::InvalidField { field: "bits" })
        );
        let mut v: serde_json::Value = serde_json::from_str(TWO).unwrap();
        v["transactions"][0]["txid"] = v["transactions"][1]["txid"].clone();
        assert_eq!(
            Template::from_json_value(&v),
            Err(TemplateError::HashMismatch {
                index: 0,
                field: "txid"
            })
        );
    }
}
