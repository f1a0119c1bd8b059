//! Proof of work: compact targets, 256-bit targets, chain work, difficulty and Stratum share
//! difficulty, and the node's retarget rules.
//!
//! Difficulty is relative to `0x1d00ffff` (difficulty 1 = target `0x00000000ffff0000…`), as in
//! the node's `GetDifficulty` and in Stratum. BTQ's proof-of-work limit is `0x7fff…ff`, so network
//! difficulties below 1 are normal (mainnet genesis: 1/65536) and share difficulties may be
//! fractional too.

use core::cmp::Ordering;
use core::fmt;

use thiserror::Error;

use crate::hash::BlockHash;

/// A 256-bit unsigned integer with the arithmetic the proof-of-work rules need.
///
/// Multiplication by a small factor wraps modulo 2^256, like the node's `arith_uint256`; see
/// [`retarget`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct U256([u64; 4]); // little-endian limbs

#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "limb indices are in 0..4 by construction; truncating casts take the low limb on purpose"
)]
impl U256 {
    /// Zero.
    pub const ZERO: Self = Self([0; 4]);
    /// One.
    pub const ONE: Self = Self([1, 0, 0, 0]);
    /// 2^256 − 1.
    pub const MAX: Self = Self([u64::MAX; 4]);

    /// Creates a value from 32 little-endian bytes (the order of a sha256d output).
    pub fn from_le_bytes(b: [u8; 32]) -> Self {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(b.chunks_exact(8)) {
            let mut a = [0u8; 8];
            a.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(a);
        }
        Self(limbs)
    }

    /// Creates a value from 32 big-endian bytes.
    pub fn from_be_bytes(mut b: [u8; 32]) -> Self {
        b.reverse();
        Self::from_le_bytes(b)
    }

    /// Returns 32 little-endian bytes.
    pub fn to_le_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// Returns 32 big-endian bytes.
    pub fn to_be_bytes(self) -> [u8; 32] {
        let mut b = self.to_le_bytes();
        b.reverse();
        b
    }

    /// Creates a value from a `u64`.
    pub const fn from_u64(v: u64) -> Self {
        Self([v, 0, 0, 0])
    }

    /// Returns the low 64 bits.
    pub const fn low_u64(self) -> u64 {
        self.0[0]
    }

    /// Returns true for zero.
    pub fn is_zero(self) -> bool {
        self.0 == [0; 4]
    }

    /// Returns the number of significant bits.
    pub fn bits(self) -> u32 {
        for i in (0..4).rev() {
            let limb = self.0[i];
            if limb != 0 {
                return 64 * i as u32 + (64 - limb.leading_zeros());
            }
        }
        0
    }

    fn bit(self, n: u32) -> bool {
        let limb = self.0.get((n / 64) as usize).copied().unwrap_or(0);
        (limb >> (n % 64)) & 1 == 1
    }

    /// Shifts left, discarding bits shifted out.
    #[must_use]
    pub fn shl_bits(self, n: u32) -> Self {
        if n >= 256 {
            return Self::ZERO;
        }
        let (words, bits) = ((n / 64) as usize, n % 64);
        let mut out = [0u64; 4];
        for i in (0..4usize).rev() {
            let Some(src) = i.checked_sub(words) else {
                continue;
            };
            let mut v = self.0[src] << bits;
            if bits > 0 && src > 0 {
                v |= self.0[src - 1] >> (64 - bits);
            }
            out[i] = v;
        }
        Self(out)
    }

    /// Shifts right.
    #[must_use]
    pub fn shr_bits(self, n: u32) -> Self {
        if n >= 256 {
            return Self::ZERO;
        }
        let (words, bits) = ((n / 64) as usize, n % 64);
        let mut out = [0u64; 4];
        for (i, slot) in out.iter_mut().enumerate() {
            let src = i + words;
            if src >= 4 {
                break;
            }
            let mut v = self.0[src] >> bits;
            if bits > 0 && src + 1 < 4 {
                v |= self.0[src + 1] << (64 - bits);
            }
            *slot = v;
        }
        Self(out)
    }

    /// Returns `self + rhs` and whether it overflowed.
    pub fn overflowing_add(self, rhs: Self) -> (Self, bool) {
        let mut out = [0u64; 4];
        let mut carry = false;
        for (i, slot) in out.iter_mut().enumerate() {
            let (s1, c1) = self.0[i].overflowing_add(rhs.0[i]);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *slot = s2;
            carry = c1 || c2;
        }
        (Self(out), carry)
    }

    /// Returns `self + rhs`, saturating at [`U256::MAX`].
    #[must_use]
    pub fn saturating_add(self, rhs: Self) -> Self {
        match self.overflowing_add(rhs) {
            (v, false) => v,
            (_, true) => Self::MAX,
        }
    }

    /// Returns `self - rhs`, or `None` if `rhs > self`.
    #[must_use]
    pub fn checked_sub(self, rhs: Self) -> Option<Self> {
        if rhs > self {
            return None;
        }
        let mut out = [0u64; 4];
        let mut borrow = false;
        for (i, slot) in out.iter_mut().enumerate() {
            let (d1, b1) = self.0[i].overflowing_sub(rhs.0[i]);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *slot = d2;
            borrow = b1 || b2;
        }
        Some(Self(out))
    }

    /// Returns `self * k` modulo 2^256 (the node's `arith_uint256 *= uint32`).
    #[must_use]
    pub fn wrapping_mul_u64(self, k: u64) -> Self {
        let mut out = [0u64; 4];
        let mut carry: u128 = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            let p = u128::from(self.0[i]) * u128::from(k) + carry;
            *slot = p as u64;
            carry = p >> 64;
        }
        Self(out)
    }

    /// Returns `self * k`, or `None` on overflow.
    #[must_use]
    pub fn checked_mul_u64(self, k: u64) -> Option<Self> {
        let mut out = [0u64; 4];
        let mut carry: u128 = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            let p = u128::from(self.0[i]) * u128::from(k) + carry;
            *slot = p as u64;
            carry = p >> 64;
        }
        (carry == 0).then_some(Self(out))
    }

    /// Returns `(self / d, self % d)`, or `None` when `d` is zero.
    pub fn div_rem(self, d: Self) -> Option<(Self, Self)> {
        if d.is_zero() {
            return None;
        }
        if self < d {
            return Some((Self::ZERO, self));
        }
        let mut q = Self::ZERO;
        let mut r = Self::ZERO;
        for i in (0..self.bits()).rev() {
            r = r.shl_bits(1);
            if self.bit(i) {
                r.0[0] |= 1;
            }
            if r >= d {
                r = r.checked_sub(d).unwrap_or(Self::ZERO);
                q.0[(i / 64) as usize] |= 1 << (i % 64);
            }
        }
        Some((q, r))
    }

    /// Converts to the nearest `f64` (rounding toward zero below 2^-53 relative error).
    pub fn to_f64(self) -> f64 {
        let bits = self.bits();
        if bits <= 64 {
            return self.0[0] as f64;
        }
        let shift = bits - 64;
        let top = self.shr_bits(shift).0[0];
        top as f64 * 2f64.powi(shift as i32)
    }
}

impl Ord for U256 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", crate::hex::encode(&self.to_be_bytes()))
    }
}

impl fmt::LowerHex for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.to_be_bytes()))
    }
}

/// An error expanding a compact target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CompactTargetError {
    /// The sign bit is set on a non-zero mantissa.
    #[error("compact target {0:#010x} is negative")]
    Negative(u32),
    /// The value does not fit in 256 bits.
    #[error("compact target {0:#010x} overflows 256 bits")]
    Overflow(u32),
    /// The target is zero.
    #[error("compact target {0:#010x} is zero")]
    Zero(u32),
    /// The target is above the network's proof-of-work limit.
    #[error("compact target {0:#010x} is above the proof-of-work limit")]
    AboveLimit(u32),
}

/// The header's `nBits` field: a 256-bit target in floating-point-like compact form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompactTarget(u32);

impl fmt::Debug for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactTarget({:08x})", self.0)
    }
}

impl fmt::Display for CompactTarget {
    /// Renders the 8-hex-digit form used by `getblocktemplate` (`bits`) and Stratum.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl CompactTarget {
    /// Creates a compact target from its consensus `u32`.
    pub const fn from_consensus(bits: u32) -> Self {
        Self(bits)
    }

    /// Returns the consensus `u32`.
    pub const fn to_consensus(self) -> u32 {
        self.0
    }

    /// Expands to a 256-bit target (`arith_uint256::SetCompact`), rejecting negative,
    /// overflowing and zero values as `CheckProofOfWork` does.
    ///
    /// # Errors
    /// [`CompactTargetError`] for negative, overflowing or zero targets.
    pub fn to_target(self) -> Result<Target, CompactTargetError> {
        let bits = self.0;
        let size = bits >> 24;
        let mut word = bits & 0x007f_ffff;
        let value = if size <= 3 {
            word >>= 8 * (3 - size);
            U256::from_u64(u64::from(word))
        } else {
            U256::from_u64(u64::from(word)).shl_bits(8 * (size - 3))
        };
        let negative = word != 0 && (bits & 0x0080_0000) != 0;
        let overflow =
            word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));
        if negative {
            return Err(CompactTargetError::Negative(bits));
        }
        if overflow {
            return Err(CompactTargetError::Overflow(bits));
        }
        if value.is_zero() {
            return Err(CompactTargetError::Zero(bits));
        }
        Ok(Target(value))
    }

    /// Returns the node's `GetDifficulty` for these bits: relative to `0x1d00ffff`.
    pub fn difficulty(self) -> f64 {
        let mut shift = (self.0 >> 24) & 0xff;
        let mantissa = self.0 & 0x00ff_ffff;
        if mantissa == 0 {
            return f64::INFINITY;
        }
        let mut diff = f64::from(0x0000_ffff_u32) / f64::from(mantissa);
        while shift < 29 {
            diff *= 256.0;
            shift += 1;
        }
        while shift > 29 {
            diff /= 256.0;
            shift -= 1;
        }
        diff
    }
}

/// A 256-bit proof-of-work target: a hash meets it when, read as a little-endian integer, it is
/// less than or equal to the target.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target(U256);

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({:x})", self.0)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// Stratum's difficulty-1 target, `0x00000000ffff0000…` (= compact `0x1d00ffff`).
pub const DIFF1_TARGET: Target = Target(U256([0, 0, 0, 0x0000_0000_ffff_0000]));

/// BTQ's proof-of-work limit on every network, `0x7fff…ff` (compact `0x207fffff`).
pub const POW_LIMIT: Target = Target(U256([u64::MAX, u64::MAX, u64::MAX, 0x7fff_ffff_ffff_ffff]));

impl Target {
    /// The largest target (every hash meets it).
    pub const MAX: Self = Self(U256::MAX);

    /// Creates a target from a 256-bit integer.
    pub const fn from_u256(v: U256) -> Self {
        Self(v)
    }

    /// Returns the 256-bit integer.
    pub const fn to_u256(self) -> U256 {
        self.0
    }

    /// Creates a target from 32 big-endian bytes (the `target` hex of `getblocktemplate`).
    pub fn from_be_bytes(b: [u8; 32]) -> Self {
        Self(U256::from_be_bytes(b))
    }

    /// Returns the target as 32 big-endian bytes.
    pub fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// Returns true when `hash` (internal byte order) meets this target.
    pub fn is_met_by(self, hash: BlockHash) -> bool {
        U256::from_le_bytes(hash.to_byte_array()) <= self.0
    }

    /// Compresses to compact form (`arith_uint256::GetCompact`), rounding down.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the mantissa is at most 24 bits by construction"
    )]
    pub fn to_compact(self) -> CompactTarget {
        let mut size = self.0.bits().div_ceil(8);
        let mut compact = if size <= 3 {
            (self.0.low_u64() << (8 * (3 - size))) as u32
        } else {
            self.0.shr_bits(8 * (size - 3)).low_u64() as u32
        };
        if compact & 0x0080_0000 != 0 {
            compact >>= 8;
            size += 1;
        }
        CompactTarget(compact | (size << 24))
    }

    /// Returns the difficulty relative to [`DIFF1_TARGET`] (`diff1 / target`).
    pub fn difficulty(self) -> f64 {
        if self.0.is_zero() {
            return f64::INFINITY;
        }
        DIFF1_TARGET.0.to_f64() / self.0.to_f64()
    }

    /// Returns the expected number of hashes to meet this target: `2^256 / (target + 1)`.
    pub fn to_work(self) -> Work {
        // (~t / (t + 1)) + 1, as the node computes GetBlockProof.
        let not = U256(self.0.0.map(|l| !l));
        let (t1, overflow) = self.0.overflowing_add(U256::ONE);
        if overflow {
            return Work(U256::ONE);
        }
        let q = not.div_rem(t1).map_or(U256::ZERO, |(q, _)| q);
        Work(q.saturating_add(U256::ONE))
    }
}

/// Accumulated chain work.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Work(U256);

impl Work {
    /// No work.
    pub const ZERO: Self = Self(U256::ZERO);

    /// Returns the 256-bit integer.
    pub const fn to_u256(self) -> U256 {
        self.0
    }

    /// Creates work from a 256-bit integer.
    pub const fn from_u256(v: U256) -> Self {
        Self(v)
    }

    /// Adds work, saturating.
    #[must_use]
    pub fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }

    /// Subtracts work, or `None` below zero.
    #[must_use]
    pub fn checked_sub(self, rhs: Self) -> Option<Self> {
        self.0.checked_sub(rhs.0).map(Self)
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Work({:x})", self.0)
    }
}

impl fmt::Display for Work {
    /// Renders 64 hex digits, as the node's `chainwork`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// An invalid share difficulty.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[error("share difficulty {0} is not a finite positive number")]
pub struct ShareDifficultyError(pub f64);

/// A Stratum share difficulty: a finite positive number, possibly below 1.
///
/// Conversions to a target are exact in integers: the `f64` is split into its integer mantissa
/// and binary exponent, so no rounding of the target beyond the difficulty's own precision.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
pub struct ShareDifficulty(f64);

impl fmt::Debug for ShareDifficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareDifficulty({})", self.0)
    }
}

impl fmt::Display for ShareDifficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl ShareDifficulty {
    /// Difficulty 1.
    pub const ONE: Self = Self(1.0);

    /// Creates a share difficulty.
    ///
    /// # Errors
    /// [`ShareDifficultyError`] unless finite and positive.
    pub fn new(d: f64) -> Result<Self, ShareDifficultyError> {
        if d.is_finite() && d > 0.0 {
            Ok(Self(d))
        } else {
            Err(ShareDifficultyError(d))
        }
    }

    /// Returns the value.
    pub const fn get(self) -> f64 {
        self.0
    }

    /// Returns the share target `diff1 / difficulty`, saturating at [`Target::MAX`].
    pub fn to_target(self) -> Target {
        // d = m * 2^e exactly, with m a 53-bit integer.
        let bits = self.0.to_bits();
        let exp_field = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1u64 << 52) - 1);
        let (m, e) = if exp_field == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), exp_field - 1075)
        };
        if m == 0 {
            return Target::MAX;
        }
        // target = diff1 * 2^-e / m = ((diff1 << 32) / m) * 2^(-e - 32)
        let num = DIFF1_TARGET.0.shl_bits(32);
        let q = num.div_rem(U256::from_u64(m)).map_or(U256::MAX, |(q, _)| q);
        let shift = -e - 32;
        if shift >= 0 {
            let s = shift as u32;
            if q.bits() + s > 256 {
                return Target::MAX;
            }
            Target(q.shl_bits(s))
        } else {
            Target(q.shr_bits(shift.unsigned_abs()))
        }
    }

    /// Returns the difficulty whose target is `target` (`diff1 / target`).
    pub fn from_target(target: Target) -> Self {
        let d = target.difficulty();
        Self(if d.is_finite() && d > 0.0 {
            d
        } else {
            f64::MIN_POSITIVE
        })
    }

    /// Returns the difficulty a hash achieves (`diff1 / hash`), the share's own difficulty.
    pub fn of_hash(hash: BlockHash) -> f64 {
        let h = U256::from_le_bytes(hash.to_byte_array());
        if h.is_zero() {
            return f64::INFINITY;
        }
        DIFF1_TARGET.0.to_f64() / h.to_f64()
    }
}

/// The retarget interval in blocks (14 days of 60-second blocks).
pub const RETARGET_INTERVAL: u32 = 20_160;
/// The target block spacing in seconds.
pub const TARGET_SPACING_SECS: u32 = 60;
/// The target timespan of one retarget interval in seconds.
pub const TARGET_TIMESPAN_SECS: u32 = 14 * 24 * 60 * 60;

/// Computes the bits at a retarget boundary (`CalculateNextWorkRequired`): the old target
/// scaled by the clamped actual timespan, capped at the proof-of-work limit.
///
/// `actual_timespan` is `time(last block) - time(first block of the window)`. Like the node, the
/// multiplication wraps modulo 2^256: with BTQ's high proof-of-work limit a target near the limit
/// times a slow timespan can wrap, and the node's result is reproduced exactly.
pub fn retarget(old: CompactTarget, actual_timespan: i64, pow_limit: Target) -> CompactTarget {
    let t = i64::from(TARGET_TIMESPAN_SECS);
    let span = actual_timespan.clamp(t / 4, t * 4);
    // SetCompact ignores the negative/overflow flags; mimic by expanding leniently.
    let old_target = expand_lenient(old);
    let scaled = old_target.wrapping_mul_u64(span.unsigned_abs());
    let new = scaled
        .div_rem(U256::from_u64(t.unsigned_abs()))
        .map_or(U256::ZERO, |(q, _)| q);
    let new = if new > pow_limit.0 { pow_limit.0 } else { new };
    Target(new).to_compact()
}

fn expand_lenient(bits: CompactTarget) -> U256 {
    let size = bits.0 >> 24;
    let word = bits.0 & 0x007f_ffff;
    if size <= 3 {
        U256::from_u64(u64::from(word >> (8 * (3 - size))))
    } else {
        U256::from_u64(u64::from(word)).shl_bits(8 * (size - 3))
    }
}

/// What the next block's bits must be (`GetNextWorkRequired`), given the facts the rule reads.
#[derive(Debug, Clone, Copy)]
pub struct NextWorkInputs {
    /// Height of the new block.
    pub height: u32,
    /// Bits of the previous block.
    pub prev_bits: CompactTarget,
    /// Time of the previous block.
    pub prev_time: u32,
    /// Time of the new block (for testnet's minimum-difficulty rule).
    pub new_time: u32,
    /// At a retarget boundary: the time of the first block of the window (height − 20160).
    pub window_first_time: Option<u32>,
    /// On networks with minimum-difficulty blocks: the bits of the last block that is either at a
    /// retarget boundary or not a minimum-difficulty block, walking back from the previous one.
    pub last_regular_bits: Option<CompactTarget>,
}

/// Applies the node's `GetNextWorkRequired` for `params`.
pub fn next_work_required(
    params: &crate::params::ChainParams,
    i: &NextWorkInputs,
) -> CompactTarget {
    let limit_bits = params.pow_limit.to_compact();
    if params.no_retargeting {
        return i.prev_bits;
    }
    if !i.height.is_multiple_of(RETARGET_INTERVAL) {
        if params.allow_min_difficulty_blocks {
            if i64::from(i.new_time) > i64::from(i.prev_time) + 2 * i64::from(TARGET_SPACING_SECS) {
                return limit_bits;
            }
            return i.last_regular_bits.unwrap_or(i.prev_bits);
        }
        return i.prev_bits;
    }
    let first = i.window_first_time.unwrap_or(i.prev_time);
    retarget(
        i.prev_bits,
        i64::from(i.prev_time) - i64::from(first),
        params.pow_limit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_round_trip_known() {
        let t = CompactTarget::from_consensus(0x1d00ffff)
            .to_target()
            .unwrap();
        assert_eq!(t, DIFF1_TARGET);
        assert_eq!(t.to_compact().to_consensus(), 0x1d00ffff);
        let lim = CompactTarget::from_consensus(0x207fffff)
            .to_target()
            .unwrap();
        assert_eq!(lim.to_compact().to_consensus(), 0x207fffff);
        assert!(lim <= POW_LIMIT);
        assert_eq!(POW_LIMIT.to_compact().to_consensus(), 0x207fffff);
        assert!(matches!(
            CompactTarget::from_consensus(0x04923456).to_target(),
            Err(CompactTargetError::Negative(_))
        ));
        assert!(matches!(
            CompactTarget::from_consensus(0xff123456).to_target(),
            Err(CompactTargetError::Overflow(_))
        ));
        assert!(matches!(
            CompactTarget::from_consensus(0x01003456).to_target(),
            Err(CompactTargetError::Zero(_))
        ));
        // Bitcoin Core arith_uint256 tests.
        assert_eq!(
            CompactTarget::from_consensus(0x05009234)
                .to_target()
                .unwrap()
                .to_compact()
                .to_consensus(),
            0x05009234
        );
        assert_eq!(
            CompactTarget::from_consensus(0x01123456)
                .to_target()
                .unwrap()
                .to_compact()
                .to_consensus(),
            0x01120000
        );
    }

    #[test]
    fn node_difficulties() {
        assert_eq!(CompactTarget::from_consensus(0x1d00ffff).difficulty(), 1.0);
        assert_eq!(
            CompactTarget::from_consensus(0x1f00ffff).difficulty(),
            1.52587890625e-05
        );
        let d = CompactTarget::from_consensus(0x207fffff).difficulty();
        assert!((d - 4.656542373906925e-10).abs() < 1e-20, "{d}");
    }

    #[test]
    fn share_difficulty_targets() {
        assert_eq!(ShareDifficulty::ONE.to_target(), DIFF1_TARGET);
        let two = ShareDifficulty::new(2.0).unwrap().to_target();
        assert_eq!(two.to_u256(), DIFF1_TARGET.to_u256().shr_bits(1));
        let half = ShareDifficulty::new(0.5).unwrap().to_target();
        assert_eq!(half.to_u256(), DIFF1_TARGET.to_u256().shl_bits(1));
        let tiny = ShareDifficulty::new(1e-300).unwrap().to_target();
        assert_eq!(tiny, Target::MAX);
        assert!(ShareDifficulty::new(0.0).is_err());
        assert!(ShareDifficulty::new(f64::NAN).is_err());
        let d = ShareDifficulty::new(0.0001).unwrap();
        let back = ShareDifficulty::from_target(d.to_target()).get();
        assert!((back - 0.0001).abs() / 0.0001 < 1e-12);
    }

    #[test]
    fn work_of_targets() {
        assert_eq!(
            DIFF1_TARGET.to_work().to_u256(),
            U256::from_u64(0x0001_0001_0001)
        );
        assert_eq!(POW_LIMIT.to_work().to_u256(), U256::from_u64(2));
    }

    #[test]
    fn retarget_clamps_and_caps() {
        let bits = CompactTarget::from_consensus(0x1d00ffff);
        let t = i64::from(TARGET_TIMESPAN_SECS);
        assert_eq!(retarget(bits, t, POW_LIMIT), bits);
        // Four times faster caps at a quarter.
        let faster = retarget(bits, 1, POW_LIMIT).to_target().unwrap();
        assert_eq!(faster.to_u256(), DIFF1_TARGET.to_u256().shr_bits(2));
        let slower = retarget(bits, t * 100, POW_LIMIT).to_target().unwrap();
        assert_eq!(slower.to_u256(), DIFF1_TARGET.to_u256().shl_bits(2));
        // At BTQ's limit the node's 256-bit multiplication wraps even for an on-schedule window;
        // the result is what the node computes, not the limit.
        let at_limit = CompactTarget::from_consensus(0x207fffff);
        let wrapped = at_limit
            .to_target()
            .unwrap()
            .to_u256()
            .wrapping_mul_u64(t.unsigned_abs());
        let expected =
            Target::from_u256(wrapped.div_rem(U256::from_u64(t.unsigned_abs())).unwrap().0);
        assert_eq!(retarget(at_limit, t, POW_LIMIT), expected.to_compact());
        assert_ne!(expected.to_compact(), at_limit);
        // Mainnet's genesis bits (0x1f00ffff, about 2^240) wrap for every clamped timespan.
        let main_genesis = CompactTarget::from_consensus(0x1f00ffff);
        assert!(
            main_genesis
                .to_target()
                .unwrap()
                .to_u256()
                .checked_mul_u64((t / 4).unsigned_abs())
                .is_none()
        );
    }

    #[test]
    fn next_work_rules_per_network() {
        use crate::params::Network;
        let bits = CompactTarget::from_consensus(0x1d00ffff);
        let regular = CompactTarget::from_consensus(0x1c00ffff);
        let base = NextWorkInputs {
            height: 5,
            prev_bits: bits,
            prev_time: 1_000_000,
            new_time: 1_000_060,
            window_first_time: None,
            last_regular_bits: Some(regular),
        };
        // Mainnet: unchanged between retargets.
        assert_eq!(next_work_required(Network::Bitcoin.params(), &base), bits);
        // Testnet: more than 2 x 60 s after the previous block allows a minimum-difficulty block.
        let late = NextWorkInputs {
            new_time: 1_000_121,
            ..base
        };
        assert_eq!(
            next_work_required(Network::Testnet.params(), &late).to_consensus(),
            0x207fffff
        );
        // Otherwise the last regular block's bits apply.
        assert_eq!(
            next_work_required(Network::Testnet.params(), &base),
            regular
        );
        // Regtest never retargets.
        let boundary = NextWorkInputs {
            height: RETARGET_INTERVAL,
            window_first_time: Some(0),
            ..base
        };
        assert_eq!(
            next_work_required(Network::Regtest.params(), &boundary),
            bits
        );
        // Mainnet at the boundary: twice as slow as planned doubles the target.
        let slow = NextWorkInputs {
            height: RETARGET_INTERVAL,
            prev_time: 2 * TARGET_TIMESPAN_SECS,
            window_first_time: Some(0),
            ..base
        };
        let t = next_work_required(Network::Bitcoin.params(), &slow)
            .to_target()
            .unwrap();
        assert_eq!(t.to_u256(), DIFF1_TARGET.to_u256().shl_bits(1));
    }

    #[test]
    fn retarget_wraps_like_the_node() {
        // A target near BTQ's limit times a 4x timespan overflows 256 bits in arith_uint256; the
        // node keeps the wrapped value (then compares with the limit), and so do we.
        let old = CompactTarget::from_consensus(0x2000ffff);
        let t = i64::from(TARGET_TIMESPAN_SECS);
        let wrapped = old
            .to_target()
            .unwrap()
            .to_u256()
            .wrapping_mul_u64(4 * t.unsigned_abs());
        let expected = wrapped.div_rem(U256::from_u64(t.unsigned_abs())).unwrap().0;
        let expected = if expected > POW_LIMIT.to_u256() {
            POW_LIMIT.to_u256()
        } else {
            expected
        };
        assert_eq!(
            retarget(old, 4 * t, POW_LIMIT),
            Target::from_u256(expected).to_compact()
        );
    }
}
