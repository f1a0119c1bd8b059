//! Property tests: vardiff stays within its bounds, moves by at most one step, and is
//! deterministic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use btq_core::pow::ShareDifficulty;
use btq_core::time::Timestamp;
use btq_stratum::VardiffConfig;
use btq_stratum::vardiff::{Vardiff, to_micros};
use core::time::Duration;
use proptest::prelude::*;

fn cfg(min_e6: u64, span: u64, step: u32, target_ms: u64, shares: u32) -> VardiffConfig {
    let min = ShareDifficulty::new(min_e6 as f64 / 1e6).unwrap();
    let max = ShareDifficulty::new((min_e6 * span) as f64 / 1e6).unwrap();
    VardiffConfig {
        initial: min,
        min,
        max,
        target_share_interval: Duration::from_millis(target_ms),
        retarget_interval: Duration::from_millis(target_ms * 6),
        retarget_shares: shares,
        max_step: step,
        variance_percent: 30,
        enabled: true,
    }
}

proptest! {
    #[test]
    fn stays_within_bounds_and_steps(
        min_e6 in 1u64..10_000_000,
        span in 1u64..1_000_000,
        step in 2u32..16,
        target_ms in 1u64..60_000,
        shares in 1u32..64,
        suggestion in 1e-9f64..1e15,
        events in proptest::collection::vec((0u64..120_000, any::<bool>()), 1..300),
    ) {
        let c = cfg(min_e6, span, step, target_ms, shares);
        let (lo, hi) = (to_micros(c.min), to_micros(c.max));
        let mut v = Vardiff::new(&c, Timestamp::ZERO);
        let mut w = v;
        v.set(ShareDifficulty::new(suggestion).unwrap(), Timestamp::ZERO);
        w.set(ShareDifficulty::new(suggestion).unwrap(), Timestamp::ZERO);
        prop_assert!(v.micros() >= lo && v.micros() <= hi);
        let mut now = 0u64;
        for (dt, share) in events {
            now += dt;
            let t = Timestamp::from_millis(now);
            let before = v.micros();
            let changed = if share { v.record_share(&c, t) } else { v.handle_timeout(&c, t) };
            let after = v.micros();
            prop_assert!(after >= lo && after <= hi, "{after} outside [{lo}, {hi}]");
            prop_assert_eq!(changed.is_some(), after != before);
            // One step at most (the floor/ceiling clamp can only move it closer).
            let s = u64::from(step);
            prop_assert!(after <= before.saturating_mul(s).max(lo));
            prop_assert!(after >= (before / s).max(1).min(hi) || after == lo);
            // Deterministic: a twin fed the same inputs agrees.
            let twin = if share { w.record_share(&c, t) } else { w.handle_timeout(&c, t) };
            prop_assert_eq!(twin, changed);
        }
    }

    #[test]
    fn steady_rate_converges_to_target(rate_ms in 100u64..100_000) {
        let c = VardiffConfig { min: ShareDifficulty::new(1e-6).unwrap(), ..VardiffConfig::default() };
        let mut v = Vardiff::new(&c, Timestamp::ZERO);
        // A miner whose hashrate yields one share per `rate_ms` at difficulty 1.
        let hashrate = 1.0 / rate_ms as f64;
        let mut now = 0f64;
        for _ in 0..2000 {
            let d = v.difficulty().get();
            now += d / hashrate;
            if now > 1e12 { break; }
            v.record_share(&c, Timestamp::from_millis(now as u64));
        }
        let interval = v.difficulty().get() / hashrate;
        prop_assert!(interval > 10_000.0 * 0.5 && interval < 10_000.0 * 2.0, "interval {interval}");
    }
}
