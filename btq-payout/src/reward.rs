//! Reward schemes: PPLNS, PROP, SOLO, PPS and FPPS, with integer-only arithmetic.
//!
//! Every split is a [`Distribution`]: per-miner credits, per-recipient pool fees and a rounding
//! remainder, and `credited + pool fee + remainder == value` holds to the satoshi
//! ([`Distribution::check_conservation`]). Shares carry integer weights (`difficulty`), never
//! floats: the mining path converts its share difficulty to integer units (for example
//! difficulty × 1,000) before it enters this module, and states the network difficulty in the
//! same units.
//!
//! # Rounding
//! Fees are `floor(value × bps / 10,000)` per fee recipient. The miners' part is split with
//! `floor(part × weight / total)` in `u128`. Whatever the floors leave (less than one satoshi
//! per miner plus less than one per fee recipient) is the **remainder**, which goes to the
//! configured [`FeeConfig::remainder_account`] (by default the pool operator's account,
//! [`POOL_ACCOUNT`]). Nothing is rounded for display and then deducted unrounded.

use std::collections::{BTreeMap, HashMap};

use btq_core::Amount;
use thiserror::Error;

/// The default account that receives rounding remainders.
pub const POOL_ACCOUNT: &str = "pool";

/// Basis points in one whole (100 %).
pub const BPS_DENOMINATOR: u32 = 10_000;

/// One accepted share, as the reward schemes see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Share {
    /// The miner account credited (usually the payout address, without the `.worker` suffix).
    pub worker: String,
    /// The share's weight: its difficulty in the pool's integer difficulty units.
    pub difficulty: u64,
    /// The network difficulty when the share was submitted, in the same units (used by PPS and
    /// FPPS: a share's expected value is `block value × difficulty / network_difficulty`).
    pub network_difficulty: u64,
    /// When the share was accepted (milliseconds since the driver's epoch).
    pub time: u64,
}

/// An error in reward arithmetic or configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RewardError {
    /// The fee recipients' basis points add up to more than 10,000.
    #[error("pool fees add up to {total_bps} bps, above {max} bps", max = BPS_DENOMINATOR)]
    FeeTooHigh {
        /// The sum of the configured basis points.
        total_bps: u64,
    },
    /// A share has zero network difficulty (PPS/FPPS).
    #[error("share {index} has zero network difficulty")]
    ZeroNetworkDifficulty {
        /// The share's index.
        index: usize,
    },
    /// The PPLNS window is zero (N or network difficulty is zero).
    #[error("the PPLNS window is empty (n = {n}, network difficulty = {network_difficulty})")]
    EmptyWindow {
        /// The window factor.
        n: u64,
        /// The network difficulty.
        network_difficulty: u64,
    },
    /// A sum of weights or amounts does not fit its integer type.
    #[error("overflow computing {what}")]
    Overflow {
        /// What overflowed.
        what: &'static str,
    },
    /// There are no shares to pay (the value all goes to the remainder account instead).
    #[error("no shares with non-zero weight")]
    NoShares,
    /// A logic error (a bug in this crate, never the caller's fault).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// The pool fee: who takes it, at how many basis points each, and who takes the remainder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeConfig {
    /// Fee recipients: `(account, basis points)`. `100` bps is 1 %.
    pub recipients: Vec<(String, u32)>,
    /// The account that receives rounding remainders (and the whole value when no share is in
    /// the window).
    pub remainder_account: String,
}

impl Default for FeeConfig {
    fn default() -> Self {
        Self {
            recipients: Vec::new(),
            remainder_account: POOL_ACCOUNT.to_string(),
        }
    }
}

impl FeeConfig {
    /// A single fee recipient at `bps` basis points, which also takes the remainder.
    pub fn single(account: &str, bps: u32) -> Self {
        Self {
            recipients: vec![(account.to_string(), bps)],
            remainder_account: account.to_string(),
        }
    }

    /// Returns the total basis points.
    ///
    /// # Errors
    /// [`RewardError::FeeTooHigh`] above 10,000.
    pub fn total_bps(&self) -> Result<u32, RewardError> {
        let total: u64 = self.recipients.iter().map(|(_, b)| u64::from(*b)).sum();
        if total > u64::from(BPS_DENOMINATOR) {
            return Err(RewardError::FeeTooHigh { total_bps: total });
        }
        u32::try_from(total).map_err(|_| RewardError::FeeTooHigh { total_bps: total })
    }
}

/// The exact split of one value (a block reward, or the expected value of a batch of PPS
/// shares).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Distribution {
    /// The value split.
    pub value: Amount,
    /// Credits to miners.
    pub credits: BTreeMap<String, Amount>,
    /// Pool fees by recipient.
    pub pool_fees: BTreeMap<String, Amount>,
    /// What the floors left over.
    pub remainder: Amount,
    /// Who gets the remainder.
    pub remainder_account: String,
}

impl Distribution {
    /// Returns the sum of the miner credits.
    pub fn credited(&self) -> Option<Amount> {
        Amount::checked_sum(self.credits.values().copied())
    }

    /// Returns the sum of the pool fees.
    pub fn pool_fee(&self) -> Option<Amount> {
        Amount::checked_sum(self.pool_fees.values().copied())
    }

    /// Returns true if `credited + pool fee + remainder == value`.
    pub fn check_conservation(&self) -> bool {
        let total = self
            .credited()
            .zip(self.pool_fee())
            .and_then(|(c, f)| c.checked_add(f))
            .and_then(|s| s.checked_add(self.remainder));
        total == Some(self.value)
    }

    /// Returns every account's total (miners, fee recipients and the remainder account merged),
    /// as the ledger credits them.
    ///
    /// # Errors
    /// [`RewardError::Overflow`] if a sum leaves the amount range (impossible for a conserved
    /// distribution).
    pub fn account_totals(&self) -> Result<BTreeMap<String, Amount>, RewardError> {
        let mut out: BTreeMap<String, Amount> = BTreeMap::new();
        let it = self
            .credits
            .iter()
            .chain(self.pool_fees.iter())
            .chain(core::iter::once((&self.remainder_account, &self.remainder)));
        for (k, v) in it {
            if v.to_sat() == 0 {
                continue;
            }
            let e = out.entry(k.clone()).or_insert(Amount::ZERO);
            *e = e.checked_add(*v).ok_or(RewardError::Overflow {
                what: "account total",
            })?;
        }
        Ok(out)
    }
}

/// Returns `floor(a × b / c)` in `u128`; `c` must be non-zero.
fn mul_div_floor(a: u64, b: u128, c: u128) -> Result<u64, RewardError> {
    let prod = u128::from(a)
        .checked_mul(b)
        .ok_or(RewardError::Overflow { what: "a × b" })?;
    let q = prod
        .checked_div(c)
        .ok_or(RewardError::Internal("division by zero"))?;
    u64::try_from(q).map_err(|_| RewardError::Overflow { what: "quotient" })
}

fn amount(sat: u64) -> Result<Amount, RewardError> {
    Amount::from_sat(sat).map_err(|_| RewardError::Overflow { what: "amount" })
}

/// Splits `value` among weighted miners after the pool fee. This is the one primitive every
/// scheme uses. Miners with zero weight get nothing; with no weight at all the miners' part goes
/// to the remainder.
///
/// # Errors
/// Fee configuration above 100 %, or a weight sum above `u128`.
pub fn split_weighted<'a, I>(
    value: Amount,
    weights: I,
    fees: &FeeConfig,
) -> Result<Distribution, RewardError>
where
    I: IntoIterator<Item = (&'a str, u128)>,
{
    fees.total_bps()?;
    let v = value.to_sat();
    let mut pool_fees = BTreeMap::new();
    let mut fee_total: u64 = 0;
    for (acct, bps) in &fees.recipients {
        let f = mul_div_floor(v, u128::from(*bps), u128::from(BPS_DENOMINATOR))?;
        fee_total = fee_total
            .checked_add(f)
            .ok_or(RewardError::Overflow { what: "fees" })?;
        let e = pool_fees.entry(acct.clone()).or_insert(Amount::ZERO);
        *e = e
            .checked_add(amount(f)?)
            .ok_or(RewardError::Overflow { what: "fees" })?;
    }
    let miners_part = v
        .checked_sub(fee_total)
        .ok_or(RewardError::Internal("fees above value"))?;
    let mut agg: BTreeMap<&str, u128> = BTreeMap::new();
    let mut total: u128 = 0;
    for (w, weight) in weights {
        if weight == 0 {
            continue;
        }
        total = total
            .checked_add(weight)
            .ok_or(RewardError::Overflow { what: "weights" })?;
        let e = agg.entry(w).or_insert(0);
        *e = e
            .checked_add(weight)
            .ok_or(RewardError::Overflow { what: "weights" })?;
    }
    let mut credits = BTreeMap::new();
    let mut credited: u64 = 0;
    if total > 0 {
        for (w, weight) in agg {
            let c = mul_div_floor(miners_part, weight, total)?;
            credited = credited
                .checked_add(c)
                .ok_or(RewardError::Overflow { what: "credits" })?;
            if c > 0 {
                credits.insert(w.to_string(), amount(c)?);
            }
        }
    }
    let remainder = miners_part
        .checked_sub(credited)
        .ok_or(RewardError::Internal("credits above miners' part"))?;
    let d = Distribution {
        value,
        credits,
        pool_fees,
        remainder: amount(remainder)?,
        remainder_account: fees.remainder_account.clone(),
    };
    debug_assert!(d.check_conservation());
    Ok(d)
}

/// PPLNS: pay the last `n × network difficulty` units of share difficulty before the block.
///
/// `shares` are in submission order (oldest first) and end at the block. They are walked
/// newest first; each counts with its difficulty, and the share that crosses the window counts
/// only for the part inside it. If the history holds less than a full window, the window is
/// what there is (the miners present split the whole miners' part).
///
/// # Errors
/// An empty window, a fee above 100 %, or overflow.
pub fn pplns(
    value: Amount,
    shares: &[Share],
    n: u64,
    network_difficulty: u64,
    fees: &FeeConfig,
) -> Result<Distribution, RewardError> {
    let window = u128::from(n)
        .checked_mul(u128::from(network_difficulty))
        .filter(|w| *w > 0)
        .ok_or(RewardError::EmptyWindow {
            n,
            network_difficulty,
        })?;
    let mut agg: HashMap<&str, u128> = HashMap::new();
    let mut acc: u128 = 0;
    for s in shares.iter().rev() {
        let left = window.saturating_sub(acc);
        if left == 0 {
            break;
        }
        let w = u128::from(s.difficulty).min(left);
        acc = acc.saturating_add(w);
        let e = agg.entry(s.worker.as_str()).or_insert(0);
        *e = e.saturating_add(w);
    }
    split_weighted(value, agg, fees)
}

/// PROP: split `value` among the round's shares (every share since the previous block) by
/// difficulty.
///
/// # Errors
/// A fee above 100 % or overflow.
pub fn prop(value: Amount, round: &[Share], fees: &FeeConfig) -> Result<Distribution, RewardError> {
    split_weighted(
        value,
        round
            .iter()
            .map(|s| (s.worker.as_str(), u128::from(s.difficulty))),
        fees,
    )
}

/// SOLO: the block's finder takes the whole miners' part.
///
/// # Errors
/// A fee above 100 %.
pub fn solo(value: Amount, finder: &str, fees: &FeeConfig) -> Result<Distribution, RewardError> {
    split_weighted(value, [(finder, 1u128)], fees)
}

/// PPS and FPPS: the pool pays each share its expected value, whatever the pool's luck.
///
/// A share's expected value is `block_value × difficulty / network_difficulty`, where
/// `block_value` is the subsidy for PPS and the subsidy plus the expected template fees for FPPS
/// (see [`fpps_block_value`]). Per miner the exact rational sum of their shares' values is taken
/// (shares grouped by network difficulty, one floor per group); the batch's value is the sum of
/// those, and it is then split with the pool fee like a block reward, so `credited + pool fee +
/// remainder` equals the batch value exactly.
///
/// # Errors
/// A share with zero network difficulty, a fee above 100 %, or overflow.
pub fn pps(
    block_value: Amount,
    shares: &[Share],
    fees: &FeeConfig,
) -> Result<Distribution, RewardError> {
    let mut groups: HashMap<(&str, u64), u128> = HashMap::new();
    for (index, s) in shares.iter().enumerate() {
        if s.network_difficulty == 0 {
            return Err(RewardError::ZeroNetworkDifficulty { index });
        }
        let e = groups
            .entry((s.worker.as_str(), s.network_difficulty))
            .or_insert(0);
        *e = e
            .checked_add(u128::from(s.difficulty))
            .ok_or(RewardError::Overflow {
                what: "share weights",
            })?;
    }
    let mut per_miner: BTreeMap<&str, u128> = BTreeMap::new();
    let mut total: u64 = 0;
    for ((w, nd), d) in groups {
        let v = mul_div_floor(block_value.to_sat(), d, u128::from(nd))?;
        total = total
            .checked_add(v)
            .ok_or(RewardError::Overflow { what: "PPS value" })?;
        let e = per_miner.entry(w).or_insert(0);
        *e = e
            .checked_add(u128::from(v))
            .ok_or(RewardError::Overflow { what: "PPS value" })?;
    }
    split_weighted(amount(total)?, per_miner, fees)
}

/// Returns the FPPS block value: the subsidy plus the fees of the current template.
///
/// # Errors
/// [`RewardError::Overflow`] above the supply cap.
pub fn fpps_block_value(subsidy: Amount, template_fees: Amount) -> Result<Amount, RewardError> {
    subsidy
        .checked_add(template_fees)
        .ok_or(RewardError::Overflow {
            what: "FPPS block value",
        })
}

/// A reward scheme, for drivers that pick one from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RewardScheme {
    /// PPLNS with a window of `n` × network difficulty.
    Pplns {
        /// The window factor.
        n: u64,
    },
    /// Proportional over the round.
    Prop,
    /// The finder takes all.
    Solo,
}

impl RewardScheme {
    /// Splits a found block's `value`. `shares` are the scheme's input (the PPLNS history or the
    /// PROP round, oldest first); `finder` is the account that found the block.
    ///
    /// # Errors
    /// As the scheme's function.
    pub fn split(
        &self,
        value: Amount,
        shares: &[Share],
        finder: &str,
        network_difficulty: u64,
        fees: &FeeConfig,
    ) -> Result<Distribution, RewardError> {
        match self {
            Self::Pplns { n } => pplns(value, shares, *n, network_difficulty, fees),
            Self::Prop => prop(value, shares, fees),
            Self::Solo => solo(value, finder, fees),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    fn sh(w: &str, d: u64) -> Share {
        Share {
            worker: w.into(),
            difficulty: d,
            network_difficulty: 1000,
            time: 0,
        }
    }

    #[test]
    fn pplns_counts_crossing_share_in_part() {
        let shares = vec![sh("a", 50), sh("b", 30), sh("c", 80)];
        // window 100: c 80, b 20 (of 30), a nothing.
        let d = pplns(
            Amount::from_sat(1000).unwrap(),
            &shares,
            1,
            100,
            &FeeConfig::default(),
        )
        .unwrap();
        assert_eq!(d.credits["c"].to_sat(), 800);
        assert_eq!(d.credits["b"].to_sat(), 200);
        assert!(!d.credits.contains_key("a"));
        assert!(d.check_conservation());
    }

    #[test]
    fn fees_and_remainder() {
        let fees = FeeConfig {
            recipients: vec![("op".into(), 150), ("dev".into(), 33)],
            remainder_account: "op".into(),
        };
        let shares = vec![sh("a", 1), sh("b", 1), sh("c", 1)];
        let d = prop(Amount::from_sat(1001).unwrap(), &shares, &fees).unwrap();
        assert_eq!(d.pool_fees["op"].to_sat(), 15);
        assert_eq!(d.pool_fees["dev"].to_sat(), 3);
        // 983 / 3 = 327 r 2
        assert_eq!(d.credits["a"].to_sat(), 327);
        assert_eq!(d.remainder.to_sat(), 2);
        assert!(d.check_conservation());
        assert_eq!(d.account_totals().unwrap()["op"].to_sat(), 17);
    }

    #[test]
    fn pps_expected_value() {
        let shares = vec![sh("a", 10), sh("a", 5), sh("b", 1)];
        let d = pps(
            Amount::from_sat(1_000_000).unwrap(),
            &shares,
            &FeeConfig::default(),
        )
        .unwrap();
        assert_eq!(d.credits["a"].to_sat(), 15_000);
        assert_eq!(d.credits["b"].to_sat(), 1_000);
        assert!(d.check_conservation());
        let bad = vec![Share {
            network_difficulty: 0,
            ..sh("a", 1)
        }];
        assert!(matches!(
            pps(Amount::ONE_BTQ, &bad, &FeeConfig::default()),
            Err(RewardError::ZeroNetworkDifficulty { index: 0 })
        ));
    }

    #[test]
    fn fee_above_100_percent_refused() {
        let fees = FeeConfig::single("op", 10_001);
        assert!(matches!(
            solo(Amount::ONE_BTQ, "a", &fees),
            Err(RewardError::FeeTooHigh { .. })
        ));
    }
}
