//! Signing and verifying Lithium spends of the three BTQ output types the node accepts:
//! P2WPKH-Lithium (BIP143, witness `[sig‖ht, pk]`), P2PKH-Lithium (legacy sighash, scriptSig
//! `<sig‖ht> <pk>`) and single-leaf P2MR (legacy sighash over the leaf, witness
//! `[sig‖ht, leaf, control]`).
//!
//! Signatures are ML-DSA-44 over the raw 32-byte digest with the empty context, deterministic
//! by default (the node accepts deterministic and hedged signatures alike), so the same key,
//! prevouts and outputs reproduce the node-verified vectors byte for byte.

use thiserror::Error;

use crate::hash::SighashDigest;
use crate::lithium::{self, Keypair, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::script::{
    self, Builder, Instruction, P2MR_LEAF_VERSION, P2mrTree, ScriptBuf, ScriptType,
};
use crate::sighash::{SIGHASH_ALL, SighashCache, legacy_sighash};
use crate::tx::{Transaction, Witness};

/// The output an input spends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prevout {
    /// Its value in satoshis.
    pub value: u64,
    /// Its locking script.
    pub script_pubkey: ScriptBuf,
}

/// A Lithium spend type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpendKind {
    /// P2WPKH-Lithium.
    P2wpkh,
    /// P2PKH-Lithium (`…88bb`).
    P2pkh,
    /// Single-leaf P2MR `<pk> OP_CHECKSIGDILITHIUM`.
    P2mrSingleLeaf,
}

/// An error signing or verifying an input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SpendError {
    /// The number of prevouts differs from the number of inputs.
    #[error("{prevouts} prevouts given for {inputs} inputs")]
    PrevoutCount {
        /// Prevouts given.
        prevouts: usize,
        /// Inputs in the transaction.
        inputs: usize,
    },
    /// The input index is out of range.
    #[error("input {0} does not exist")]
    NoSuchInput(usize),
    /// The prevout's script is not one this key can spend.
    #[error("input {index}: the key does not match the {kind} script {script}")]
    KeyMismatch {
        /// The input.
        index: usize,
        /// The script type.
        kind: &'static str,
        /// The script hex.
        script: String,
    },
    /// The prevout's script is not a Lithium-spendable type.
    #[error("input {index}: cannot sign a {kind} output with a Lithium key")]
    UnsupportedScript {
        /// The input.
        index: usize,
        /// The script type.
        kind: &'static str,
    },
    /// The input's witness or scriptSig is not a well-formed Lithium spend.
    #[error("input {index}: malformed Lithium spend ({reason})")]
    Malformed {
        /// The input.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The signature does not verify.
    #[error("input {index}: signature does not verify")]
    BadSignature {
        /// The input.
        index: usize,
    },
}

/// Returns the kind of Lithium spend `script_pubkey` needs, if `keypair` can spend it.
fn kind_for(index: usize, spk: &ScriptBuf, keypair: &Keypair) -> Result<SpendKind, SpendError> {
    let pk = keypair.public_key();
    let h160 = pk.hash160();
    let ty = spk.script_type();
    let mismatch = || SpendError::KeyMismatch {
        index,
        kind: ty.rpc_name(),
        script: spk.to_string(),
    };
    match ty {
        ScriptType::P2wpkh => {
            if spk.as_bytes().get(2..) == Some(&h160[..]) {
                Ok(SpendKind::P2wpkh)
            } else {
                Err(mismatch())
            }
        }
        ScriptType::P2pkhLithium => {
            if spk.as_bytes().get(3..23) == Some(&h160[..]) {
                Ok(SpendKind::P2pkh)
            } else {
                Err(mismatch())
            }
        }
        ScriptType::P2mr => {
            let tree = P2mrTree::single_lithium_leaf(pk.as_bytes());
            if tree.script_pubkey() == *spk {
                Ok(SpendKind::P2mrSingleLeaf)
            } else {
                Err(mismatch())
            }
        }
        _ => Err(SpendError::UnsupportedScript {
            index,
            kind: ty.rpc_name(),
        }),
    }
}

/// Computes the digest input `index` must sign.
fn digest_for(
    tx: &Transaction,
    cache: &SighashCache<'_>,
    index: usize,
    kind: SpendKind,
    prevout: &Prevout,
    pubkey: &[u8],
    hash_type: u32,
) -> Result<SighashDigest, SpendError> {
    match kind {
        SpendKind::P2wpkh => {
            let h160 = crate::hash::hash160(pubkey);
            cache
                .p2wpkh_lithium_sighash(index, &h160, prevout.value, hash_type)
                .map_err(|_| SpendError::NoSuchInput(index))
        }
        SpendKind::P2pkh => Ok(legacy_sighash(
            tx,
            index,
            prevout.script_pubkey.as_bytes(),
            hash_type,
        )),
        SpendKind::P2mrSingleLeaf => {
            let leaf = ScriptBuf::new_p2pk_lithium(pubkey);
            Ok(legacy_sighash(tx, index, leaf.as_bytes(), hash_type))
        }
    }
}

/// Signs every input of `tx` with `keypair` (deterministic ML-DSA-44, `SIGHASH_ALL`), filling
/// witnesses and scriptSigs. Signatures are computed in parallel with the `parallel` feature.
///
/// # Errors
/// A prevout count mismatch, or an input the key cannot spend; `tx` is left unchanged then.
pub fn sign_transaction(
    tx: &mut Transaction,
    prevouts: &[Prevout],
    keypair: &Keypair,
) -> Result<(), SpendError> {
    if prevouts.len() != tx.input.len() {
        return Err(SpendError::PrevoutCount {
            prevouts: prevouts.len(),
            inputs: tx.input.len(),
        });
    }
    let pk = keypair.public_key().as_bytes().to_vec();
    let mut kinds = Vec::with_capacity(prevouts.len());
    let mut jobs = Vec::with_capacity(prevouts.len());
    {
        let cache = SighashCache::new(tx);
        for (i, p) in prevouts.iter().enumerate() {
            let kind = kind_for(i, &p.script_pubkey, keypair)?;
            let digest = digest_for(tx, &cache, i, kind, p, &pk, SIGHASH_ALL)?;
            kinds.push(kind);
            jobs.push((keypair, digest.to_byte_array()));
        }
    }
    let sigs = lithium::sign_many(&jobs);
    for ((input, kind), sig) in tx.input.iter_mut().zip(kinds).zip(sigs) {
        let mut item = Vec::with_capacity(SIGNATURE_LEN + 1);
        item.extend_from_slice(sig.as_bytes());
        item.push(0x01); // SIGHASH_ALL
        match kind {
            SpendKind::P2wpkh => {
                input.script_sig = ScriptBuf::new();
                input.witness = Witness::from_items(vec![item, pk.clone()]);
            }
            SpendKind::P2pkh => {
                input.script_sig = Builder::new()
                    .push_slice(&item)
                    .push_slice(&pk)
                    .into_script();
                input.witness = Witness::new();
            }
            SpendKind::P2mrSingleLeaf => {
                let leaf = ScriptBuf::new_p2pk_lithium(&pk);
                input.script_sig = ScriptBuf::new();
                input.witness =
                    Witness::from_items(vec![item, leaf.into_bytes(), vec![P2MR_LEAF_VERSION | 1]]);
            }
        }
    }
    Ok(())
}

fn split_sig(index: usize, item: &[u8]) -> Result<(&[u8], u32), SpendError> {
    match item.split_last() {
        Some((ht, sig)) if sig.len() == SIGNATURE_LEN => Ok((sig, u32::from(*ht))),
        _ => Err(SpendError::Malformed {
            index,
            reason: "signature item is not 2,420 bytes plus a hashtype byte",
        }),
    }
}

/// Verifies input `index` as a Lithium spend of `prevouts[index]`, with the node's rules for
/// each output type (the hashtype byte is taken from the signature and hashed as-is).
///
/// # Errors
/// A malformed spend, a key that does not match the script, or a bad signature.
pub fn verify_input(
    tx: &Transaction,
    cache: &SighashCache<'_>,
    index: usize,
    prevout: &Prevout,
) -> Result<(), SpendError> {
    let input = tx.input.get(index).ok_or(SpendError::NoSuchInput(index))?;
    let spk = &prevout.script_pubkey;
    let ty = spk.script_type();
    let malformed = |reason| SpendError::Malformed { index, reason };
    let (sig, ht, pk, digest) = match ty {
        ScriptType::P2wpkh => {
            let [sig_item, pk] = input.witness.items() else {
                return Err(malformed("witness is not [sig, pubkey]"));
            };
            if pk.len() != PUBLIC_KEY_LEN {
                return Err(malformed(
                    "witness public key is not 1,312 bytes (an ECDSA spend?)",
                ));
            }
            if !input.script_sig.is_empty() {
                return Err(malformed("scriptSig of a witness spend is not empty"));
            }
            let h160 = crate::hash::hash160(pk);
            if spk.as_bytes().get(2..) != Some(&h160[..]) {
                return Err(SpendError::KeyMismatch {
                    index,
                    kind: ty.rpc_name(),
                    script: spk.to_string(),
                });
            }
            let (sig, ht) = split_sig(index, sig_item)?;
            let d = cache
                .p2wpkh_lithium_sighash(index, &h160, prevout.value, ht)
                .map_err(|_| SpendError::NoSuchInput(index))?;
            (sig, ht, pk.as_slice(), d)
        }
        ScriptType::P2pkhLithium => {
            let pushes: Vec<&[u8]> = script::instructions(input.script_sig.as_bytes())
                .map(|i| match i {
                    Ok((_, Instruction::Push(d))) => Ok(d),
                    _ => Err(malformed("scriptSig is not two pushes")),
                })
                .collect::<Result<_, _>>()?;
            let [sig_item, pk] = pushes.as_slice() else {
                return Err(malformed("scriptSig is not two pushes"));
            };
            let h160 = crate::hash::hash160(pk);
            if spk.as_bytes().get(3..23) != Some(&h160[..]) {
                return Err(SpendError::KeyMismatch {
                    index,
                    kind: ty.rpc_name(),
                    script: spk.to_string(),
                });
            }
            let (sig, ht) = split_sig(index, sig_item)?;
            (sig, ht, *pk, legacy_sighash(tx, index, spk.as_bytes(), ht))
        }
        ScriptType::P2mr => {
            let [sig_item, leaf, control] = input.witness.items() else {
                return Err(malformed("witness is not [sig, leaf, control]"));
            };
            let root = script::p2mr_root_from_control(control, leaf)
                .map_err(|_| malformed("bad control block"))?;
            if spk.as_bytes().get(2..) != Some(&root[..]) {
                return Err(malformed(
                    "control block does not commit to the output's merkle root",
                ));
            }
            let leaf_script = ScriptBuf::from_bytes(leaf.clone());
            let pk = match script::instructions(leaf).collect::<Result<Vec<_>, _>>() {
                Ok(ins) => match ins.as_slice() {
                    [
                        (_, Instruction::Push(pk)),
                        (_, Instruction::Op(script::opcodes::OP_CHECKSIGDILITHIUM)),
                    ] => *pk,
                    _ => return Err(malformed("leaf is not <pk> OP_CHECKSIGDILITHIUM")),
                },
                Err(_) => return Err(malformed("leaf script has a truncated push")),
            };
            let (sig, ht) = split_sig(index, sig_item)?;
            (
                sig,
                ht,
                pk,
                legacy_sighash(tx, index, leaf_script.as_bytes(), ht),
            )
        }
        _ => {
            return Err(SpendError::UnsupportedScript {
                index,
                kind: ty.rpc_name(),
            });
        }
    };
    let _ = ht;
    if lithium::verify(pk, digest.as_byte_array(), sig) {
        Ok(())
    } else {
        Err(SpendError::BadSignature { index })
    }
}

/// Verifies every input of `tx` as a Lithium spend.
///
/// # Errors
/// The first input that fails.
pub fn verify_transaction(tx: &Transaction, prevouts: &[Prevout]) -> Result<(), SpendError> {
    if prevouts.len() != tx.input.len() {
        return Err(SpendError::PrevoutCount {
            prevouts: prevouts.len(),
            inputs: tx.input.len(),
        });
    }
    let cache = SighashCache::new(tx);
    for (i, p) in prevouts.iter().enumerate() {
        verify_input(tx, &cache, i, p)?;
    }
    Ok(())
}
