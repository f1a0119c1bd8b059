//! The pool's unspent outputs, parsed exactly from the node's `listunspent` or `scantxoutset`
//! JSON (amounts are decimal BTQ and are never passed through a float).

use btq_core::params::COINBASE_MATURITY;
use btq_core::{Amount, OutPoint, ScriptBuf, Txid};
use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

/// The largest UTXO file accepted (64 MiB; 22,000 `listunspent` entries are about 12 MiB).
pub const MAX_UTXO_JSON_LEN: usize = 64 * 1024 * 1024;

/// An unspent output the pool controls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Utxo {
    /// The outpoint.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: Amount,
    /// Its locking script.
    pub script_pubkey: ScriptBuf,
    /// Confirmations (0 in the mempool).
    pub confirmations: u32,
    /// Whether it is a coinbase output: `Some(true/false)` when the source says so
    /// (`scantxoutset`, the pool's own records), `None` when it does not (`listunspent`).
    pub coinbase: Option<bool>,
}

impl Utxo {
    /// Returns true if the output may be spent in the next block: confirmed, and at least
    /// [`COINBASE_MATURITY`] confirmations deep if it is (or might be) a coinbase output. An
    /// output whose coinbase flag is unknown is treated as a coinbase output.
    pub fn is_mature(&self) -> bool {
        match self.coinbase {
            Some(false) => self.confirmations >= 1,
            Some(true) | None => self.confirmations >= COINBASE_MATURITY,
        }
    }
}

/// An error parsing a UTXO list.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UtxoParseError {
    /// The input is larger than [`MAX_UTXO_JSON_LEN`].
    #[error("UTXO JSON is {len} bytes, above the {limit}-byte limit")]
    TooLarge {
        /// The input length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON of the expected shape.
    #[error("malformed UTXO JSON: {0}")]
    Json(String),
    /// An entry has a bad field.
    #[error("UTXO entry {index}: bad {field}: {value:?}")]
    Field {
        /// The entry's index.
        index: usize,
        /// The field.
        field: &'static str,
        /// The offending text (truncated).
        value: String,
    },
}

#[derive(Deserialize)]
struct Entry<'a> {
    txid: &'a str,
    vout: u32,
    #[serde(rename = "scriptPubKey")]
    script_pubkey: &'a str,
    #[serde(borrow)]
    amount: &'a RawValue,
    #[serde(default)]
    confirmations: Option<u32>,
    #[serde(default)]
    coinbase: Option<bool>,
    #[serde(default)]
    height: Option<u32>,
}

#[derive(Deserialize)]
struct Scan<'a> {
    #[serde(borrow)]
    unspents: Vec<Entry<'a>>,
    height: u32,
}

fn is_array(json: &str) -> bool {
    json.trim_start().starts_with('[')
}

fn trunc(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Parses an amount written as a JSON number or string of decimal BTQ, exactly.
///
/// # Errors
/// The text of a bad amount.
pub fn parse_json_amount(raw: &RawValue) -> Result<Amount, String> {
    let text = raw.get().trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    Amount::from_btq_str(text).map_err(|_| trunc(text))
}

/// Parses the node's `listunspent` result (an array) or `scantxoutset` result (an object with
/// `unspents` and `height`; confirmations are `height − entry height + 1`).
///
/// # Errors
/// [`UtxoParseError`] for oversized input, bad JSON or a bad field, naming the entry.
pub fn parse_utxos(json: &str) -> Result<Vec<Utxo>, UtxoParseError> {
    if json.len() > MAX_UTXO_JSON_LEN {
        return Err(UtxoParseError::TooLarge {
            len: json.len(),
            limit: MAX_UTXO_JSON_LEN,
        });
    }
    let json_err = |e: serde_json::Error| UtxoParseError::Json(trunc(&e.to_string()));
    // Untagged enums cannot hold borrowed raw numbers, so the shape is chosen by hand.
    let (entries, tip) = if is_array(json) {
        (
            serde_json::from_str::<Vec<Entry<'_>>>(json).map_err(json_err)?,
            None,
        )
    } else {
        let s: Scan<'_> = serde_json::from_str(json).map_err(json_err)?;
        (s.unspents, Some(s.height))
    };
    let mut out = Vec::with_capacity(entries.len());
    for (index, e) in entries.into_iter().enumerate() {
        let field = |field, value: &str| UtxoParseError::Field {
            index,
            field,
            value: trunc(value),
        };
        let txid: Txid = e.txid.parse().map_err(|_| field("txid", e.txid))?;
        let script_pubkey = ScriptBuf::from_hex(e.script_pubkey)
            .map_err(|_| field("scriptPubKey", e.script_pubkey))?;
        let value = parse_json_amount(e.amount).map_err(|v| field("amount", &v))?;
        let confirmations = match (e.confirmations, tip, e.height) {
            (Some(c), _, _) => c,
            (None, Some(tip), Some(h)) => tip
                .checked_sub(h)
                .and_then(|d| d.checked_add(1))
                .ok_or_else(|| field("height", &h.to_string()))?,
            _ => return Err(field("confirmations", "missing")),
        };
        out.push(Utxo {
            outpoint: OutPoint::new(txid, e.vout),
            value,
            script_pubkey,
            confirmations,
            coinbase: e.coinbase,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct PayeeEntry<'a> {
    #[serde(default)]
    account: Option<String>,
    address: String,
    #[serde(borrow)]
    amount: &'a RawValue,
}

/// Parses a balances file: either an array of `{"account"?, "address", "amount"}` or an object
/// `{"<address>": amount}`; amounts are decimal BTQ (numbers or strings), parsed exactly. The
/// account defaults to the address.
///
/// # Errors
/// [`UtxoParseError`] for oversized input, bad JSON or a bad amount, naming the entry.
pub fn parse_payees(json: &str) -> Result<Vec<crate::plan::Payee>, UtxoParseError> {
    if json.len() > MAX_UTXO_JSON_LEN {
        return Err(UtxoParseError::TooLarge {
            len: json.len(),
            limit: MAX_UTXO_JSON_LEN,
        });
    }
    let json_err = |e: serde_json::Error| UtxoParseError::Json(trunc(&e.to_string()));
    let entries: Vec<(Option<String>, String, &RawValue)> = if is_array(json) {
        serde_json::from_str::<Vec<PayeeEntry<'_>>>(json)
            .map_err(json_err)?
            .into_iter()
            .map(|e| (e.account, e.address, e.amount))
            .collect()
    } else {
        serde_json::from_str::<std::collections::BTreeMap<String, &RawValue>>(json)
            .map_err(json_err)?
            .into_iter()
            .map(|(a, v)| (None, a, v))
            .collect()
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(index, (account, address, raw))| {
            let amount = parse_json_amount(raw).map_err(|v| UtxoParseError::Field {
                index,
                field: "amount",
                value: v,
            })?;
            Ok(crate::plan::Payee {
                account: account.unwrap_or_else(|| address.clone()),
                address,
                amount,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    const TXID: &str = "0000ca45ea08433961609b50cd0c3f76d14589f8f61973ebbc344c3a160f7cdd";

    #[test]
    fn listunspent_amounts_exact() {
        let json = format!(
            r#"[{{"txid":"{TXID}","vout":1,"address":"x","scriptPubKey":"0014{}","amount":0.30000001,"confirmations":120,"spendable":true}},
               {{"txid":"{TXID}","vout":2,"scriptPubKey":"0014{}","amount":"20999999.99999999","confirmations":3,"coinbase":false}}]"#,
            "11".repeat(20),
            "11".repeat(20)
        );
        let u = parse_utxos(&json).unwrap();
        assert_eq!(u[0].value.to_sat(), 30_000_001);
        assert_eq!(u[0].coinbase, None);
        assert!(u[0].is_mature());
        assert_eq!(u[1].value.to_sat(), 2_099_999_999_999_999);
        assert!(u[1].is_mature());
    }

    #[test]
    fn scantxoutset_confirmations() {
        let json = format!(
            r#"{{"success":true,"height":300,"unspents":[{{"txid":"{TXID}","vout":0,"scriptPubKey":"0014{}","desc":"d","amount":50.00000000,"coinbase":true,"height":202}}],"total_amount":50}}"#,
            "22".repeat(20)
        );
        let u = parse_utxos(&json).unwrap();
        assert_eq!(u[0].confirmations, 99);
        assert!(!u[0].is_mature());
    }

    #[test]
    fn payees_both_forms() {
        let a = parse_payees(
            r#"[{"account":"x","address":"A","amount":"0.5"},{"address":"B","amount":1.00000001}]"#,
        )
        .unwrap();
        assert_eq!(a[0].account, "x");
        assert_eq!(a[1].account, "B");
        assert_eq!(a[1].amount.to_sat(), 100_000_001);
        let b = parse_payees(r#"{"C": 0.1}"#).unwrap();
        assert_eq!(b[0].amount.to_sat(), 10_000_000);
    }

    #[test]
    fn bad_amounts_named() {
        for a in ["0.000000001", "-1", "1e3", "\"abc\""] {
            let json = format!(
                r#"[{{"txid":"{TXID}","vout":0,"scriptPubKey":"00","amount":{a},"confirmations":1}}]"#
            );
            let e = parse_utxos(&json).unwrap_err();
            assert!(
                matches!(
                    e,
                    UtxoParseError::Field {
                        field: "amount",
                        ..
                    }
                ),
                "{a}: {e:?}"
            );
        }
    }
}
