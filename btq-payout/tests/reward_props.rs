//! Property tests: every scheme conserves value to the satoshi, for any share history and fees.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test code"
)]

use std::collections::BTreeMap;

use btq_core::params::Network;
use btq_core::{Amount, ScriptBuf};
use btq_payout::coinbase::{CoinbasePayoutConfig, split_coinbase};
use btq_payout::reward::{FeeConfig, Share, fpps_block_value, pplns, pps, prop, solo};
use proptest::prelude::*;

fn shares() -> impl Strategy<Value = Vec<Share>> {
    prop::collection::vec((0u8..8, 1u64..1_000_000, 1u64..10_000_000), 0..200).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (w, d, nd))| Share {
                worker: format!("m{w}"),
                difficulty: d,
                network_difficulty: nd,
                time: i as u64,
            })
            .collect()
    })
}

fn fees() -> impl Strategy<Value = FeeConfig> {
    prop::collection::vec((0u8..3, 0u32..2_000), 0..4).prop_map(|v| FeeConfig {
        recipients: v.into_iter().map(|(a, b)| (format!("fee{a}"), b)).collect(),
        remainder_account: "pool".into(),
    })
}

proptest! {
    #[test]
    fn all_schemes_conserve(
        shares in shares(),
        fees in fees(),
        value in 0u64..=2_100_000_000_000_000,
        n in 1u64..5,
        nd in 1u64..100_000_000,
        tpl in 0u64..100_000_000,
    ) {
        let v = Amount::from_sat(value).unwrap();
        let ds = [
            pplns(v, &shares, n, nd, &fees).unwrap(),
            prop(v, &shares, &fees).unwrap(),
            solo(v, "finder", &fees).unwrap(),
        ];
        for d in &ds {
            prop_assert!(d.check_conservation());
            prop_assert_eq!(d.value, v);
            let total: u64 = d.account_totals().unwrap().values().map(|a| a.to_sat()).sum();
            prop_assert_eq!(total, value);
        }
        // Remainder below one satoshi per miner plus one per fee recipient.
        let d = &ds[1];
        prop_assert!(d.remainder.to_sat() <= (d.credits.len() + fees.recipients.len() + 8) as u64
            || shares.is_empty());
        let fv = fpps_block_value(Amount::from_sat(312_500_000).unwrap(), Amount::from_sat(tpl).unwrap()).unwrap();
        let p = pps(fv, &shares, &fees).unwrap();
        prop_assert!(p.check_conservation());
    }

    #[test]
    fn pplns_window_is_exact(shares in shares(), n in 1u64..4, nd in 1u64..3_000_000) {
        // With no fee, a window smaller than the history is fully counted: the credited
        // weight equals the window, so each miner gets floor(value × w / window).
        let total: u64 = shares.iter().map(|s| s.difficulty).sum();
        let window = n * nd;
        let v = Amount::from_sat(5_000_000_000).unwrap();
        let d = pplns(v, &shares, n, nd, &FeeConfig::default()).unwrap();
        prop_assert!(d.check_conservation());
        if total >= window {
            let mut acc = 0u64;
            let mut want: BTreeMap<String, u64> = BTreeMap::new();
            for s in shares.iter().rev() {
                let w = s.difficulty.min(window - acc);
                acc += w;
                *want.entry(s.worker.clone()).or_default() += w;
                if acc == window { break; }
            }
            for (m, w) in want {
                let expect = (u128::from(v.to_sat()) * u128::from(w) / u128::from(window)) as u64;
                prop_assert_eq!(d.credits.get(&m).map_or(0, |a| a.to_sat()), expect);
            }
        }
    }

    #[test]
    fn coinbase_split_conserves(shares in shares(), fees in fees(), thr in 0u64..3_000_000_000) {
        let keys: Vec<String> = (0..8).map(|i| {
            let spk = ScriptBuf::new_p2wpkh(&[i as u8 + 1; 20]);
            btq_core::Address::from_script(&spk, Network::Regtest).unwrap().to_string()
        }).collect();
        let shares: Vec<Share> = shares.into_iter().map(|mut s| {
            let i: usize = s.worker[1..].parse().unwrap();
            if i < 6 { s.worker = keys[i].clone(); }
            s
        }).collect();
        let v = Amount::from_sat(5_000_000_000).unwrap();
        let d = prop(v, &shares, &fees).unwrap();
        let pool = ScriptBuf::new_p2wpkh(&[0xaa; 20]);
        let cfg = CoinbasePayoutConfig { threshold: Amount::from_sat(thr).unwrap(), max_outputs: 4, network: Network::Regtest };
        let s = split_coinbase(&d, &pool, &cfg).unwrap();
        let direct: u64 = s.direct.iter().map(|(_, o)| o.value).sum();
        prop_assert_eq!(direct + s.pool_output.value, v.to_sat());
        let ledger: u64 = s.ledger_credits.values().map(|a| a.to_sat()).sum();
        prop_assert_eq!(ledger + direct, v.to_sat());
        prop_assert!(s.direct.len() <= 4);
        prop_assert!(s.direct.iter().all(|(_, o)| o.value >= thr));
    }
}

#[test]
fn taproot_miner_not_paid_in_coinbase() {
    let tr = ScriptBuf::new_witness_program(1, &[5; 32]);
    let addr = btq_core::Address::from_script(&tr, Network::Regtest)
        .unwrap()
        .to_string();
    let sh = vec![Share {
        worker: addr,
        difficulty: 1,
        network_difficulty: 1,
        time: 0,
    }];
    let d = prop(Amount::ONE_BTQ, &sh, &FeeConfig::default()).unwrap();
    let cfg = CoinbasePayoutConfig {
        threshold: Amount::ZERO,
        max_outputs: 4,
        network: Network::Regtest,
    };
    let s = split_coinbase(&d, &ScriptBuf::new_p2wpkh(&[1; 20]), &cfg).unwrap();
    assert!(s.direct.is_empty());
    assert_eq!(s.refused.len(), 1);
    assert!(s.refused[0].to_string().contains("Taproot"));
    assert_eq!(s.pool_output.value, Amount::ONE_BTQ.to_sat());
}
