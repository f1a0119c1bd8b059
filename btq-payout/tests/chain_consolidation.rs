//! Consolidation against btq-pool's embedded chain: the pool key holds thousands of mature
//! P2WPKH-Lithium coinbase outputs (101 mined by real blocks paying the key, the rest imported
//! as coinbase outputs at height 1). The event-driven loop plans from the chain's UTXO set and
//! the pool's transactions still in the mempool, signs, submits every transaction to the
//! chain's mempool (which checks standardness, the minimum relay fee and every ML-DSA-44
//! signature with `LithiumVerifier`), and mines a block from the chain's template, until the
//! backlog is gone. Every block is accepted (signatures checked again), stays within
//! 8,000,000 WU, and the value moved is exactly the inputs minus the fees.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use btq_core::block::Block;
use btq_core::lithium::Keypair;
use btq_core::pow::ShareDifficulty;
use btq_core::time::UnixTime;
use btq_core::{Amount, OutPoint, ScriptBuf, Txid, Weight};
use btq_payout::plan::{
    ConsolidationConfig, InFlight, InputIssue, MempoolState, plan_consolidation,
};
use btq_payout::sign_all;
use btq_payout::utxo::Utxo;
use btq_pool::{
    COINBASE_WEIGHT_RESERVE, ChainConfig, Coin, EmbeddedChain, ExtraNonce, JobConfig, JobFactory,
    SessionParams, ShareValidator, Submit, SubmitOutcome, ValidatorConfig, assemble_block,
};

/// Coinbase outputs imported for the pool key, on top of the 101 it mines: 5,401 inputs, three
/// blocks' worth and more (the full 22,000 runs in the ignored test below).
const IMPORTED: u32 = 5_300;
/// Blocks mined to the pool key before consolidating (then 100 more to someone else, so all are
/// mature).
const MINED_TO_KEY: u32 = 101;

/// Mines the chain's next block (regtest target: a couple of hashes) paying `payout`.
fn mine(chain: &mut EmbeddedChain, payout: &ScriptBuf) -> Block {
    let template = Arc::new(chain.get_block_template().unwrap());
    let mut factory = JobFactory::new(JobConfig::new(payout.clone())).unwrap();
    let mut validator = ShareValidator::new(ValidatorConfig::default());
    let job = validator.add_job(factory.build(template).unwrap());
    let session = SessionParams::new(
        Arc::from("test"),
        ExtraNonce::from_slice(&[0; 4]).unwrap(),
        ShareDifficulty::new(1e-9).unwrap(),
        0,
    );
    let now = chain.now();
    for nonce in 0.. {
        let submit = Submit {
            job_id: job.id(),
            extranonce2: ExtraNonce::from_slice(&[0; 4]).unwrap(),
            ntime: job.ntime(),
            nonce,
            version_bits: None,
        };
        // Hashes above the target are low-difficulty rejects: roll on.
        if let Ok(Some(c)) = validator.validate(&session, &submit, now).map(|a| a.block) {
            let block = assemble_block(&c).unwrap();
            assert_eq!(chain.submit_block(&block), SubmitOutcome::Accepted);
            return block;
        }
    }
    unreachable!()
}

fn pool_utxos(chain: &EmbeddedChain, script: &ScriptBuf) -> Vec<Utxo> {
    let tip = chain.height();
    chain
        .utxos_for(script)
        .into_iter()
        .map(|(outpoint, c)| Utxo {
            outpoint,
            value: Amount::from_sat(c.value).unwrap(),
            script_pubkey: c.script_pubkey,
            confirmations: tip + 1 - c.height,
            coinbase: Some(c.is_coinbase),
        })
        .collect()
}

#[test]
fn embedded_chain_mines_the_consolidation_block_by_block() {
    consolidate_on_chain(IMPORTED);
}

/// The incident's 22,000 outputs (245 transactions, 13 blocks; 85 s in the test profile on 2 cores):
/// `cargo test -p btq-payout --test chain_consolidation -- --ignored`.
#[test]
#[ignore = "slow: 22,000 signatures, each verified twice by the chain"]
fn embedded_chain_mines_22000_inputs_block_by_block() {
    consolidate_on_chain(22_000 - MINED_TO_KEY);
}

fn consolidate_on_chain(imported: u32) {
    let t0 = Instant::now();
    let kp = Keypair::from_seed(&[0x5a; 32]);
    let key_hash = kp.public_key().hash160();
    let hot = ScriptBuf::new_p2wpkh(&key_hash);
    // The consolidation target: the pool's other P2WPKH-Lithium address.
    let dest = ScriptBuf::new_p2wpkh(&Keypair::from_seed(&[0x5b; 32]).public_key().hash160());
    let miner = ScriptBuf::new_p2wpkh(&[0x77; 20]);

    let mut chain = EmbeddedChain::new_regtest(ChainConfig::default());
    chain.set_time(UnixTime::from_secs(1_800_000_000));
    for _ in 0..MINED_TO_KEY {
        mine(&mut chain, &hot);
    }
    // 100 more blocks so that every coinbase paying the key is mature.
    for _ in 0..100 {
        mine(&mut chain, &miner);
    }
    for i in 0..imported {
        let mut t = [0xc0u8; 32];
        t[..4].copy_from_slice(&i.to_le_bytes());
        chain.import_utxo(
            OutPoint::new(Txid::from_byte_array(t), 0),
            Coin {
                value: 2_500_000 + u64::from(i) * 7,
                script_pubkey: hot.clone(),
                height: 1,
                is_coinbase: true,
            },
        );
    }
    let initial = pool_utxos(&chain, &hot);
    assert_eq!(initial.len(), (imported + MINED_TO_KEY) as usize);
    let initial_value: u64 = initial.iter().map(|u| u.value.to_sat()).sum();
    let setup = t0.elapsed();

    let cfg = ConsolidationConfig::default();
    let mut mempool = MempoolState::default();
    let (mut blocks, mut txs_total, mut inputs_total, mut fees) = (0u32, 0usize, 0usize, 0u64);
    let mut max_block_weight = 0u64;
    let (mut sign_time, mut chain_time) = (Duration::ZERO, Duration::ZERO);
    loop {
        // Event: a new block. Plan from the chain's UTXOs and the pool's unconfirmed spends.
        let utxos = pool_utxos(&chain, &hot);
        let plan = plan_consolidation(&utxos, &key_hash, &dest, &mempool, &cfg).unwrap();
        assert!(
            plan.rejected
                .iter()
                .all(|r| matches!(r.issue, InputIssue::InFlight(_))),
            "{:?}",
            plan.rejected.first()
        );
        let in_flight_weight: u64 = mempool.in_flight.iter().map(|t| t.weight).sum();
        let planned_weight: u64 = plan.txs.iter().map(|t| t.weight).sum();
        assert!(in_flight_weight + planned_weight <= cfg.weight_budget);
        let t = Instant::now();
        let signed = sign_all(&plan.txs, &kp).unwrap();
        sign_time += t.elapsed();
        let t = Instant::now();
        for (tx, p) in signed.into_iter().zip(&plan.txs) {
            assert_eq!(tx.weight().to_wu(), p.weight);
            assert!(tx.weight() <= Weight::MAX_STANDARD_TX);
            fees += p.fee.to_sat();
            inputs_total += tx.input.len();
            let spends = tx.input.iter().map(|i| i.previous_output).collect();
            let txid = chain.accept_transaction(tx).unwrap();
            mempool.in_flight.push(InFlight {
                txid,
                weight: p.weight,
                spends,
            });
            txs_total += 1;
        }
        if chain.mempool_len() == 0 {
            break;
        }
        let template = chain.get_block_template().unwrap();
        let template_weight: u64 = template.transactions.iter().map(|t| t.weight).sum();
        assert!(
            template_weight <= ChainConfig::default().block_max_weight - COINBASE_WEIGHT_RESERVE
        );
        let block = mine(&mut chain, &miner);
        chain_time += t.elapsed();
        blocks += 1;
        let w = block.weight();
        assert!(w <= Weight::MAX_BLOCK, "block weight {w:?}");
        assert_eq!(block.txdata.len(), template.transactions.len() + 1);
        max_block_weight = max_block_weight.max(w.to_wu());
        // Confirmed transactions leave the in-flight set.
        let confirmed: HashSet<Txid> = block.txdata.iter().map(|t| t.txid()).collect();
        mempool.in_flight.retain(|t| !confirmed.contains(&t.txid));
        assert!(blocks <= 20, "backlog not draining");
    }

    // Drained: at most one lone input is left (a transaction needs two), nothing in flight.
    let left = pool_utxos(&chain, &hot);
    assert!(left.len() <= 1, "{} inputs left", left.len());
    assert!(mempool.in_flight.is_empty());
    assert_eq!(inputs_total + left.len(), initial.len());
    let moved: u64 = chain.utxos_for(&dest).iter().map(|(_, c)| c.value).sum();
    let left_value: u64 = left.iter().map(|u| u.value.to_sat()).sum();
    assert_eq!(moved + fees + left_value, initial_value, "value conserved");
    assert_eq!(chain.utxos_for(&dest).len(), txs_total);
    // About 1,700 inputs a block at the node's 7,600,000 WU template budget.
    let expected_blocks = (initial.len() as u32).div_ceil(1_700);
    assert!(blocks <= expected_blocks + 1, "{blocks} blocks");
    eprintln!(
        "{} inputs in {txs_total} transactions mined in {blocks} blocks (largest {max_block_weight} WU): setup {setup:?}, signing {sign_time:?}, mempool + blocks {chain_time:?}, total {:?}",
        initial.len(),
        t0.elapsed()
    );
}
