//! Consolidation and payout planning over the pool's P2WPKH-Lithium UTXOs.
//!
//! Planning is a pure function of the current UTXO set and the pool's own transactions in the
//! mempool ([`MempoolState`]): call it whenever either changes (a new block, a transaction
//! confirmed or dropped), not on a timer. Each call plans at most
//! [`ConsolidationConfig::weight_budget`] of new transactions beyond what is already in flight,
//! one block's worth by default, so the backlog drains as fast as blocks allow and no faster.
//!
//! Every planned transaction spends only confirmed outputs, so it has no unconfirmed ancestors
//! and its ancestor and descendant counts are 1, far within the mempool's limit of 25
//! ([`ANCESTOR_DESCENDANT_LIMIT`]); change is never spent before it confirms.

use std::collections::HashSet;

use btq_core::address::{Address, AddressError};
use btq_core::encoding::compact_size_len;
use btq_core::params::{COINBASE_MATURITY, Network};
use btq_core::policy::{ANCESTOR_DESCENDANT_LIMIT, P2WPKH_LITHIUM_INPUT_WEIGHT, dust_threshold};
use btq_core::script::ScriptType;
use btq_core::tx::WITNESS_SCALE_FACTOR;
use btq_core::{Amount, OutPoint, ScriptBuf, Transaction, TxIn, TxOut, Txid, Weight, Witness};
use thiserror::Error;

use crate::utxo::Utxo;

/// The sequence number of planned inputs (`0xfffffffd`: signals BIP125 replaceability so a stuck
/// transaction can be fee-bumped).
pub const INPUT_SEQUENCE: u32 = 0xffff_fffd;

/// The version of planned transactions.
pub const TX_VERSION: i32 = 2;

/// Weight of a block's coinbase reserved when packing consolidation into a block.
pub const COINBASE_RESERVE_WEIGHT: u64 = 4_000;

/// The default fee-rate ceiling in sat/vB (the node's `maxfeerate` is 10,000 sat/vB).
pub const DEFAULT_MAX_FEERATE: u64 = 1_000;

/// Why an input cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InputIssue {
    /// A coinbase output (or one whose coinbase flag is unknown) with fewer than 100
    /// confirmations, or an unconfirmed output.
    #[error("immature: {confirmations} confirmations, {required} required")]
    Immature {
        /// Its confirmations.
        confirmations: u32,
        /// Confirmations required.
        required: u32,
    },
    /// Not a P2WPKH output (the only type this builder spends).
    #[error("unknown script type {kind} (only P2WPKH-Lithium is spent)")]
    UnknownScript {
        /// The node's name of the script type.
        kind: &'static str,
    },
    /// A P2WPKH output whose key hash is not the pool key's.
    #[error("the key does not match the output's key hash")]
    KeyMismatch,
    /// The input's value does not pay for its own weight at the fee rate.
    #[error("fee too high: spending it costs {marginal_fee} sat, its value is {value} sat")]
    FeeExceedsValue {
        /// The output's value.
        value: u64,
        /// The fee its weight costs.
        marginal_fee: u64,
    },
    /// The group of inputs it was in would have produced a dust output.
    #[error("would create a dust output of {value} sat (threshold {threshold} sat)")]
    DustOutput {
        /// The output's value.
        value: u64,
        /// The dust threshold.
        threshold: u64,
    },
    /// The output is already spent by one of the pool's transactions in the mempool.
    #[error("already spent by {0} in the mempool")]
    InFlight(Txid),
}

/// An input that was left out of a plan, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedInput {
    /// The outpoint.
    pub outpoint: OutPoint,
    /// The reason.
    pub issue: InputIssue,
}

/// An error that stops a whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The fee rate is below the 1 sat/vB minimum relay fee.
    #[error("fee rate {0} sat/vB is below the 1 sat/vB minimum relay fee")]
    FeeRateTooLow(u64),
    /// The fee rate is above the configured ceiling.
    #[error("fee too high: fee rate {feerate} sat/vB is above the {max} sat/vB ceiling")]
    FeeRateTooHigh {
        /// The fee rate asked for.
        feerate: u64,
        /// The ceiling.
        max: u64,
    },
    /// The destination or change script is not one a pool should receive to.
    #[error("destination script type {0} is not P2WPKH (pool outputs must be P2WPKH-Lithium)")]
    BadPoolScript(&'static str),
    /// The configured transaction weight cannot hold even one input.
    #[error("max transaction weight {0} cannot hold a single input")]
    WeightTooSmall(u64),
    /// Arithmetic overflow (values beyond the supply cap).
    #[error("overflow computing {0}")]
    Overflow(&'static str),
}

/// An error with one payee.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PayeeError {
    /// The address does not parse for the network.
    #[error("account {account}: bad address: {error}")]
    Address {
        /// The account.
        account: String,
        /// Why.
        error: AddressError,
    },
    /// Taproot payouts are refused: BTQ consensus does not enforce Taproot, so such an output is
    /// spendable by anyone who mines.
    #[error(
        "account {account}: refusing to pay the Taproot (witness v1) address {address}: Taproot \
         is not enforced by BTQ consensus and the output could be taken by any miner; use a \
         P2WPKH-Lithium address"
    )]
    Taproot {
        /// The account.
        account: String,
        /// The address.
        address: String,
    },
    /// The address's script is not a standard payout type.
    #[error("account {account}: address type {kind} is not a standard payout destination")]
    NonStandard {
        /// The account.
        account: String,
        /// The type.
        kind: &'static str,
    },
    /// The amount would be a dust output.
    #[error("account {account}: {amount} sat is dust (threshold {threshold} sat)")]
    Dust {
        /// The account.
        account: String,
        /// The amount.
        amount: u64,
        /// The threshold.
        threshold: u64,
    },
}

/// Validates a payout address: parses it for `network` and refuses Taproot and non-standard
/// destinations.
///
/// # Errors
/// [`PayeeError`] naming the account.
pub fn payout_script(
    account: &str,
    address: &str,
    network: Network,
) -> Result<ScriptBuf, PayeeError> {
    let a = Address::parse(address, network).map_err(|error| PayeeError::Address {
        account: account.to_string(),
        error,
    })?;
    match a.script_type() {
        ScriptType::P2tr => Err(PayeeError::Taproot {
            account: account.to_string(),
            address: address.chars().take(100).collect(),
        }),
        t @ (ScriptType::NonStandard | ScriptType::WitnessUnknown | ScriptType::NullData) => {
            Err(PayeeError::NonStandard {
                account: account.to_string(),
                kind: t.rpc_name(),
            })
        }
        _ => Ok(a.script_pubkey().clone()),
    }
}

/// One of the pool's transactions already in the mempool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// Its txid.
    pub txid: Txid,
    /// Its weight.
    pub weight: u64,
    /// The outpoints it spends.
    pub spends: Vec<OutPoint>,
}

/// The pool's own transactions in the mempool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MempoolState {
    /// Transactions broadcast and not yet confirmed.
    pub in_flight: Vec<InFlight>,
}

impl MempoolState {
    fn weight(&self) -> u64 {
        self.in_flight
            .iter()
            .fold(0u64, |a, t| a.saturating_add(t.weight))
    }
}

/// A transaction planned but not yet signed. Its inputs are P2WPKH-Lithium outputs of the pool
/// key, so its weight after signing is known exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTx {
    /// The inputs, in order.
    pub inputs: Vec<Utxo>,
    /// The outputs, in order.
    pub outputs: Vec<TxOut>,
    /// The fee (inputs − outputs).
    pub fee: Amount,
    /// The weight once signed.
    pub weight: u64,
}

impl PlannedTx {
    /// Returns the unsigned transaction.
    pub fn unsigned_tx(&self) -> Transaction {
        Transaction {
            version: TX_VERSION,
            input: self
                .inputs
                .iter()
                .map(|u| TxIn {
                    previous_output: u.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: INPUT_SEQUENCE,
                    witness: Witness::new(),
                })
                .collect(),
            output: self.outputs.clone(),
            lock_time: 0,
        }
    }

    /// Returns the virtual size once signed.
    pub fn vsize(&self) -> u64 {
        Weight::from_wu(self.weight).to_vbytes_ceil()
    }
}

/// Returns the exact weight of a signed transaction with `n_inputs` P2WPKH-Lithium inputs and
/// `outputs`.
pub fn tx_weight(n_inputs: usize, outputs: &[TxOut]) -> u64 {
    let base = 8u64
        .saturating_add(compact_size_len(n_inputs as u64) as u64)
        .saturating_add(compact_size_len(outputs.len() as u64) as u64)
        .saturating_add(
            outputs
                .iter()
                .fold(0u64, |a, o| a.saturating_add(o.serialized_len() as u64)),
        );
    base.saturating_mul(WITNESS_SCALE_FACTOR)
        .saturating_add(2)
        .saturating_add((n_inputs as u64).saturating_mul(P2WPKH_LITHIUM_INPUT_WEIGHT))
}

/// Returns the fee for `weight` at `feerate` sat/vB (vsize = ceil(weight / 16)).
pub fn fee_for_weight(weight: u64, feerate: u64) -> u64 {
    Weight::from_wu(weight)
        .to_vbytes_ceil()
        .saturating_mul(feerate)
}

/// Returns the fee one P2WPKH-Lithium input adds at `feerate` (rounded up).
pub fn input_fee(feerate: u64) -> u64 {
    P2WPKH_LITHIUM_INPUT_WEIGHT
        .saturating_mul(feerate)
        .div_ceil(WITNESS_SCALE_FACTOR)
}

fn check_feerate(feerate: u64, max: u64) -> Result<(), PlanError> {
    if feerate < 1 {
        return Err(PlanError::FeeRateTooLow(feerate));
    }
    if feerate > max {
        return Err(PlanError::FeeRateTooHigh { feerate, max });
    }
    Ok(())
}

fn check_pool_script(s: &ScriptBuf) -> Result<(), PlanError> {
    match s.script_type() {
        ScriptType::P2wpkh => Ok(()),
        t => Err(PlanError::BadPoolScript(t.rpc_name())),
    }
}

/// Splits `utxos` into the spendable ones and the rejected ones (immature, foreign, in flight,
/// or not worth their fee at `feerate`).
pub fn eligible_inputs(
    utxos: &[Utxo],
    key_hash: &[u8; 20],
    mempool: &MempoolState,
    feerate: u64,
) -> (Vec<Utxo>, Vec<RejectedInput>) {
    let spent: std::collections::HashMap<OutPoint, Txid> = mempool
        .in_flight
        .iter()
        .flat_map(|t| t.spends.iter().map(move |o| (*o, t.txid)))
        .collect();
    let ours = ScriptBuf::new_p2wpkh(key_hash);
    let marginal_fee = input_fee(feerate);
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = HashSet::new();
    for u in utxos {
        if !seen.insert(u.outpoint) {
            continue;
        }
        let issue = if let Some(txid) = spent.get(&u.outpoint) {
            Some(InputIssue::InFlight(*txid))
        } else if u.script_pubkey.script_type() != ScriptType::P2wpkh {
            Some(InputIssue::UnknownScript {
                kind: u.script_pubkey.script_type().rpc_name(),
            })
        } else if u.script_pubkey != ours {
            Some(InputIssue::KeyMismatch)
        } else if !u.is_mature() {
            Some(InputIssue::Immature {
                confirmations: u.confirmations,
                required: if u.coinbase == Some(false) {
                    1
                } else {
                    COINBASE_MATURITY
                },
            })
        } else if u.value.to_sat() <= marginal_fee {
            Some(InputIssue::FeeExceedsValue {
                value: u.value.to_sat(),
                marginal_fee,
            })
        } else {
            None
        };
        match issue {
            Some(issue) => rejected.push(RejectedInput {
                outpoint: u.outpoint,
                issue,
            }),
            None => ok.push(u.clone()),
        }
    }
    (ok, rejected)
}

/// Consolidation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsolidationConfig {
    /// The fee rate in sat/vB (at least 1).
    pub feerate: u64,
    /// The fee-rate ceiling ("fee too high" above it).
    pub max_feerate: u64,
    /// The largest transaction weight (400,000, the standardness limit).
    pub max_tx_weight: u64,
    /// The weight of new transactions planned per call, counting the pool's transactions
    /// already in flight: by default one block (8,000,000 less a coinbase reserve), about
    /// 1,800 inputs. `u64::MAX` plans the whole backlog.
    pub weight_budget: u64,
    /// The fewest inputs worth a consolidation transaction.
    pub min_inputs: usize,
}

impl Default for ConsolidationConfig {
    fn default() -> Self {
        Self {
            feerate: 1,
            max_feerate: DEFAULT_MAX_FEERATE,
            max_tx_weight: Weight::MAX_STANDARD_TX.to_wu(),
            weight_budget: Weight::MAX_BLOCK
                .to_wu()
                .saturating_sub(COINBASE_RESERVE_WEIGHT),
            min_inputs: 2,
        }
    }
}

/// A consolidation plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsolidationPlan {
    /// The transactions, each with one output to the destination.
    pub txs: Vec<PlannedTx>,
    /// Inputs left out, with the reason.
    pub rejected: Vec<RejectedInput>,
    /// Eligible inputs left for a later call (the budget was reached, or too few for a
    /// transaction).
    pub deferred: usize,
}

/// Returns the largest number of P2WPKH-Lithium inputs a transaction with `outputs` may have
/// within `max_weight` (90 for one P2WPKH output at 400,000).
pub fn max_inputs(max_weight: u64, outputs: &[TxOut]) -> usize {
    let mut n: usize = (max_weight / P2WPKH_LITHIUM_INPUT_WEIGHT) as usize;
    while n > 0 && tx_weight(n, outputs) > max_weight {
        n = n.saturating_sub(1);
    }
    n
}

/// Plans consolidation of the pool's mature UTXOs into `dest` (a pool P2WPKH-Lithium script).
///
/// Inputs are taken smallest first (the ones that cost most relative to their value), packed
/// 90 to a transaction, until [`ConsolidationConfig::weight_budget`] minus the weight already
/// in flight is used.
///
/// # Errors
/// A fee rate outside 1..=max, a non-P2WPKH destination, or a weight limit below one input.
pub fn plan_consolidation(
    utxos: &[Utxo],
    key_hash: &[u8; 20],
    dest: &ScriptBuf,
    mempool: &MempoolState,
    cfg: &ConsolidationConfig,
) -> Result<ConsolidationPlan, PlanError> {
    check_feerate(cfg.feerate, cfg.max_feerate)?;
    check_pool_script(dest)?;
    let dest_out = TxOut {
        value: 0,
        script_pubkey: dest.clone(),
    };
    let threshold = dust_threshold(&dest_out);
    let template = [dest_out];
    let per_tx = max_inputs(cfg.max_tx_weight, &template);
    if per_tx == 0 {
        return Err(PlanError::WeightTooSmall(cfg.max_tx_weight));
    }
    let (mut ok, mut rejected) = eligible_inputs(utxos, key_hash, mempool, cfg.feerate);
    ok.sort_by(|a, b| {
        a.value
            .cmp(&b.value)
            .then_with(|| {
                a.outpoint
                    .txid
                    .as_byte_array()
                    .cmp(b.outpoint.txid.as_byte_array())
            })
            .then_with(|| a.outpoint.vout.cmp(&b.outpoint.vout))
    });
    let mut budget = cfg.weight_budget.saturating_sub(mempool.weight());
    let mut txs = Vec::new();
    let mut deferred = 0usize;
    let mut rest: &[Utxo] = &ok;
    while !rest.is_empty() {
        let take = per_tx.min(rest.len());
        let (group, tail) = rest.split_at(take);
        rest = tail;
        let weight = tx_weight(group.len(), &template);
        if group.len() < cfg.min_inputs.max(1) || weight > budget {
            deferred = deferred.saturating_add(group.len());
            continue;
        }
        let total = Amount::checked_sum(group.iter().map(|u| u.value))
            .ok_or(PlanError::Overflow("input sum"))?;
        let fee = fee_for_weight(weight, cfg.feerate);
        let out_value = total.to_sat().saturating_sub(fee);
        if out_value < threshold.to_sat().max(1) || total.to_sat() < fee {
            rejected.extend(group.iter().map(|u| RejectedInput {
                outpoint: u.outpoint,
                issue: InputIssue::DustOutput {
                    value: out_value,
                    threshold: threshold.to_sat(),
                },
            }));
            continue;
        }
        budget = budget.saturating_sub(weight);
        txs.push(PlannedTx {
            inputs: group.to_vec(),
            outputs: vec![TxOut {
                value: out_value,
                script_pubkey: dest.clone(),
            }],
            fee: Amount::from_sat(fee).map_err(|_| PlanError::Overflow("fee"))?,
            weight,
        });
    }
    // Only confirmed inputs: each transaction's ancestor and descendant counts are 1.
    const { assert!(ANCESTOR_DESCENDANT_LIMIT >= 1) };
    Ok(ConsolidationPlan {
        txs,
        rejected,
        deferred,
    })
}

/// Packs transactions into blocks in order, each block's transactions weighing at most
/// `block_weight` less [`COINBASE_RESERVE_WEIGHT`]. Returns the transaction indices per block.
pub fn pack_blocks(weights: &[u64], block_weight: u64) -> Vec<Vec<usize>> {
    let cap = block_weight.saturating_sub(COINBASE_RESERVE_WEIGHT);
    let mut blocks: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut used = 0u64;
    for (i, w) in weights.iter().enumerate() {
        if !cur.is_empty() && used.saturating_add(*w) > cap {
            blocks.push(core::mem::take(&mut cur));
            used = 0;
        }
        used = used.saturating_add(*w);
        cur.push(i);
    }
    if !cur.is_empty() {
        blocks.push(cur);
    }
    blocks
}

/// Someone to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payee {
    /// The ledger account.
    pub account: String,
    /// The payout address.
    pub address: String,
    /// The amount to pay (the account's mature balance).
    pub amount: Amount,
}

/// Payout settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutConfig {
    /// The network addresses must belong to.
    pub network: Network,
    /// The fee rate in sat/vB; the pool pays the network fee, payees receive exact amounts.
    pub feerate: u64,
    /// The fee-rate ceiling.
    pub max_feerate: u64,
    /// The minimum payout; smaller balances wait. Keep it far above dust (spending a Lithium
    /// output costs at least 275 sat at 1 sat/vB): the default is 0.001 BTQ.
    pub min_payout: Amount,
    /// The most payees per transaction.
    pub max_outputs_per_tx: usize,
    /// The largest transaction weight.
    pub max_tx_weight: u64,
    /// Change below this is left to the fee instead of creating a tiny output.
    pub min_change: Amount,
}

impl Default for PayoutConfig {
    fn default() -> Self {
        Self {
            network: Network::Bitcoin,
            feerate: 1,
            max_feerate: DEFAULT_MAX_FEERATE,
            min_payout: Amount::from_sat(100_000).unwrap_or(Amount::ZERO),
            max_outputs_per_tx: 500,
            max_tx_weight: Weight::MAX_STANDARD_TX.to_wu(),
            min_change: Amount::from_sat(10_000).unwrap_or(Amount::ZERO),
        }
    }
}

/// One planned payout transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPayout {
    /// The transaction (payee outputs first, change last if any).
    pub tx: PlannedTx,
    /// The accounts paid and amounts, in output order.
    pub payments: Vec<(String, Amount)>,
    /// The change returned to the pool.
    pub change: Amount,
}

/// Why a payee was not paid this time (not an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeferReason {
    /// Below the minimum payout.
    BelowMinimum,
    /// The pool's mature UTXOs do not cover it (after the other payees).
    InsufficientFunds,
}

/// A payout plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PayoutPlan {
    /// The transactions.
    pub txs: Vec<PlannedPayout>,
    /// Payees left for later.
    pub deferred: Vec<(String, DeferReason)>,
    /// Payees refused (bad or Taproot address, dust).
    pub refused: Vec<PayeeError>,
    /// Inputs that cannot be spent.
    pub rejected_inputs: Vec<RejectedInput>,
}

/// Plans payout batches: largest payees first, many per transaction, inputs largest first,
/// change to `change` (a pool P2WPKH-Lithium script) when it is worth an output.
///
/// # Errors
/// A fee rate outside 1..=max or a non-P2WPKH change script.
pub fn plan_payouts(
    payees: &[Payee],
    utxos: &[Utxo],
    key_hash: &[u8; 20],
    change: &ScriptBuf,
    mempool: &MempoolState,
    cfg: &PayoutConfig,
) -> Result<PayoutPlan, PlanError> {
    check_feerate(cfg.feerate, cfg.max_feerate)?;
    check_pool_script(change)?;
    let mut plan = PayoutPlan::default();
    let (mut coins, rejected) = eligible_inputs(utxos, key_hash, mempool, cfg.feerate);
    plan.rejected_inputs = rejected;
    // Largest first; pop from the end.
    coins.sort_by_key(|c| c.value);
    let mut due: Vec<(String, ScriptBuf, Amount)> = Vec::new();
    for p in payees {
        if p.amount < cfg.min_payout {
            plan.deferred
                .push((p.account.clone(), DeferReason::BelowMinimum));
            continue;
        }
        match payout_script(&p.account, &p.address, cfg.network) {
            Ok(spk) => {
                let out = TxOut {
                    value: p.amount.to_sat(),
                    script_pubkey: spk.clone(),
                };
                let threshold = dust_threshold(&out).to_sat();
                if out.value < threshold {
                    plan.refused.push(PayeeError::Dust {
                        account: p.account.clone(),
                        amount: out.value,
                        threshold,
                    });
                } else {
                    due.push((p.account.clone(), spk, p.amount));
                }
            }
            Err(e) => plan.refused.push(e),
        }
    }
    due.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let change_out = TxOut {
        value: 0,
        script_pubkey: change.clone(),
    };
    let change_floor = dust_threshold(&change_out).max(cfg.min_change).to_sat();

    let mut cur = Batch::default();
    for (account, spk, amt) in due {
        let out = TxOut {
            value: amt.to_sat(),
            script_pubkey: spk,
        };
        // Try to add to the current batch; if it does not fit, close the batch and retry once.
        let mut attempt = 0;
        loop {
            let mut trial = cur.clone();
            trial.outputs.push(out.clone());
            trial.payments.push((account.clone(), amt));
            let fits = trial.outputs.len() <= cfg.max_outputs_per_tx.max(1)
                && trial.fund(&mut coins, cfg, change)?;
            if fits {
                cur = trial;
                break;
            }
            // Return any coins the trial took.
            trial.return_coins(&mut coins, cur.inputs.len());
            if attempt == 0 && !cur.outputs.is_empty() {
                plan.txs.push(cur.finish(cfg, change, change_floor)?);
                cur = Batch::default();
                attempt = 1;
                continue;
            }
            plan.deferred
                .push((account.clone(), DeferReason::InsufficientFunds));
            break;
        }
    }
    if !cur.outputs.is_empty() {
        plan.txs.push(cur.finish(cfg, change, change_floor)?);
    }
    Ok(plan)
}

#[derive(Debug, Clone, Default)]
struct Batch {
    inputs: Vec<Utxo>,
    outputs: Vec<TxOut>,
    payments: Vec<(String, Amount)>,
}

impl Batch {
    fn with_change(&self, change: &ScriptBuf) -> Vec<TxOut> {
        let mut o = self.outputs.clone();
        o.push(TxOut {
            value: 0,
            script_pubkey: change.clone(),
        });
        o
    }

    fn in_total(&self) -> u64 {
        self.inputs
            .iter()
            .fold(0u64, |a, u| a.saturating_add(u.value.to_sat()))
    }

    fn out_total(&self) -> u64 {
        self.outputs
            .iter()
            .fold(0u64, |a, o| a.saturating_add(o.value))
    }

    /// Adds coins (largest first) until the outputs plus the fee with a change output are
    /// covered. Returns false if the weight limit or the coins run out.
    fn fund(
        &mut self,
        coins: &mut Vec<Utxo>,
        cfg: &PayoutConfig,
        change: &ScriptBuf,
    ) -> Result<bool, PlanError> {
        let outs = self.with_change(change);
        loop {
            let w = tx_weight(self.inputs.len(), &outs);
            if w > cfg.max_tx_weight {
                return Ok(false);
            }
            let need = self
                .out_total()
                .checked_add(fee_for_weight(w, cfg.feerate))
                .ok_or(PlanError::Overflow("payout total"))?;
            if self.in_total() >= need {
                return Ok(true);
            }
            match coins.pop() {
                Some(c) => self.inputs.push(c),
                None => return Ok(false),
            }
        }
    }

    /// Puts back the coins added beyond the first `keep` inputs.
    fn return_coins(&mut self, coins: &mut Vec<Utxo>, keep: usize) {
        while self.inputs.len() > keep {
            if let Some(c) = self.inputs.pop() {
                coins.push(c);
            }
        }
    }

    fn finish(
        self,
        cfg: &PayoutConfig,
        change: &ScriptBuf,
        change_floor: u64,
    ) -> Result<PlannedPayout, PlanError> {
        let total_in = self.in_total();
        let total_out = self.out_total();
        let outs_c = self.with_change(change);
        let w_c = tx_weight(self.inputs.len(), &outs_c);
        let fee_c = fee_for_weight(w_c, cfg.feerate);
        let left = total_in
            .checked_sub(total_out)
            .and_then(|v| v.checked_sub(fee_c))
            .ok_or(PlanError::Overflow("payout change"))?;
        let (outputs, weight, change_amt) = if left >= change_floor {
            let mut o = outs_c;
            if let Some(last) = o.last_mut() {
                last.value = left;
            }
            (o, w_c, left)
        } else {
            let w = tx_weight(self.inputs.len(), &self.outputs);
            (self.outputs, w, 0)
        };
        let fee = total_in
            .checked_sub(outputs.iter().fold(0u64, |a, o| a.saturating_add(o.value)))
            .ok_or(PlanError::Overflow("payout fee"))?;
        Ok(PlannedPayout {
            tx: PlannedTx {
                inputs: self.inputs,
                outputs,
                fee: Amount::from_sat(fee).map_err(|_| PlanError::Overflow("fee"))?,
                weight,
            },
            payments: self.payments,
            change: Amount::from_sat(change_amt).map_err(|_| PlanError::Overflow("change"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    #[test]
    fn ninety_inputs_max() {
        let dest = [TxOut {
            value: 0,
            script_pubkey: ScriptBuf::new_p2wpkh(&[1; 20]),
        }];
        assert_eq!(max_inputs(400_000, &dest), 90);
        assert_eq!(tx_weight(90, &dest), 396_298);
        assert_eq!(tx_weight(1, &dest), 5054);
    }

    #[test]
    fn pack_blocks_respects_limit() {
        let w = vec![396_298u64; 45];
        let b = pack_blocks(&w, 8_000_000);
        assert_eq!(b[0].len(), 20);
        assert_eq!(b.len(), 3);
    }
}
