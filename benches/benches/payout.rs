//! Payout benchmarks: plan + build + sign the consolidation of 22,000 P2WPKH-Lithium UTXOs,
//! and PPLNS over a 1,000,000-share window.
//!
//! Needs in benches/Cargo.toml: `btq-payout.workspace = true` (add `features = ["fast-signer"]`
//! to measure the PQClean AVX2 signer) and a `[[bench]] name = "payout" harness = false`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::arithmetic_side_effects,
    reason = "bench code"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use btq_core::lithium::Keypair;
use btq_core::{Amount, OutPoint, ScriptBuf, Txid};
use btq_payout::plan::{ConsolidationConfig, MempoolState, plan_consolidation};
use btq_payout::reward::{FeeConfig, Share, pplns};
use btq_payout::sign_all;
use btq_payout::utxo::Utxo;
use criterion::{Criterion, criterion_group, criterion_main};

/// The AVX2 floor from the issue: 60 µs per signature, 22,000 signatures on two cores.
const FLOOR_SECS: f64 = 0.66;

fn utxos(key_hash: &[u8; 20], n: u32) -> Vec<Utxo> {
    let spk = ScriptBuf::new_p2wpkh(key_hash);
    (0..n)
        .map(|i| {
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&i.to_le_bytes());
            Utxo {
                outpoint: OutPoint::new(Txid::from_byte_array(t), 0),
                value: Amount::from_sat(2_500_000 + u64::from(i)).unwrap(),
                script_pubkey: spk.clone(),
                confirmations: 200,
                coinbase: Some(true),
            }
        })
        .collect()
}

fn consolidation(c: &mut Criterion) {
    let kp = Keypair::from_seed(&[7; 32]);
    let h = kp.public_key().hash160();
    let dest = ScriptBuf::new_p2wpkh(&h);
    let set = utxos(&h, 22_000);
    let cfg = ConsolidationConfig {
        weight_budget: u64::MAX,
        ..ConsolidationConfig::default()
    };
    // One timed run with the figures the issue asks for.
    let t = Instant::now();
    let plan = plan_consolidation(&set, &h, &dest, &MempoolState::default(), &cfg).unwrap();
    let t_plan = t.elapsed();
    let txs = sign_all(&plan.txs, &kp).unwrap();
    let total = t.elapsed().as_secs_f64();
    eprintln!(
        "consolidate 22,000 UTXOs: {} txs, plan {:?}, total {:.3} s, {:.1} µs per signature (wall, {} threads), {:.2}× the {FLOOR_SECS} s AVX2 floor",
        txs.len(),
        t_plan,
        total,
        total * 1e6 / 22_000.0,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        total / FLOOR_SECS
    );
    let mut g = c.benchmark_group("payout");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("plan_consolidation_22000", |b| {
        b.iter(|| {
            plan_consolidation(black_box(&set), &h, &dest, &MempoolState::default(), &cfg).unwrap()
        });
    });
    g.bench_function("plan_build_sign_22000", |b| {
        b.iter(|| {
            let plan =
                plan_consolidation(black_box(&set), &h, &dest, &MempoolState::default(), &cfg)
                    .unwrap();
            sign_all(&plan.txs, &kp).unwrap()
        });
    });
    g.finish();
}

fn pplns_1m(c: &mut Criterion) {
    let shares: Vec<Share> = (0..1_000_000u64)
        .map(|i| Share {
            worker: format!("miner{}", i % 5_000),
            difficulty: 1_000 + i % 977,
            network_difficulty: 1_000_000_000,
            time: i,
        })
        .collect();
    let total: u64 = shares.iter().map(|s| s.difficulty).sum();
    let fees = FeeConfig::single("operator", 150);
    let value = Amount::from_sat(312_500_000).unwrap();
    let mut g = c.benchmark_group("payout");
    g.sample_size(20);
    g.bench_function("pplns_1m_shares", |b| {
        b.iter(|| pplns(value, black_box(&shares), 1, total, &fees).unwrap());
    });
    g.finish();
}

criterion_group!(benches, pplns_1m, consolidation);
criterion_main!(benches);
