//! Variable difficulty: integer-only retargeting on time and on share count.
//!
//! Difficulties are held as integer millionths ([`MICRO`] per unit), so a NerdMiner-class
//! 0.00015 is exactly 150 and every step is deterministic given the timestamps passed in. The
//! public API speaks [`ShareDifficulty`].

use core::time::Duration;

use btq_core::pow::ShareDifficulty;
use btq_core::time::Timestamp;

/// Integer difficulty units per difficulty 1.
pub const MICRO: u64 = 1_000_000;

/// Vardiff settings (part of [`crate::Config`]).
#[derive(Debug, Clone, PartialEq)]
pub struct VardiffConfig {
    /// Difficulty given to new sessions (before any suggestion). Default 1.
    pub initial: ShareDifficulty,
    /// Floor. Default 0.0001 (NerdMiner-class devices); never below 0.000001.
    pub min: ShareDifficulty,
    /// Ceiling. Default 1e12.
    pub max: ShareDifficulty,
    /// Target time between shares. Default 10 s.
    pub target_share_interval: Duration,
    /// Retarget after this long since the last retarget. Default 60 s.
    pub retarget_interval: Duration,
    /// Retarget after this many shares since the last retarget. Default 20.
    pub retarget_shares: u32,
    /// Largest factor of one step, up or down (at least 2). Default 8.
    pub max_step: u32,
    /// No change while the ideal difficulty is within this percentage of the current one.
    /// Default 30.
    pub variance_percent: u32,
    /// Whether vardiff runs at all. Default true.
    pub enabled: bool,
}

impl Default for VardiffConfig {
    fn default() -> Self {
        Self {
            initial: ShareDifficulty::ONE,
            min: diff_const(100),
            max: diff_const(1_000_000_000_000 * MICRO),
            target_share_interval: Duration::from_secs(10),
            retarget_interval: Duration::from_secs(60),
            retarget_shares: 20,
            max_step: 8,
            variance_percent: 30,
            enabled: true,
        }
    }
}

fn diff_const(micros: u64) -> ShareDifficulty {
    from_micros(micros)
}

/// Converts a difficulty to integer millionths, rounding, clamped to `1..=u64::MAX`.
pub fn to_micros(d: ShareDifficulty) -> u64 {
    let v = (d.get() * 1e6).round();
    if v >= 18_446_744_073_709_549_568.0 {
        u64::MAX
    } else if v < 1.0 {
        1
    } else {
        // In range: 1 <= v < 2^64, and integral.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = v as u64;
        n
    }
}

/// Converts integer millionths to a difficulty.
pub fn from_micros(m: u64) -> ShareDifficulty {
    #[allow(clippy::cast_precision_loss)]
    let d = m.max(1) as f64 / 1e6;
    ShareDifficulty::new(d).unwrap_or(ShareDifficulty::ONE)
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One session's vardiff state (a few words; no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vardiff {
    current: u64,
    floor: u64,
    ceiling: u64,
    window_start: Timestamp,
    shares: u32,
}

impl Vardiff {
    /// Creates the state at the configured initial difficulty, clamped to the bounds.
    pub fn new(cfg: &VardiffConfig, now: Timestamp) -> Self {
        let floor = to_micros(cfg.min);
        let ceiling = to_micros(cfg.max).max(floor);
        Self {
            current: to_micros(cfg.initial).clamp(floor, ceiling),
            floor,
            ceiling,
            window_start: now,
            shares: 0,
        }
    }

    /// Returns the current difficulty.
    pub fn difficulty(&self) -> ShareDifficulty {
        from_micros(self.current)
    }

    /// Returns the current difficulty in millionths.
    pub const fn micros(&self) -> u64 {
        self.current
    }

    /// Returns the session's floor in millionths.
    pub const fn floor_micros(&self) -> u64 {
        self.floor
    }

    /// Returns the session's ceiling in millionths.
    pub const fn ceiling_micros(&self) -> u64 {
        self.ceiling
    }

    /// Sets the difficulty (a suggestion or an operator override), clamped to the bounds, and
    /// restarts the window. Returns the new difficulty if it changed.
    pub fn set(&mut self, d: ShareDifficulty, now: Timestamp) -> Option<ShareDifficulty> {
        let new = to_micros(d).clamp(self.floor, self.ceiling);
        self.window_start = now;
        self.shares = 0;
        (new != self.current).then(|| {
            self.current = new;
            self.difficulty()
        })
    }

    /// Raises the session's floor (`mining.configure` `minimum-difficulty`), never above the
    /// ceiling; lifts the current difficulty to it. Returns the new difficulty if it changed.
    pub fn raise_floor(&mut self, d: ShareDifficulty) -> Option<ShareDifficulty> {
        self.floor = to_micros(d).clamp(self.floor, self.ceiling);
        (self.current < self.floor).then(|| {
            self.current = self.floor;
            self.difficulty()
        })
    }

    /// Returns when the time-based retarget is due.
    pub fn next_retarget(&self, cfg: &VardiffConfig) -> Timestamp {
        self.window_start
            .saturating_add_millis(millis(cfg.retarget_interval))
    }

    /// Records an accepted share; retargets if enough shares or time accumulated.
    pub fn record_share(&mut self, cfg: &VardiffConfig, now: Timestamp) -> Option<ShareDifficulty> {
        self.shares = self.shares.saturating_add(1);
        self.maybe_retarget(cfg, now)
    }

    /// Retargets on time alone (a miner that stopped finding shares gets an easier target).
    pub fn handle_timeout(
        &mut self,
        cfg: &VardiffConfig,
        now: Timestamp,
    ) -> Option<ShareDifficulty> {
        self.maybe_retarget(cfg, now)
    }

    fn maybe_retarget(&mut self, cfg: &VardiffConfig, now: Timestamp) -> Option<ShareDifficulty> {
        if !cfg.enabled {
            return None;
        }
        let elapsed = now.saturating_millis_since(self.window_start);
        if self.shares < cfg.retarget_shares.max(1) && elapsed < millis(cfg.retarget_interval) {
            return None;
        }
        let new = retarget(self.current, self.shares, elapsed, cfg).clamp(self.floor, self.ceiling);
        self.window_start = now;
        self.shares = 0;
        (new != self.current).then(|| {
            self.current = new;
            self.difficulty()
        })
    }
}

/// The integer retarget rule: `ideal = cur × shares × target / elapsed`, limited to one step of
/// at most `max_step` either way, unchanged inside the variance band.
pub fn retarget(current: u64, shares: u32, elapsed_ms: u64, cfg: &VardiffConfig) -> u64 {
    let cur = u128::from(current.max(1));
    let target = u128::from(millis(cfg.target_share_interval).max(1));
    let elapsed = u128::from(elapsed_ms.max(1));
    let step = u128::from(cfg.max_step.max(2));
    let ideal = cur
        .saturating_mul(u128::from(shares))
        .saturating_mul(target)
        / elapsed;
    let lo = (cur / step).max(1);
    let hi = cur.saturating_mul(step);
    let ideal = ideal.clamp(lo, hi);
    let delta = ideal.abs_diff(cur);
    if delta.saturating_mul(100) <= cur.saturating_mul(u128::from(cfg.variance_percent)) {
        return current;
    }
    u64::try_from(ideal).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_roundtrip() {
        assert_eq!(to_micros(ShareDifficulty::new(0.00015).unwrap()), 150);
        assert_eq!(from_micros(150).to_string(), "0.00015");
        assert_eq!(to_micros(ShareDifficulty::new(1e30).unwrap()), u64::MAX);
        assert_eq!(to_micros(ShareDifficulty::new(1e-12).unwrap()), 1);
    }

    #[test]
    fn ramps_up_and_down() {
        let cfg = VardiffConfig::default();
        let mut v = Vardiff::new(&cfg, Timestamp::ZERO);
        // 20 shares in 1 s at a 10 s target: way too easy, one max step up.
        let mut t = 0;
        let mut changed = None;
        for _ in 0..20 {
            t += 50;
            changed = v.record_share(&cfg, Timestamp::from_millis(t));
        }
        assert_eq!(changed.map(|d| d.get()), Some(8.0));
        // No shares for a minute: one step down.
        let d = v.handle_timeout(&cfg, Timestamp::from_millis(t + 60_000));
        assert_eq!(d.map(|d| d.get()), Some(1.0));
        // Exactly on target: no change.
        let mut t = t + 60_000;
        let mut last = None;
        for _ in 0..20 {
            t += 10_000;
            last = v.record_share(&cfg, Timestamp::from_millis(t)).or(last);
        }
        assert_eq!(last, None);
        assert_eq!(v.micros(), MICRO);
    }

    #[test]
    fn floor_and_suggestion() {
        let cfg = VardiffConfig::default();
        let mut v = Vardiff::new(&cfg, Timestamp::ZERO);
        assert_eq!(
            v.set(ShareDifficulty::new(0.00015).unwrap(), Timestamp::ZERO)
                .unwrap()
                .get(),
            0.00015
        );
        assert_eq!(
            v.set(ShareDifficulty::new(1e-9).unwrap(), Timestamp::ZERO)
                .unwrap()
                .get(),
            0.0001
        );
        assert_eq!(
            v.raise_floor(ShareDifficulty::new(2048.0).unwrap())
                .unwrap()
                .get(),
            2048.0
        );
        assert_eq!(v.floor_micros(), 2048 * MICRO);
    }
}
