//! Coinbase payouts: miners whose share of a block is at least a threshold are paid directly
//! in the block's coinbase, so their reward never needs consolidating or a payout transaction.
//!
//! The split is made when the template is built, from the same [`Distribution`] the scheme
//! would credit. The direct outputs plus the pool's own output equal the coinbase value exactly;
//! the ledger records the direct amounts as coinbase payments (paid when the block matures,
//! reversed if it is orphaned) and everything else (small miners, pool fees, remainder) as
//! credits paid from the pool's output.

use std::collections::BTreeMap;

use btq_core::params::Network;
use btq_core::policy::dust_threshold;
use btq_core::{Amount, ScriptBuf, TxOut};
use thiserror::Error;

use crate::plan::{PayeeError, payout_script};
use crate::reward::Distribution;

/// Coinbase payout settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinbasePayoutConfig {
    /// Miners credited at least this much in the block are paid in the coinbase.
    pub threshold: Amount,
    /// The most direct outputs (each P2WPKH output adds 496 WU to the coinbase).
    pub max_outputs: usize,
    /// The network miner addresses belong to.
    pub network: Network,
}

/// An error splitting a coinbase.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CoinbaseError {
    /// The distribution does not conserve its value.
    #[error("distribution does not add up to its value")]
    NotConserved,
    /// The pool's output script is not P2WPKH.
    #[error("pool output script is not P2WPKH")]
    BadPoolScript,
}

/// The coinbase outputs and the ledger entries that go with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinbaseSplit {
    /// Outputs paying miners directly: `(account, output)`.
    pub direct: Vec<(String, TxOut)>,
    /// The pool's own output (everything not paid directly).
    pub pool_output: TxOut,
    /// What the ledger credits (paid later from the pool's output).
    pub ledger_credits: BTreeMap<String, Amount>,
    /// What the ledger records as paid in the coinbase.
    pub coinbase_paid: BTreeMap<String, Amount>,
    /// Miners above the threshold whose account is not a usable address (credited instead).
    pub refused: Vec<PayeeError>,
}

/// Splits `dist` (whose value is the coinbase value) into direct miner outputs and the pool's
/// output. Miners' accounts are their payout addresses; accounts that are not valid, non-Taproot
/// addresses for the network, or whose amount is dust, stay in the ledger.
///
/// # Errors
/// A non-conserving distribution or a non-P2WPKH pool script.
pub fn split_coinbase(
    dist: &Distribution,
    pool_script: &ScriptBuf,
    cfg: &CoinbasePayoutConfig,
) -> Result<CoinbaseSplit, CoinbaseError> {
    if !dist.check_conservation() {
        return Err(CoinbaseError::NotConserved);
    }
    if pool_script.script_type() != btq_core::script::ScriptType::P2wpkh {
        return Err(CoinbaseError::BadPoolScript);
    }
    let mut ledger = dist
        .account_totals()
        .map_err(|_| CoinbaseError::NotConserved)?;
    let mut big: Vec<(&String, Amount)> = dist
        .credits
        .iter()
        .filter(|(_, a)| **a >= cfg.threshold && a.to_sat() > 0)
        .map(|(k, a)| (k, *a))
        .collect();
    big.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut split = CoinbaseSplit {
        direct: Vec::new(),
        pool_output: TxOut::new(Amount::ZERO, pool_script.clone()),
        ledger_credits: BTreeMap::new(),
        coinbase_paid: BTreeMap::new(),
        refused: Vec::new(),
    };
    let mut direct_total = Amount::ZERO;
    for (account, amt) in big {
        if split.direct.len() >= cfg.max_outputs {
            break;
        }
        let spk = match payout_script(account, account, cfg.network) {
            Ok(s) => s,
            Err(e) => {
                split.refused.push(e);
                continue;
            }
        };
        let out = TxOut::new(amt, spk);
        if out.value < dust_threshold(&out).to_sat() {
            continue;
        }
        // Move this miner's block credit from the ledger to a direct payment.
        let Some(entry) = ledger.get_mut(account) else {
            continue;
        };
        let Some(left) = entry.checked_sub(amt) else {
            continue;
        };
        *entry = left;
        if left.to_sat() == 0 {
            ledger.remove(account);
        }
        direct_total = direct_total
            .checked_add(amt)
            .ok_or(CoinbaseError::NotConserved)?;
        split.coinbase_paid.insert(account.clone(), amt);
        split.direct.push((account.clone(), out));
    }
    let pool_value = dist
        .value
        .checked_sub(direct_total)
        .ok_or(CoinbaseError::NotConserved)?;
    split.pool_output = TxOut::new(pool_value, pool_script.clone());
    split.ledger_credits = ledger;
    Ok(split)
}
