//! Signature hashes: the legacy algorithm (`SignatureHash` for BASE and, in BTQ, for
//! `OP_CHECKSIGDILITHIUM` inside P2MR leaves) and BIP143 (witness v0, including P2WPKH-Lithium
//! with the scriptCode `76a914<h160>88bb`).
//!
//! The 32-byte digest is what ML-DSA-44 signs, in sha256d output order. The hashtype byte is
//! appended to the signature; the node never validates it for Lithium signatures, and builders
//! here use `SIGHASH_ALL` (0x01).

use crate::encoding::{Encodable, write_compact_size, write_var_bytes};
use crate::hash::{SighashDigest, sha256d};
use crate::script::ScriptBuf;
use crate::tx::{Transaction, TxOut};

/// `SIGHASH_ALL`.
pub const SIGHASH_ALL: u32 = 1;
/// `SIGHASH_NONE`.
pub const SIGHASH_NONE: u32 = 2;
/// `SIGHASH_SINGLE`.
pub const SIGHASH_SINGLE: u32 = 3;
/// `SIGHASH_ANYONECANPAY` flag.
pub const SIGHASH_ANYONECANPAY: u32 = 0x80;

/// The digest the legacy algorithm returns for an out-of-range input or a `SIGHASH_SINGLE`
/// without a matching output (`uint256::ONE`).
pub const LEGACY_ONE: SighashDigest = {
    let mut b = [0u8; 32];
    b[0] = 1;
    SighashDigest::from_byte_array(b)
};

/// Builds the legacy signature-hash preimage, or `None` where the node returns
/// [`LEGACY_ONE`] without hashing (input index out of range, or `SIGHASH_SINGLE` with no output
/// at the input's index).
pub fn legacy_preimage(
    tx: &Transaction,
    input_index: usize,
    script_code: &[u8],
    hash_type: u32,
) -> Option<Vec<u8>> {
    if input_index >= tx.input.len() {
        return None;
    }
    let base = hash_type & 0x1f;
    let anyone = hash_type & SIGHASH_ANYONECANPAY != 0;
    let single = base == SIGHASH_SINGLE;
    let none = base == SIGHASH_NONE;
    if single && input_index >= tx.output.len() {
        return None;
    }
    let code = ScriptBuf::from_bytes(script_code.to_vec()).without_codeseparators();
    let mut out = Vec::with_capacity(tx.stripped_size() + code.len());
    out.extend_from_slice(&tx.version.to_le_bytes());
    let inputs: Vec<usize> = if anyone {
        vec![input_index]
    } else {
        (0..tx.input.len()).collect()
    };
    write_compact_size(&mut out, inputs.len() as u64);
    for i in inputs {
        let Some(txin) = tx.input.get(i) else {
            continue;
        };
        txin.previous_output.consensus_encode(&mut out);
        if i == input_index {
            write_var_bytes(&mut out, code.as_bytes());
        } else {
            write_compact_size(&mut out, 0);
        }
        let seq = if i != input_index && (single || none) {
            0
        } else {
            txin.sequence
        };
        out.extend_from_slice(&seq.to_le_bytes());
    }
    let n_out = if none {
        0
    } else if single {
        input_index + 1
    } else {
        tx.output.len()
    };
    write_compact_size(&mut out, n_out as u64);
    for (j, o) in tx.output.iter().take(n_out).enumerate() {
        if single && j != input_index {
            // CTxOut() : value -1, empty script.
            out.extend_from_slice(&u64::MAX.to_le_bytes());
            write_compact_size(&mut out, 0);
        } else {
            o.consensus_encode(&mut out);
        }
    }
    out.extend_from_slice(&tx.lock_time.to_le_bytes());
    out.extend_from_slice(&hash_type.to_le_bytes());
    Some(out)
}

/// Computes the legacy signature hash (`SignatureHash` with `SigVersion::BASE`).
pub fn legacy_sighash(
    tx: &Transaction,
    input_index: usize,
    script_code: &[u8],
    hash_type: u32,
) -> SighashDigest {
    legacy_preimage(tx, input_index, script_code, hash_type)
        .map_or(LEGACY_ONE, |p| SighashDigest::hash(&p))
}

/// Precomputed BIP143 midstate hashes of one transaction, for signing many inputs.
#[derive(Debug, Clone)]
pub struct SighashCache<'a> {
    tx: &'a Transaction,
    hash_prevouts: [u8; 32],
    hash_sequence: [u8; 32],
    hash_outputs: [u8; 32],
}

/// An error computing a BIP143 signature hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SighashError {
    /// The input index is out of range.
    #[error("input index {index} out of range ({inputs} inputs)")]
    InputOutOfRange {
        /// The index.
        index: usize,
        /// The number of inputs.
        inputs: usize,
    },
}

impl<'a> SighashCache<'a> {
    /// Precomputes hashPrevouts, hashSequence and hashOutputs.
    pub fn new(tx: &'a Transaction) -> Self {
        let mut p = Vec::with_capacity(36 * tx.input.len());
        let mut s = Vec::with_capacity(4 * tx.input.len());
        for i in &tx.input {
            i.previous_output.consensus_encode(&mut p);
            s.extend_from_slice(&i.sequence.to_le_bytes());
        }
        let mut o = Vec::new();
        for out in &tx.output {
            out.consensus_encode(&mut o);
        }
        Self {
            tx,
            hash_prevouts: sha256d(&p),
            hash_sequence: sha256d(&s),
            hash_outputs: sha256d(&o),
        }
    }

    /// Returns the transaction.
    pub fn transaction(&self) -> &'a Transaction {
        self.tx
    }

    /// Builds the BIP143 preimage for `input_index` spending `amount` with `script_code`.
    ///
    /// # Errors
    /// [`SighashError::InputOutOfRange`].
    pub fn bip143_preimage(
        &self,
        input_index: usize,
        script_code: &[u8],
        amount: u64,
        hash_type: u32,
    ) -> Result<Vec<u8>, SighashError> {
        let tx = self.tx;
        let txin = tx
            .input
            .get(input_index)
            .ok_or(SighashError::InputOutOfRange {
                index: input_index,
                inputs: tx.input.len(),
            })?;
        let base = hash_type & 0x1f;
        let anyone = hash_type & SIGHASH_ANYONECANPAY != 0;
        let zero = [0u8; 32];
        let hash_prevouts = if anyone { zero } else { self.hash_prevouts };
        let hash_sequence = if anyone || base == SIGHASH_SINGLE || base == SIGHASH_NONE {
            zero
        } else {
            self.hash_sequence
        };
        let hash_outputs = if base != SIGHASH_SINGLE && base != SIGHASH_NONE {
            self.hash_outputs
        } else if base == SIGHASH_SINGLE {
            tx.output.get(input_index).map_or(zero, |o: &TxOut| {
                let mut v = Vec::with_capacity(o.serialized_len());
                o.consensus_encode(&mut v);
                sha256d(&v)
            })
        } else {
            zero
        };
        let mut out = Vec::with_capacity(156 + script_code.len());
        out.extend_from_slice(&tx.version.to_le_bytes());
        out.extend_from_slice(&hash_prevouts);
        out.extend_from_slice(&hash_sequence);
        txin.previous_output.consensus_encode(&mut out);
        write_var_bytes(&mut out, script_code);
        out.extend_from_slice(&amount.to_le_bytes());
        out.extend_from_slice(&txin.sequence.to_le_bytes());
        out.extend_from_slice(&hash_outputs);
        out.extend_from_slice(&tx.lock_time.to_le_bytes());
        out.extend_from_slice(&hash_type.to_le_bytes());
        Ok(out)
    }

    /// Computes the BIP143 signature hash.
    ///
    /// # Errors
    /// [`SighashError::InputOutOfRange`].
    pub fn bip143_sighash(
        &self,
        input_index: usize,
        script_code: &[u8],
        amount: u64,
        hash_type: u32,
    ) -> Result<SighashDigest, SighashError> {
        Ok(SighashDigest::hash(&self.bip143_preimage(
            input_index,
            script_code,
            amount,
            hash_type,
        )?))
    }

    /// Computes the BIP143 hash of a P2WPKH-Lithium input: scriptCode `76a914<h160>88bb`.
    ///
    /// # Errors
    /// [`SighashError::InputOutOfRange`].
    pub fn p2wpkh_lithium_sighash(
        &self,
        input_index: usize,
        pubkey_hash: &[u8; 20],
        amount: u64,
        hash_type: u32,
    ) -> Result<SighashDigest, SighashError> {
        let code = ScriptBuf::new_p2pkh_lithium(pubkey_hash);
        self.bip143_sighash(input_index, code.as_bytes(), amount, hash_type)
    }
}
