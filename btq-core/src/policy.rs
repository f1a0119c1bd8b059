//! Policy (standardness) facts a transaction builder needs (`policy/policy.{h,cpp}`).

use crate::amount::Amount;
use crate::script::{ScriptBuf, ScriptType};
use crate::tx::{Transaction, TxOut, Weight};

/// `MAX_STANDARD_TX_WEIGHT`.
pub const MAX_STANDARD_TX_WEIGHT: Weight = Weight::MAX_STANDARD_TX;
/// `DEFAULT_BLOCK_MAX_WEIGHT`: what node templates fill up to.
pub const DEFAULT_BLOCK_MAX_WEIGHT: Weight = Weight::from_wu(7_600_000);
/// `MIN_STANDARD_TX_NONWITNESS_SIZE`.
pub const MIN_STANDARD_TX_NONWITNESS_SIZE: usize = 65;
/// `MAX_STANDARD_TX_SIGOPS_COST`.
pub const MAX_STANDARD_TX_SIGOPS_COST: u64 = 16_000;
/// `MAX_BLOCK_SIGOPS_COST`.
pub const MAX_BLOCK_SIGOPS_COST: u64 = 80_000;
/// `DUST_RELAY_TX_FEE` in sat/kvB.
pub const DUST_RELAY_FEE_SAT_PER_KVB: u64 = 3_000;
/// `DEFAULT_MIN_RELAY_TX_FEE` in sat/kvB (1 vB = 16 WU).
pub const MIN_RELAY_FEE_SAT_PER_KVB: u64 = 1_000;
/// `DEFAULT_ANCESTOR_LIMIT` / `DEFAULT_DESCENDANT_LIMIT`.
pub const ANCESTOR_DESCENDANT_LIMIT: usize = 25;
/// `MAX_OP_RETURN_RELAY` (83 bytes of script).
pub const MAX_OP_RETURN_RELAY: usize = 83;
/// `TX_MAX_STANDARD_VERSION`.
pub const TX_MAX_STANDARD_VERSION: i32 = 2;
/// `MAX_STANDARD_SCRIPTSIG_SIZE` in BTQ (65,536).
pub const MAX_STANDARD_SCRIPTSIG_SIZE: usize = 65_536;

/// The weight of one P2WPKH-Lithium input (41 non-witness bytes and a 3,740-byte witness).
pub const P2WPKH_LITHIUM_INPUT_WEIGHT: u64 = 4_396;
/// The weight of one P2WPKH output (31 bytes × 16).
pub const P2WPKH_OUTPUT_WEIGHT: u64 = 496;

/// Returns the fee for `nbytes` at `sat_per_kvb`, rounded up as `CFeeRate::GetFee` does.
pub const fn fee_for_vsize(sat_per_kvb: u64, nbytes: u64) -> u64 {
    (sat_per_kvb.saturating_mul(nbytes)).div_ceil(1000)
}

/// Returns the dust threshold of an output (`GetDustThreshold` at `DUST_RELAY_TX_FEE`). It still
/// assumes a 107-byte ECDSA spend, so it under-prices Lithium spends: keep payouts far above it.
/// Unspendable outputs (OP_RETURN) have no threshold (zero).
pub fn dust_threshold(txout: &TxOut) -> Amount {
    let ty = txout.script_pubkey.script_type();
    if ty == ScriptType::NullData
        || txout.script_pubkey.as_bytes().len() > crate::script::MAX_SCRIPT_SIZE
    {
        return Amount::ZERO;
    }
    let mut size = txout.serialized_len() as u64;
    size += if txout.script_pubkey.witness_program().is_some() {
        32 + 4 + 1 + 107 / 16 + 4
    } else {
        32 + 4 + 1 + 107 + 4
    };
    Amount::from_sat(fee_for_vsize(DUST_RELAY_FEE_SAT_PER_KVB, size)).unwrap_or(Amount::MAX)
}

/// Returns true if the output's value is below its dust threshold.
pub fn is_dust(txout: &TxOut) -> bool {
    txout.value < dust_threshold(txout).to_sat()
}

/// Returns the minimum relay fee for a transaction (1 sat per virtual byte).
pub fn min_relay_fee(tx: &Transaction) -> Amount {
    Amount::from_sat(fee_for_vsize(MIN_RELAY_FEE_SAT_PER_KVB, tx.vsize())).unwrap_or(Amount::MAX)
}

/// Why a transaction is not standard (`IsStandardTx`, the parts checkable without prevouts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonStandardError {
    /// Version outside 1..=2.
    #[error("version")]
    Version,
    /// Weight above 400,000.
    #[error("tx-size")]
    TxSize,
    /// Stripped size below 65 bytes.
    #[error("tx-size-small")]
    TxSizeSmall,
    /// A scriptSig above 65,536 bytes.
    #[error("scriptsig-size")]
    ScriptSigSize,
    /// A scriptSig with non-push opcodes.
    #[error("scriptsig-not-pushonly")]
    ScriptSigNotPushOnly,
    /// A non-standard output script.
    #[error("scriptpubkey")]
    ScriptPubkey,
    /// A dust output.
    #[error("dust")]
    Dust,
    /// More than one OP_RETURN output.
    #[error("multi-op-return")]
    MultiOpReturn,
}

/// Checks the standardness rules that need no prevouts.
///
/// # Errors
/// The first rule broken, named as the node's reject reason.
pub fn check_standard(tx: &Transaction) -> Result<(), NonStandardError> {
    if !(1..=TX_MAX_STANDARD_VERSION).contains(&tx.version) {
        return Err(NonStandardError::Version);
    }
    if tx.weight() > MAX_STANDARD_TX_WEIGHT {
        return Err(NonStandardError::TxSize);
    }
    if tx.stripped_size() < MIN_STANDARD_TX_NONWITNESS_SIZE {
        return Err(NonStandardError::TxSizeSmall);
    }
    for i in &tx.input {
        if i.script_sig.len() > MAX_STANDARD_SCRIPTSIG_SIZE {
            return Err(NonStandardError::ScriptSigSize);
        }
        if !i.script_sig.is_push_only() {
            return Err(NonStandardError::ScriptSigNotPushOnly);
        }
    }
    let mut op_returns = 0;
    for o in &tx.output {
        match o.script_pubkey.script_type() {
            ScriptType::NonStandard | ScriptType::WitnessUnknown => {
                return Err(NonStandardError::ScriptPubkey);
            }
            ScriptType::NullData => {
                if o.script_pubkey.len() > MAX_OP_RETURN_RELAY {
                    return Err(NonStandardError::ScriptPubkey);
                }
                op_returns += 1;
            }
            _ if is_dust(o) => return Err(NonStandardError::Dust),
            _ => {}
        }
    }
    if op_returns > 1 {
        return Err(NonStandardError::MultiOpReturn);
    }
    Ok(())
}

/// Returns true if `script` is a standard output type for a payout.
pub fn is_standard_output(script: &ScriptBuf) -> bool {
    !matches!(
        script.script_type(),
        ScriptType::NonStandard | ScriptType::WitnessUnknown
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dust_thresholds_match_protocol_table() {
        let h = [1u8; 20];
        let cases = [
            (ScriptBuf::new_p2wpkh(&h), 234),
            (ScriptBuf::new_p2wsh_for(b"x"), 270),
            (ScriptBuf::new_p2mr(&[2; 32]), 270),
            (ScriptBuf::new_p2pkh_lithium(&h), 546),
            (ScriptBuf::new_p2pkh(&h), 546),
            (ScriptBuf::new_p2sh(&h), 540),
            (ScriptBuf::new_p2pk_lithium(&[3; 1312]), 4425),
        ];
        for (spk, dust) in cases {
            let o = TxOut {
                value: 0,
                script_pubkey: spk,
            };
            assert_eq!(
                dust_threshold(&o).to_sat(),
                dust,
                "{:?}",
                o.script_pubkey.script_type()
            );
        }
    }
}
