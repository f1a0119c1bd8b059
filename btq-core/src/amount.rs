//! Amounts in satoshis: checked, never floating point.

use core::fmt;
use core::str::FromStr;

use thiserror::Error;

/// Satoshis per BTQ.
pub const COIN: u64 = 100_000_000;

/// The BTQ supply cap in satoshis (`MAX_MONEY`, 21,000,000 BTQ).
pub const MAX_MONEY: u64 = 21_000_000 * COIN;

/// An amount outside `0..=MAX_MONEY`, or an arithmetic overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("amount {sat} sat is out of range (max {max} sat)", max = MAX_MONEY)]
pub struct OutOfRangeError {
    /// The offending value in satoshis (saturated on overflow).
    pub sat: u64,
}

/// An error parsing a decimal BTQ amount.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseAmountError {
    /// Not a plain decimal number.
    #[error("invalid amount {0:?}: expected a decimal number of BTQ")]
    Invalid(String),
    /// More than eight decimal places.
    #[error("amount {0:?} has more than 8 decimal places")]
    TooPrecise(String),
    /// Out of range.
    #[error(transparent)]
    OutOfRange(#[from] OutOfRangeError),
}

mod encapsulate {
    use super::{MAX_MONEY, OutOfRangeError};

    /// An amount of BTQ in satoshis, always within `0..=MAX_MONEY`.
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
    pub struct Amount(u64);

    impl Amount {
        /// Zero.
        pub const ZERO: Self = Self(0);
        /// The supply cap.
        pub const MAX: Self = Self(MAX_MONEY);

        /// Creates an amount from satoshis.
        ///
        /// # Errors
        /// [`OutOfRangeError`] above `MAX_MONEY`.
        pub const fn from_sat(sat: u64) -> Result<Self, OutOfRangeError> {
            if sat > MAX_MONEY {
                Err(OutOfRangeError { sat })
            } else {
                Ok(Self(sat))
            }
        }

        /// Returns the amount in satoshis.
        pub const fn to_sat(self) -> u64 {
            self.0
        }
    }
}
pub use encapsulate::Amount;

impl Amount {
    /// One BTQ.
    pub const ONE_BTQ: Self = match Self::from_sat(COIN) {
        Ok(a) => a,
        Err(_) => Self::ZERO,
    };

    /// Returns `self + rhs`, or `None` above `MAX_MONEY`.
    #[must_use]
    pub fn checked_add(self, rhs: Self) -> Option<Self> {
        self.to_sat()
            .checked_add(rhs.to_sat())
            .and_then(|s| Self::from_sat(s).ok())
    }

    /// Returns `self - rhs`, or `None` below zero.
    #[must_use]
    pub fn checked_sub(self, rhs: Self) -> Option<Self> {
        self.to_sat()
            .checked_sub(rhs.to_sat())
            .and_then(|s| Self::from_sat(s).ok())
    }

    /// Returns `self * k`, or `None` above `MAX_MONEY`.
    #[must_use]
    pub fn checked_mul(self, k: u64) -> Option<Self> {
        self.to_sat()
            .checked_mul(k)
            .and_then(|s| Self::from_sat(s).ok())
    }

    /// Sums amounts, or `None` above `MAX_MONEY`.
    pub fn checked_sum(it: impl IntoIterator<Item = Self>) -> Option<Self> {
        it.into_iter().try_fold(Self::ZERO, Self::checked_add)
    }

    /// Parses a decimal BTQ amount exactly (as in the node's JSON, e.g. `"0.00012345"`),
    /// never through a float.
    ///
    /// # Errors
    /// Not a decimal number, more than 8 decimals, or out of range.
    pub fn from_btq_str(s: &str) -> Result<Self, ParseAmountError> {
        let invalid = || ParseAmountError::Invalid(s.chars().take(40).collect());
        let t = s.trim();
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid());
        }
        let frac_trim = frac.trim_end_matches('0');
        if frac_trim.len() > 8 {
            return Err(ParseAmountError::TooPrecise(s.chars().take(40).collect()));
        }
        let int_trim = int.trim_start_matches('0');
        if int_trim.len() > 10 {
            return Err(OutOfRangeError { sat: u64::MAX }.into());
        }
        let whole: u64 = if int_trim.is_empty() {
            0
        } else {
            int_trim.parse().map_err(|_| invalid())?
        };
        let mut f: u64 = 0;
        for (i, b) in frac_trim
            .bytes()
            .chain(core::iter::repeat(b'0'))
            .take(8)
            .enumerate()
        {
            let _ = i;
            f = f * 10 + u64::from(b - b'0');
        }
        let sat = whole
            .checked_mul(COIN)
            .and_then(|w| w.checked_add(f))
            .ok_or(OutOfRangeError { sat: u64::MAX })?;
        Ok(Self::from_sat(sat)?)
    }

    /// Renders the amount in BTQ with 8 decimals, exactly.
    pub fn to_btq_string(self) -> String {
        format!("{}.{:08}", self.to_sat() / COIN, self.to_sat() % COIN)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sat", self.to_sat())
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} BTQ", self.to_btq_string())
    }
}

impl FromStr for Amount {
    type Err = ParseAmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_btq_str(s)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.to_sat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_exact() {
        assert_eq!(Amount::from_btq_str("5").unwrap().to_sat(), 500_000_000);
        assert_eq!(Amount::from_btq_str("0.00012345").unwrap().to_sat(), 12_345);
        assert_eq!(
            Amount::from_btq_str("4.99990000").unwrap().to_sat(),
            499_990_000
        );
        assert_eq!(Amount::from_btq_str(".5").unwrap().to_sat(), 50_000_000);
        assert_eq!(Amount::from_btq_str("0.1").unwrap().to_sat(), 10_000_000);
        assert!(matches!(
            Amount::from_btq_str("0.000000001"),
            Err(ParseAmountError::TooPrecise(_))
        ));
        assert!(matches!(
            Amount::from_btq_str("21000000.00000001"),
            Err(ParseAmountError::OutOfRange(_))
        ));
        assert!(Amount::from_btq_str("1e8").is_err());
        assert!(Amount::from_btq_str("-1").is_err());
        assert!(Amount::from_btq_str("").is_err());
        assert!(Amount::from_btq_str("99999999999999999999999").is_err());
        assert_eq!(
            Amount::from_sat(12_345).unwrap().to_btq_string(),
            "0.00012345"
        );
    }

    #[test]
    fn checked_ops() {
        let one = Amount::ONE_BTQ;
        assert_eq!(one.checked_sub(Amount::MAX), None);
        assert_eq!(Amount::MAX.checked_add(Amount::from_sat(1).unwrap()), None);
        assert_eq!(one.checked_mul(3).unwrap().to_sat(), 300_000_000);
    }
}
