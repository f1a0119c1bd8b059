//! Consolidation of 22,000 coinbase UTXOs: plan, build, sign, and check every transaction
//! (standard, within weight, no dust, at least the minimum relay fee, every signature valid),
//! then pack them block by block within the 8,000,000 WU block weight; and the event-driven
//! loop drains the backlog one block's worth at a time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test code"
)]

use std::collections::HashSet;
use std::time::Instant;

use btq_core::lithium::Keypair;
use btq_core::policy::{check_standard, is_dust, min_relay_fee};
use btq_core::signer::verify_transaction;
use btq_core::{Amount, OutPoint, ScriptBuf, Txid, Weight};
use btq_payout::builder::{prevouts, sign_all};
use btq_payout::plan::{
    ConsolidationConfig, InFlight, InputIssue, MempoolState, pack_blocks, plan_consolidation,
};
use btq_payout::utxo::Utxo;
use rayon::prelude::*;

fn utxos(key_hash: &[u8; 20], n: u32) -> Vec<Utxo> {
    let spk = ScriptBuf::new_p2wpkh(key_hash);
    (0..n)
        .map(|i| {
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&i.to_le_bytes());
            Utxo {
                outpoint: OutPoint::new(Txid::from_byte_array(t), 0),
                value: Amount::from_sat(2_500_000 + u64::from(i) * 7).unwrap(),
                script_pubkey: spk.clone(),
                confirmations: 100 + i % 1000,
                coinbase: Some(true),
            }
        })
        .collect()
}

#[test]
fn consolidate_22000_utxos() {
    let kp = Keypair::from_seed(&[7u8; 32]);
    let h = kp.public_key().hash160();
    let dest = ScriptBuf::new_p2wpkh(&h);
    let mut set = utxos(&h, 22_000);
    // Ineligible inputs that must be reported, not spent.
    let mut t = [0xeeu8; 32];
    t[0] = 1;
    set.push(Utxo {
        outpoint: OutPoint::new(Txid::from_byte_array(t), 1),
        value: Amount::ONE_BTQ,
        script_pubkey: dest.clone(),
        confirmations: 99,
        coinbase: Some(true),
    });
    set.push(Utxo {
        outpoint: OutPoint::new(Txid::from_byte_array(t), 2),
        value: Amount::ONE_BTQ,
        script_pubkey: ScriptBuf::new_p2wpkh(&[9; 20]),
        confirmations: 500,
        coinbase: Some(true),
    });
    set.push(Utxo {
        outpoint: OutPoint::new(Txid::from_byte_array(t), 3),
        value: Amount::from_sat(200).unwrap(),
        script_pubkey: dest.clone(),
        confirmations: 500,
        coinbase: Some(true),
    });
    let cfg = ConsolidationConfig {
        feerate: 2,
        weight_budget: u64::MAX,
        ..ConsolidationConfig::default()
    };
    let t0 = Instant::now();
    let plan = plan_consolidation(&set, &h, &dest, &MempoolState::default(), &cfg).unwrap();
    let t_plan = t0.elapsed();
    assert_eq!(plan.rejected.len(), 3);
    assert!(matches!(
        plan.rejected
            .iter()
            .find(|r| r.outpoint.vout == 1)
            .unwrap()
            .issue,
        InputIssue::Immature {
            confirmations: 99,
            required: 100
        }
    ));
    assert!(matches!(
        plan.rejected
            .iter()
            .find(|r| r.outpoint.vout == 2)
            .unwrap()
            .issue,
        InputIssue::KeyMismatch
    ));
    assert!(matches!(
        plan.rejected
            .iter()
            .find(|r| r.outpoint.vout == 3)
            .unwrap()
            .issue,
        InputIssue::FeeExceedsValue { .. }
    ));
    assert_eq!(plan.txs.len(), 245);
    let n_in: usize = plan.txs.iter().map(|t| t.inputs.len()).sum();
    assert_eq!(n_in, 22_000);
    assert!(plan.txs.iter().all(|t| t.inputs.len() <= 90));

    let t1 = Instant::now();
    let txs = sign_all(&plan.txs, &kp).unwrap();
    let t_sign = t1.elapsed();

    let t2 = Instant::now();
    let mut spent = HashSet::new();
    let results: Vec<()> = txs
        .par_iter()
        .zip(plan.txs.par_iter())
        .map(|(tx, p)| {
            check_standard(tx).unwrap();
            assert!(tx.weight() <= Weight::MAX_STANDARD_TX);
            assert_eq!(tx.weight().to_wu(), p.weight);
            for o in &tx.output {
                assert!(!is_dust(o));
            }
            let in_sum: u64 = p.inputs.iter().map(|u| u.value.to_sat()).sum();
            let out_sum: u64 = tx.output.iter().map(|o| o.value).sum();
            let fee = in_sum - out_sum;
            assert_eq!(fee, p.fee.to_sat());
            assert!(fee >= min_relay_fee(tx).to_sat());
            assert_eq!(fee, tx.vsize() * 2, "fee = vsize × feerate");
            verify_transaction(tx, &prevouts(p)).unwrap();
        })
        .collect();
    assert_eq!(results.len(), 245);
    for tx in &txs {
        for i in &tx.input {
            assert!(spent.insert(i.previous_output), "double spend in the plan");
        }
    }
    let t_verify = t2.elapsed();

    // Block by block within the block weight.
    let weights: Vec<u64> = txs.iter().map(|t| t.weight().to_wu()).collect();
    let blocks = pack_blocks(&weights, Weight::MAX_BLOCK.to_wu());
    for b in &blocks {
        let w: u64 = b.iter().map(|&i| weights[i]).sum();
        assert!(w + 4_000 <= Weight::MAX_BLOCK.to_wu());
    }
    assert_eq!(blocks.len(), 13);
    assert_eq!(
        blocks[0].iter().map(|&i| txs[i].input.len()).sum::<usize>(),
        1_800
    );
    eprintln!(
        "22,000 inputs: plan {t_plan:?}, sign {t_sign:?} ({:.0} µs/signature wall), verify {t_verify:?}, {} blocks",
        t_sign.as_secs_f64() * 1e6 / 22_000.0,
        blocks.len()
    );
}

/// The event-driven loop: each new block (or mempool change) re-plans from the current UTXOs and
/// the pool's in-flight transactions; at most one block's worth is in flight at any time, and
/// the backlog drains at ~1,800 inputs per block.
#[test]
fn event_driven_drains_one_block_per_block() {
    let kp = Keypair::from_seed(&[8u8; 32]);
    let h = kp.public_key().hash160();
    let dest = ScriptBuf::new_p2wpkh(&h);
    let mut set = utxos(&h, 22_000);
    let cfg = ConsolidationConfig::default();
    let mut mempool = MempoolState::default();
    let mut blocks = 0;
    let mut fresh = 0u32;
    loop {
        // Event: a mempool change. Planning again with the same state adds nothing.
        let plan = plan_consolidation(&set, &h, &dest, &mempool, &cfg).unwrap();
        let w: u64 = plan.txs.iter().map(|t| t.weight).sum();
        assert!(w + mempool.in_flight.iter().map(|t| t.weight).sum::<u64>() <= 8_000_000 - 4_000);
        for (i, t) in plan.txs.iter().enumerate() {
            let mut id = [0xabu8; 32];
            id[..4].copy_from_slice(&(blocks as u32).to_le_bytes());
            id[4] = i as u8;
            mempool.in_flight.push(InFlight {
                txid: Txid::from_byte_array(id),
                weight: t.weight,
                spends: t.inputs.iter().map(|u| u.outpoint).collect(),
            });
        }
        let again = plan_consolidation(&set, &h, &dest, &mempool, &cfg).unwrap();
        assert!(again.txs.is_empty(), "a second event must not double-plan");
        if mempool.in_flight.is_empty() {
            break;
        }
        // Event: a block mines everything in flight.
        blocks += 1;
        let spent: HashSet<OutPoint> = mempool
            .in_flight
            .iter()
            .flat_map(|t| t.spends.clone())
            .collect();
        set.retain(|u| !spent.contains(&u.outpoint));
        for t in mempool.in_flight.drain(..) {
            fresh += 1;
            let _ = t;
        }
        assert!(blocks < 20, "backlog not draining");
    }
    assert_eq!(blocks, 13, "22,000 inputs at 1,800 per block");
    assert_eq!(fresh, 245);
    assert!(set.len() < 2, "only a lone leftover input may remain");
}
