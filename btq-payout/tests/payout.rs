//! Payout batches: exact amounts to many payees, change to the pool, Taproot refused, dust
//! refused, every transaction standard and signed; and PPLNS over 1,000,000 shares.
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

use std::time::Instant;

use btq_core::lithium::Keypair;
use btq_core::params::Network;
use btq_core::policy::{check_standard, min_relay_fee};
use btq_core::signer::verify_transaction;
use btq_core::{Address, Amount, OutPoint, ScriptBuf, Txid};
use btq_payout::builder::prevouts;
use btq_payout::plan::{DeferReason, MempoolState, Payee, PayeeError, PayoutConfig, plan_payouts};
use btq_payout::reward::{FeeConfig, Share, pplns};
use btq_payout::sign_all;
use btq_payout::utxo::Utxo;

#[test]
fn payout_batches() {
    let kp = Keypair::from_seed(&[3; 32]);
    let h = kp.public_key().hash160();
    let pool = ScriptBuf::new_p2wpkh(&h);
    let utxos: Vec<Utxo> = (0..300u32)
        .map(|i| {
            let mut t = [1u8; 32];
            t[..4].copy_from_slice(&i.to_le_bytes());
            Utxo {
                outpoint: OutPoint::new(Txid::from_byte_array(t), 0),
                value: Amount::from_sat(50_000_000).unwrap(),
                script_pubkey: pool.clone(),
                confirmations: 101,
                coinbase: Some(true),
            }
        })
        .collect();
    let addr = |i: u32| {
        let mut k = [0u8; 20];
        k[..4].copy_from_slice(&i.to_le_bytes());
        Address::from_script(&ScriptBuf::new_p2wpkh(&k), Network::Regtest)
            .unwrap()
            .to_string()
    };
    let mut payees: Vec<Payee> = (0..1200u32)
        .map(|i| Payee {
            account: format!("m{i}"),
            address: addr(i),
            amount: Amount::from_sat(1_000_000 + u64::from(i) * 13).unwrap(),
        })
        .collect();
    let taproot = Address::from_script(
        &ScriptBuf::new_witness_program(1, &[9; 32]),
        Network::Regtest,
    )
    .unwrap()
    .to_string();
    payees.push(Payee {
        account: "tr".into(),
        address: taproot,
        amount: Amount::ONE_BTQ,
    });
    payees.push(Payee {
        account: "small".into(),
        address: addr(5000),
        amount: Amount::from_sat(500).unwrap(),
    });
    payees.push(Payee {
        account: "bad".into(),
        address: "nonsense".into(),
        amount: Amount::ONE_BTQ,
    });
    let cfg = PayoutConfig {
        network: Network::Regtest,
        feerate: 3,
        ..PayoutConfig::default()
    };
    let plan = plan_payouts(&payees, &utxos, &h, &pool, &MempoolState::default(), &cfg).unwrap();
    assert!(
        plan.refused
            .iter()
            .any(|e| matches!(e, PayeeError::Taproot { account, .. } if account == "tr"))
    );
    assert!(
        plan.refused
            .iter()
            .any(|e| e.to_string().contains("not enforced by BTQ consensus"))
    );
    assert!(
        plan.refused
            .iter()
            .any(|e| matches!(e, PayeeError::Address { account, .. } if account == "bad"))
    );
    assert!(
        plan.deferred
            .contains(&("small".to_string(), DeferReason::BelowMinimum))
    );
    let paid: usize = plan.txs.iter().map(|t| t.payments.len()).sum();
    assert_eq!(paid, 1200);
    assert!(plan.txs.len() >= 3, "500 payees per transaction at most");
    let planned: Vec<_> = plan.txs.iter().map(|p| p.tx.clone()).collect();
    let txs = sign_all(&planned, &kp).unwrap();
    for (tx, p) in txs.iter().zip(&plan.txs) {
        check_standard(tx).unwrap();
        verify_transaction(tx, &prevouts(&p.tx)).unwrap();
        let fee = p.tx.fee.to_sat();
        assert!(fee >= min_relay_fee(tx).to_sat());
        assert!(fee >= tx.vsize() * 3);
        let in_sum: u64 = p.tx.inputs.iter().map(|u| u.value.to_sat()).sum();
        let pay_sum: u64 = p.payments.iter().map(|(_, a)| a.to_sat()).sum();
        assert_eq!(
            in_sum,
            pay_sum + p.change.to_sat() + fee,
            "conservation per transaction"
        );
        // Payees receive exactly their balance.
        for ((_, a), o) in p.payments.iter().zip(&tx.output) {
            assert_eq!(a.to_sat(), o.value);
        }
        if p.change.to_sat() > 0 {
            assert_eq!(tx.output.last().unwrap().script_pubkey, pool);
        }
    }
}

#[test]
fn payout_insufficient_funds_defers() {
    let kp = Keypair::from_seed(&[4; 32]);
    let h = kp.public_key().hash160();
    let pool = ScriptBuf::new_p2wpkh(&h);
    let utxos = vec![Utxo {
        outpoint: OutPoint::new(Txid::from_byte_array([2; 32]), 0),
        value: Amount::from_sat(2_000_000).unwrap(),
        script_pubkey: pool.clone(),
        confirmations: 200,
        coinbase: Some(true),
    }];
    let a = Address::from_script(&ScriptBuf::new_p2wpkh(&[5; 20]), Network::Regtest)
        .unwrap()
        .to_string();
    let payees = vec![
        Payee {
            account: "big".into(),
            address: a.clone(),
            amount: Amount::ONE_BTQ,
        },
        Payee {
            account: "ok".into(),
            address: a,
            amount: Amount::from_sat(1_500_000).unwrap(),
        },
    ];
    let cfg = PayoutConfig {
        network: Network::Regtest,
        ..PayoutConfig::default()
    };
    let plan = plan_payouts(&payees, &utxos, &h, &pool, &MempoolState::default(), &cfg).unwrap();
    assert_eq!(
        plan.deferred,
        vec![("big".to_string(), DeferReason::InsufficientFunds)]
    );
    assert_eq!(plan.txs.len(), 1);
    assert_eq!(plan.txs[0].payments[0].0, "ok");
}

#[test]
fn pplns_one_million_shares() {
    let shares: Vec<Share> = (0..1_000_000u64)
        .map(|i| Share {
            worker: format!("miner{}", i % 5_000),
            difficulty: 1_000 + i % 977,
            network_difficulty: 1_000_000_000,
            time: i,
        })
        .collect();
    let total: u64 = shares.iter().map(|s| s.difficulty).sum();
    let t = Instant::now();
    let d = pplns(
        Amount::from_sat(312_500_000).unwrap(),
        &shares,
        1,
        total - 500,
        &FeeConfig::single("op", 150),
    )
    .unwrap();
    eprintln!("PPLNS over 1,000,000 shares: {:?}", t.elapsed());
    assert!(d.check_conservation());
    assert_eq!(d.credits.len(), 5_000);
}
