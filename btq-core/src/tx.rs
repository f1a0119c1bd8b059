//! Transactions (BIP144 serialisation, unchanged in BTQ) and weight with witness scale factor 16.

use core::fmt;

use crate::amount::Amount;
use crate::encoding::{
    self, Decodable, DecodeError, Encodable, MAX_SIZE, Reader, compact_size_len,
    write_compact_size, write_var_bytes,
};
use crate::hash::{Txid, Wtxid};
use crate::script::ScriptBuf;

/// BTQ's witness scale factor (`WITNESS_SCALE_FACTOR`, 16; Bitcoin's is 4).
pub const WITNESS_SCALE_FACTOR: u64 = 16;

/// Transaction weight: `stripped size × 15 + total size`, i.e. 16 weight units per non-witness
/// byte and 1 per witness byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Weight(u64);

impl Weight {
    /// Zero weight.
    pub const ZERO: Self = Self(0);
    /// `MAX_BLOCK_WEIGHT` (8,000,000).
    pub const MAX_BLOCK: Self = Self(8_000_000);
    /// `MAX_STANDARD_TX_WEIGHT` (400,000).
    pub const MAX_STANDARD_TX: Self = Self(400_000);

    /// Creates a weight from weight units.
    pub const fn from_wu(wu: u64) -> Self {
        Self(wu)
    }

    /// Returns weight units.
    pub const fn to_wu(self) -> u64 {
        self.0
    }

    /// Returns the virtual size, `ceil(weight / 16)`.
    pub const fn to_vbytes_ceil(self) -> u64 {
        self.0.div_ceil(WITNESS_SCALE_FACTOR)
    }

    /// Computes weight from stripped and total sizes.
    pub const fn from_sizes(stripped: u64, total: u64) -> Self {
        Self(
            stripped
                .saturating_mul(WITNESS_SCALE_FACTOR - 1)
                .saturating_add(total),
        )
    }

    /// Adds two weights, saturating.
    #[must_use]
    pub const fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} WU", self.0)
    }
}

/// A reference to a transaction output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OutPoint {
    /// The transaction.
    pub txid: Txid,
    /// The output index.
    pub vout: u32,
}

impl OutPoint {
    /// The null outpoint of a coinbase input.
    pub const NULL: Self = Self {
        txid: Txid::ZERO,
        vout: u32::MAX,
    };

    /// Creates an outpoint.
    pub const fn new(txid: Txid, vout: u32) -> Self {
        Self { txid, vout }
    }

    /// Returns true for the coinbase's null outpoint.
    pub fn is_null(&self) -> bool {
        *self == Self::NULL
    }
}

impl fmt::Display for OutPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.txid, self.vout)
    }
}

impl Encodable for OutPoint {
    fn consensus_encode(&self, out: &mut Vec<u8>) {
        self.txid.consensus_encode(out);
        out.extend_from_slice(&self.vout.to_le_bytes());
    }
    fn encoded_len(&self) -> usize {
        36
    }
}

impl Decodable for OutPoint {
    fn consensus_decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            txid: Txid::consensus_decode(r)?,
            vout: r.u32_le()?,
        })
    }
}

/// A witness: a stack of byte strings.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Witness(Vec<Vec<u8>>);

impl fmt::Debug for Witness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|i| crate::hex::encode(i)))
            .finish()
    }
}

impl Witness {
    /// An empty witness.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Creates a witness from its items.
    pub const fn from_items(items: Vec<Vec<u8>>) -> Self {
        Self(items)
    }

    /// Returns the items.
    pub fn items(&self) -> &[Vec<u8>] {
        &self.0
    }

    /// Appends an item.
    pub fn push(&mut self, item: Vec<u8>) {
        self.0.push(item);
    }

    /// Returns true without items.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns the number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Returns the serialised size.
    pub fn serialized_len(&self) -> usize {
        compact_size_len(self.0.len() as u64)
            + self
                .0
                .iter()
                .map(|i| compact_size_len(i.len() as u64) + i.len())
                .sum::<usize>()
    }
}

impl Encodable for Witness {
    fn consensus_encode(&self, out: &mut Vec<u8>) {
        write_compact_size(out, self.0.len() as u64);
        for item in &self.0 {
            write_var_bytes(out, item);
        }
    }
    fn encoded_len(&self) -> usize {
        self.serialized_len()
    }
}

impl Decodable for Witness {
    fn consensus_decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count("witness items", 1, MAX_SIZE)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(r.var_bytes("witness item", MAX_SIZE)?.to_vec());
        }
        Ok(Self(items))
    }
}

/// A transaction input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TxIn {
    /// The output spent.
    pub previous_output: OutPoint,
    /// The signature script.
    pub script_sig: ScriptBuf,
    /// The sequence number.
    pub sequence: u32,
    /// The witness.
    pub witness: Witness,
}

impl TxIn {
    /// An input spending `prevout` with an empty script, sequence `0xffffffff` and no witness.
    pub fn new(prevout: OutPoint) -> Self {
        Self {
            previous_output: prevout,
            script_sig: ScriptBuf::new(),
            sequence: u32::MAX,
            witness: Witness::new(),
        }
    }

    fn encode_base(&self, out: &mut Vec<u8>) {
        self.previous_output.consensus_encode(out);
        write_var_bytes(out, self.script_sig.as_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
    }

    fn base_len(&self) -> usize {
        36 + compact_size_len(self.script_sig.len() as u64) + self.script_sig.len() + 4
    }

    fn decode_base(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let previous_output = OutPoint::consensus_decode(r)?;
        let script_sig = ScriptBuf::from_bytes(r.var_bytes("script_sig", MAX_SIZE)?.to_vec());
        let sequence = r.u32_le()?;
        Ok(Self {
            previous_output,
            script_sig,
            sequence,
            witness: Witness::new(),
        })
    }
}

/// A transaction output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxOut {
    /// The value in satoshis (decoded values above `MAX_MONEY` are kept as read and rejected by
    /// [`Transaction::check`]).
    pub value: u64,
    /// The locking script.
    pub script_pubkey: ScriptBuf,
}

impl TxOut {
    /// Creates an output.
    pub fn new(value: Amount, script_pubkey: ScriptBuf) -> Self {
        Self {
            value: value.to_sat(),
            script_pubkey,
        }
    }

    /// Returns the serialised size.
    pub fn serialized_len(&self) -> usize {
        8 + compact_size_len(self.script_pubkey.len() as u64) + self.script_pubkey.len()
    }
}

impl Encodable for TxOut {
    fn consensus_encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.value.to_le_bytes());
        write_var_bytes(out, self.script_pubkey.as_bytes());
    }
    fn encoded_len(&self) -> usize {
        self.serialized_len()
    }
}

impl Decodable for TxOut {
    fn consensus_decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let value = r.u64_le()?;
        let script_pubkey = ScriptBuf::from_bytes(r.var_bytes("script_pubkey", MAX_SIZE)?.to_vec());
        Ok(Self {
            value,
            script_pubkey,
        })
    }
}

/// A transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transaction {
    /// The version (`nVersion`).
    pub version: i32,
    /// The inputs.
    pub input: Vec<TxIn>,
    /// The outputs.
    pub output: Vec<TxOut>,
    /// The lock time (`nLockTime`).
    pub lock_time: u32,
}

/// A context-free transaction check failure (`CheckTransaction`, `consensus/tx_check.cpp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxCheckError {
    /// No inputs (`bad-txns-vin-empty`).
    #[error("bad-txns-vin-empty")]
    NoInputs,
    /// No outputs (`bad-txns-vout-empty`).
    #[error("bad-txns-vout-empty")]
    NoOutputs,
    /// Stripped size × 16 above the block weight limit (`bad-txns-oversize`).
    #[error("bad-txns-oversize")]
    Oversize,
    /// An output value above `MAX_MONEY` (`bad-txns-vout-toolarge`).
    #[error("bad-txns-vout-toolarge")]
    OutputTooLarge,
    /// Output values sum above `MAX_MONEY` (`bad-txns-txouttotal-toolarge`).
    #[error("bad-txns-txouttotal-toolarge")]
    OutputTotalTooLarge,
    /// The same outpoint spent twice (`bad-txns-inputs-duplicate`).
    #[error("bad-txns-inputs-duplicate")]
    DuplicateInputs,
    /// Coinbase scriptSig outside 2..=100 bytes (`bad-cb-length`).
    #[error("bad-cb-length")]
    CoinbaseLength,
    /// A null prevout in a non-coinbase (`bad-txns-prevout-null`).
    #[error("bad-txns-prevout-null")]
    NullPrevout,
}

impl Transaction {
    /// Returns true if any input has a witness.
    pub fn has_witness(&self) -> bool {
        self.input.iter().any(|i| !i.witness.is_empty())
    }

    /// Returns true for a coinbase (one input with the null outpoint).
    pub fn is_coinbase(&self) -> bool {
        matches!(self.input.as_slice(), [only] if only.previous_output.is_null())
    }

    /// Appends the serialisation without witness data (what the txid hashes).
    pub fn encode_stripped(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        write_compact_size(out, self.input.len() as u64);
        for i in &self.input {
            i.encode_base(out);
        }
        write_compact_size(out, self.output.len() as u64);
        for o in &self.output {
            o.consensus_encode(out);
        }
        out.extend_from_slice(&self.lock_time.to_le_bytes());
    }

    /// Returns the size without witness data.
    pub fn stripped_size(&self) -> usize {
        4 + compact_size_len(self.input.len() as u64)
            + self.input.iter().map(TxIn::base_len).sum::<usize>()
            + compact_size_len(self.output.len() as u64)
            + self.output.iter().map(TxOut::serialized_len).sum::<usize>()
            + 4
    }

    /// Returns the full serialised size.
    pub fn total_size(&self) -> usize {
        let mut n = self.stripped_size();
        if self.has_witness() {
            n += 2 + self
                .input
                .iter()
                .map(|i| i.witness.serialized_len())
                .sum::<usize>();
        }
        n
    }

    /// Returns the weight (`GetTransactionWeight`).
    pub fn weight(&self) -> Weight {
        Weight::from_sizes(self.stripped_size() as u64, self.total_size() as u64)
    }

    /// Returns the true virtual size, `ceil(weight / 16)` (the node's `decoderawtransaction`
    /// prints the weight in its `vsize` field; this is the value mempool RPCs print).
    pub fn vsize(&self) -> u64 {
        self.weight().to_vbytes_ceil()
    }

    /// Computes the txid.
    pub fn txid(&self) -> Txid {
        let mut v = Vec::with_capacity(self.stripped_size());
        self.encode_stripped(&mut v);
        Txid::hash(&v)
    }

    /// Computes the wtxid (equal to the txid bytes without witness data).
    pub fn wtxid(&self) -> Wtxid {
        Wtxid::hash(&encoding::encode_to_vec(self))
    }

    /// Returns the sum of output values, or `None` above `MAX_MONEY`.
    pub fn output_value(&self) -> Option<Amount> {
        self.output.iter().try_fold(Amount::ZERO, |acc, o| {
            Amount::from_sat(o.value)
                .ok()
                .and_then(|v| acc.checked_add(v))
        })
    }

    /// Context-free checks (`CheckTransaction`).
    ///
    /// # Errors
    /// The first rule broken, with the node's reject reason.
    pub fn check(&self) -> Result<(), TxCheckError> {
        if self.input.is_empty() {
            return Err(TxCheckError::NoInputs);
        }
        if self.output.is_empty() {
            return Err(TxCheckError::NoOutputs);
        }
        if (self.stripped_size() as u64).saturating_mul(WITNESS_SCALE_FACTOR)
            > Weight::MAX_BLOCK.to_wu()
        {
            return Err(TxCheckError::Oversize);
        }
        let mut total: u64 = 0;
        for o in &self.output {
            if o.value > crate::amount::MAX_MONEY {
                return Err(TxCheckError::OutputTooLarge);
            }
            total = total.saturating_add(o.value);
            if total > crate::amount::MAX_MONEY {
                return Err(TxCheckError::OutputTotalTooLarge);
            }
        }
        let mut seen: Vec<&OutPoint> = self.input.iter().map(|i| &i.previous_output).collect();
        seen.sort_unstable();
        if seen.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
            return Err(TxCheckError::DuplicateInputs);
        }
        if self.is_coinbase() {
            let len = self.input.first().map_or(0, |i| i.script_sig.len());
            if !(2..=100).contains(&len) {
                return Err(TxCheckError::CoinbaseLength);
            }
        } else if self.input.iter().any(|i| i.previous_output.is_null()) {
            return Err(TxCheckError::NullPrevout);
        }
        Ok(())
    }
}

/// The smallest serialised input (36-byte outpoint, empty script, sequence).
const MIN_TXIN_SIZE: usize = 41;
/// The smallest serialised output (value, empty script).
const MIN_TXOUT_SIZE: usize = 9;

impl Encodable for Transaction {
    fn consensus_encode(&self, out: &mut Vec<u8>) {
        if !self.has_witness() {
            return self.encode_stripped(out);
        }
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&[0x00, 0x01]);
        write_compact_size(out, self.input.len() as u64);
        for i in &self.input {
            i.encode_base(out);
        }
        write_compact_size(out, self.output.len() as u64);
        for o in &self.output {
            o.consensus_encode(out);
        }
        for i in &self.input {
            i.witness.consensus_encode(out);
        }
        out.extend_from_slice(&self.lock_time.to_le_bytes());
    }

    fn encoded_len(&self) -> usize {
        self.total_size()
    }
}

impl Decodable for Transaction {
    /// Decodes as the node's `UnserializeTransaction` does, including its handling of an empty
    /// input list, the superfluous-witness rule and unknown flags.
    fn consensus_decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.i32_le()?;
        let read_inputs = |r: &mut Reader<'_>| -> Result<Vec<TxIn>, DecodeError> {
            let n = r.count("inputs", MIN_TXIN_SIZE, MAX_SIZE)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(TxIn::decode_base(r)?);
            }
            Ok(v)
        };
        let read_outputs = |r: &mut Reader<'_>| -> Result<Vec<TxOut>, DecodeError> {
            let n = r.count("outputs", MIN_TXOUT_SIZE, MAX_SIZE)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(TxOut::consensus_decode(r)?);
            }
            Ok(v)
        };
        let mut flags = 0u8;
        let mut input = read_inputs(r)?;
        let mut output = Vec::new();
        if input.is_empty() {
            flags = r.u8()?;
            if flags != 0 {
                input = read_inputs(r)?;
                output = read_outputs(r)?;
            }
        } else {
            output = read_outputs(r)?;
        }
        if flags & 1 != 0 {
            flags ^= 1;
            for i in &mut input {
                i.witness = Witness::consensus_decode(r)?;
            }
            if !input.iter().any(|i| !i.witness.is_empty()) {
                return Err(DecodeError::SuperfluousWitness);
            }
        }
        if flags != 0 {
            return Err(DecodeError::UnknownOptionalData { flags });
        }
        let lock_time = r.u32_le()?;
        Ok(Self {
            version,
            input,
            output,
            lock_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_formula() {
        assert_eq!(Weight::from_sizes(82, 3824).to_wu(), 5054);
        assert_eq!(Weight::from_wu(5054).to_vbytes_ceil(), 316);
        assert_eq!(Weight::from_wu(396_298).to_vbytes_ceil(), 24_769);
    }

    #[test]
    fn superfluous_witness_and_flags() {
        // version, marker 00, flag 01, 1 input with empty script, 1 output, empty witness, locktime
        let mut v = vec![2, 0, 0, 0, 0, 1, 1];
        v.extend([0u8; 36]);
        v.extend([0, 0xff, 0xff, 0xff, 0xff, 1]);
        v.extend([0u8; 8]);
        v.push(0);
        v.push(0); // witness: 0 items
        v.extend([0u8; 4]);
        assert_eq!(
            encoding::decode_from_slice::<Transaction>(&v),
            Err(DecodeError::SuperfluousWitness)
        );
        v[5] = 2;
        assert_eq!(
            encoding::decode_from_slice::<Transaction>(&v),
            Err(DecodeError::UnknownOptionalData { flags: 2 })
        );
    }
}
