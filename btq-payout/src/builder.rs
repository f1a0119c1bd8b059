//! The Lithium transaction builder: turns [`PlannedTx`]s into signed, standard transactions.
//!
//! Inputs are P2WPKH-Lithium spends: BIP143 sighash with the Lithium scriptCode
//! (`76a914<h160>88bb`), ML-DSA-44 signatures over the 32-byte sighash with the empty context,
//! witness `[sig‖0x01, pk]` (btq-core's [`sign_transaction`](btq_core::signer::sign_transaction), byte-identical with the node's
//! vectors). With the `parallel` feature, transactions and their inputs are signed on all
//! cores. With `fast-signer`, signatures come from PQClean's AVX2 ML-DSA-44 (hedged, randomized;
//! the node accepts it) instead of the deterministic pure-Rust signer.
//!
//! Every transaction is checked after signing: its weight equals the planned weight, it passes
//! [`check_standard`], and its fee covers the minimum relay fee. Either every transaction is
//! returned or none is: no partial result.

use btq_core::lithium::Keypair;
use btq_core::policy::{NonStandardError, check_standard, min_relay_fee};
use btq_core::signer::{Prevout, SpendError};
use btq_core::{ScriptBuf, Transaction};
use thiserror::Error;

use crate::plan::{InputIssue, PlannedTx, RejectedInput};

/// An error building one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Inputs the key cannot spend (every one is listed).
    #[error("transaction {tx}: {} input(s) cannot be spent: {}", inputs.len(), describe(inputs))]
    Inputs {
        /// The transaction's index in the batch.
        tx: usize,
        /// The inputs and reasons.
        inputs: Vec<RejectedInput>,
    },
    /// Signing failed.
    #[error("transaction {tx}: signing failed: {error}")]
    Sign {
        /// The transaction's index.
        tx: usize,
        /// The error.
        error: SpendError,
    },
    /// The signed transaction is not standard.
    #[error("transaction {tx}: not standard: {error}")]
    NonStandard {
        /// The transaction's index.
        tx: usize,
        /// The rule broken.
        error: NonStandardError,
    },
    /// The fee is below the minimum relay fee.
    #[error("transaction {tx}: fee {fee} sat is below the minimum relay fee {min} sat")]
    FeeBelowRelay {
        /// The transaction's index.
        tx: usize,
        /// The fee.
        fee: u64,
        /// The minimum.
        min: u64,
    },
    /// The outputs and fee do not add up to the inputs.
    #[error("transaction {tx}: inputs do not equal outputs plus fee")]
    Unbalanced {
        /// The transaction's index.
        tx: usize,
    },
    /// A bug: the signed weight differs from the planned weight.
    #[error("internal error: transaction {tx} weighs {actual}, planned {planned}")]
    WeightMismatch {
        /// The transaction's index.
        tx: usize,
        /// Planned.
        planned: u64,
        /// Actual.
        actual: u64,
    },
}

fn describe(inputs: &[RejectedInput]) -> String {
    inputs
        .iter()
        .map(|r| format!("{}: {}", r.outpoint, r.issue))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks that `keypair` can spend every input of `planned` as P2WPKH-Lithium.
///
/// # Errors
/// Every input it cannot spend.
pub fn check_inputs(planned: &PlannedTx, keypair: &Keypair) -> Result<(), Vec<RejectedInput>> {
    let ours = ScriptBuf::new_p2wpkh(&keypair.public_key().hash160());
    let bad: Vec<RejectedInput> = planned
        .inputs
        .iter()
        .filter_map(|u| {
            let issue = if u.script_pubkey.script_type() != btq_core::script::ScriptType::P2wpkh {
                InputIssue::UnknownScript {
                    kind: u.script_pubkey.script_type().rpc_name(),
                }
            } else if u.script_pubkey != ours {
                InputIssue::KeyMismatch
            } else if !u.is_mature() {
                InputIssue::Immature {
                    confirmations: u.confirmations,
                    required: btq_core::params::COINBASE_MATURITY,
                }
            } else {
                return None;
            };
            Some(RejectedInput {
                outpoint: u.outpoint,
                issue,
            })
        })
        .collect();
    if bad.is_empty() { Ok(()) } else { Err(bad) }
}

/// Returns the prevouts of a planned transaction, in input order.
pub fn prevouts(planned: &PlannedTx) -> Vec<Prevout> {
    planned
        .inputs
        .iter()
        .map(|u| Prevout {
            value: u.value.to_sat(),
            script_pubkey: u.script_pubkey.clone(),
        })
        .collect()
}

/// Signs one planned transaction and checks it (`index` names it in errors).
///
/// # Errors
/// [`BuildError`]: inputs the key cannot spend, a signing failure, or a result that is not
/// standard, below the relay fee, or not of the planned weight.
pub fn sign_planned(
    index: usize,
    planned: &PlannedTx,
    keypair: &Keypair,
) -> Result<Transaction, BuildError> {
    check_inputs(planned, keypair).map_err(|inputs| BuildError::Inputs { tx: index, inputs })?;
    let mut tx = planned.unsigned_tx();
    let prev = prevouts(planned);
    let in_total = prev.iter().try_fold(0u64, |a, p| a.checked_add(p.value));
    let out_total = tx
        .output
        .iter()
        .try_fold(0u64, |a, o| a.checked_add(o.value));
    if in_total.zip(out_total).and_then(|(i, o)| i.checked_sub(o)) != Some(planned.fee.to_sat()) {
        return Err(BuildError::Unbalanced { tx: index });
    }
    sign_inputs(&mut tx, &prev, keypair).map_err(|error| BuildError::Sign { tx: index, error })?;
    verify_built(index, &tx, planned)?;
    Ok(tx)
}

fn verify_built(index: usize, tx: &Transaction, planned: &PlannedTx) -> Result<(), BuildError> {
    let actual = tx.weight().to_wu();
    if actual != planned.weight {
        return Err(BuildError::WeightMismatch {
            tx: index,
            planned: planned.weight,
            actual,
        });
    }
    check_standard(tx).map_err(|error| BuildError::NonStandard { tx: index, error })?;
    let min = min_relay_fee(tx).to_sat();
    if planned.fee.to_sat() < min {
        return Err(BuildError::FeeBelowRelay {
            tx: index,
            fee: planned.fee.to_sat(),
            min,
        });
    }
    Ok(())
}

#[cfg(not(feature = "fast-signer"))]
fn sign_inputs(
    tx: &mut Transaction,
    prev: &[Prevout],
    keypair: &Keypair,
) -> Result<(), SpendError> {
    btq_core::signer::sign_transaction(tx, prev, keypair)
}

#[cfg(feature = "fast-signer")]
fn sign_inputs(
    tx: &mut Transaction,
    prev: &[Prevout],
    keypair: &Keypair,
) -> Result<(), SpendError> {
    crate::fast::sign_p2wpkh(tx, prev, keypair)
}

/// Signs every planned transaction (in parallel with the `parallel` feature) and checks each.
/// Either all are returned, in order, or the errors of every transaction that failed.
///
/// # Errors
/// One [`BuildError`] per failed transaction; nothing is returned then.
pub fn sign_all(
    planned: &[PlannedTx],
    keypair: &Keypair,
) -> Result<Vec<Transaction>, Vec<BuildError>> {
    #[cfg(feature = "parallel")]
    let results: Vec<Result<Transaction, BuildError>> = {
        use rayon::prelude::*;
        planned
            .par_iter()
            .enumerate()
            .map(|(i, p)| sign_planned(i, p, keypair))
            .collect()
    };
    #[cfg(not(feature = "parallel"))]
    let results: Vec<Result<Transaction, BuildError>> = planned
        .iter()
        .enumerate()
        .map(|(i, p)| sign_planned(i, p, keypair))
        .collect();
    let mut ok = Vec::with_capacity(results.len());
    let mut errs = Vec::new();
    for r in results {
        match r {
            Ok(t) => ok.push(t),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() { Ok(ok) } else { Err(errs) }
}
