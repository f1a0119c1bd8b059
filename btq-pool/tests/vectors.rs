//! Jobs, shares and blocks from the node's own samples (`shared/vectors`, see its README):
//! `btqd_block_from_template.json` (a node template and the block assembled from it, accepted by
//! `submitblock`), `gbt-empty.json`, `gbt-with-2tx.json` (node `getblocktemplate` output) and
//! `btq_node_verified.json` (node-accepted Lithium spends).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "test helpers"
)]

use std::sync::Arc;

use btq_core::block::{Block, BlockHeader};
use btq_core::encoding;
use btq_core::hash::{BlockHash, Txid};
use btq_core::params::Network;
use btq_core::pow::ShareDifficulty;
use btq_core::script::ScriptBuf;
use btq_core::signer::{Prevout, SpendError};
use btq_core::time::UnixTime;
use btq_core::tx::{OutPoint, Transaction};
use btq_pool::{
    ChainConfig, ChainRejectError, Coin, EmbeddedChain, ExtraNonce, JobConfig, JobFactory,
    LithiumVerifier, SessionParams, ShareValidator, SignatureVerifier, Submit, SubmitOutcome,
    Template, ValidatorConfig, assemble_block, check_block, stratum_prevhash,
};
use serde_json::Value;

const FROM_TEMPLATE: &str = include_str!("../../../shared/vectors/btqd_block_from_template.json");
const GBT_EMPTY: &str = include_str!("../../../shared/vectors/gbt-empty.json");
const GBT_2TX: &str = include_str!("../../../shared/vectors/gbt-with-2tx.json");
const NODE_VERIFIED: &str = include_str!("../../../shared/vectors/btq_node_verified.json");

fn session(en1: &[u8], diff: f64) -> SessionParams {
    SessionParams::new(
        Arc::from("tester.1"),
        ExtraNonce::from_slice(en1).unwrap(),
        ShareDifficulty::new(diff).unwrap(),
        btq_pool::DEFAULT_VERSION_MASK,
    )
}

/// Rolls nonces until the share is a block; returns the assembled block.
fn mine(
    validator: &mut ShareValidator,
    s: &SessionParams,
    job: &btq_pool::Job,
    en2: ExtraNonce,
    now: UnixTime,
) -> Block {
    for nonce in 0..10_000u32 {
        let submit = Submit {
            job_id: job.id(),
            extranonce2: en2,
            ntime: job.ntime(),
            nonce,
            version_bits: None,
        };
        match validator.validate(s, &submit, now) {
            Ok(a) => {
                if let Some(c) = a.block {
                    return assemble_block(&c).unwrap();
                }
            }
            Err(btq_pool::ShareError::LowDifficulty) => {}
            Err(e) => panic!("unexpected reject {e}"),
        }
    }
    panic!("no block found in 10,000 nonces at regtest difficulty");
}

#[test]
fn reproduces_node_accepted_block_byte_for_byte() {
    let v: Value = serde_json::from_str(FROM_TEMPLATE).unwrap();
    let template = Template::from_json_value(&v["template"]).unwrap();
    let block_hex = v["block_hex"].as_str().unwrap();
    let block_bytes = hex::decode(block_hex).unwrap();
    let node_block: Block = encoding::decode_from_slice(&block_bytes).unwrap();

    // The vector's coinbase choices: version 2, BIP34 push 02f200, one raw extranonce byte 00,
    // output 0 paying coinbasevalue to P2WPKH-Lithium, output 1 the commitment.
    let payout = node_block.txdata[0].output[0].script_pubkey.clone();
    let mut config = JobConfig::new(payout);
    config.pool_tag.clear();
    config.push_extranonce = false;
    config.extranonce1_size = 0;
    config.extranonce2_size = 1;
    config.coinbase_version = 2;
    let mut factory = JobFactory::new(config).unwrap();
    let job = factory.build(Arc::new(template.clone())).unwrap();
    assert!(job.clean_jobs());

    // The notify params in Stratum byte order.
    let n = job.notify_params();
    assert_eq!(n.version, "30000000");
    assert_eq!(n.nbits, "207fffff");
    assert_eq!(n.ntime, format!("{:08x}", template.cur_time));
    assert_eq!(
        n.prevhash,
        stratum_prevhash(&template.prev_blockhash),
        "prevhash in word order"
    );
    assert_eq!(
        btq_pool::parse_stratum_prevhash(&n.prevhash).unwrap(),
        template.prev_blockhash
    );
    assert_eq!(n.merkle_branch.len(), 1);
    assert_eq!(n.to_json().as_array().unwrap().len(), 9);

    // Submit the node block's own ntime and nonce with extranonce2 = 00.
    let header = BlockHeader::from_bytes(block_bytes[..80].try_into().unwrap());
    let mut validator = ShareValidator::new(ValidatorConfig::default());
    let job = validator.add_job(job);
    let s = session(&[], 1e-9);
    let submit = Submit::from_hex(
        &n.job_id,
        "00",
        &format!("{:08x}", header.time),
        &format!("{:08x}", header.nonce),
        None,
        job.extranonce2_size(),
    )
    .unwrap();
    let now = UnixTime::from_secs(u64::from(template.cur_time));
    let accepted = validator.validate(&s, &submit, now).unwrap();
    assert!(accepted.record.is_block);
    assert_eq!(accepted.record.hash, header.block_hash());
    assert_eq!(
        accepted.record.hash.to_string(),
        v["block_hash"].as_str().unwrap()
    );
    let block = assemble_block(&accepted.block.unwrap()).unwrap();
    assert_eq!(
        block.txdata[0].txid().to_string(),
        v["coinbase_txid"].as_str().unwrap()
    );
    assert_eq!(hex::encode(encoding::encode_to_vec(&block)), block_hex);
    check_block(&block, &template, Network::Regtest.params()).unwrap();
}

#[test]
fn node_templates_become_jobs_shares_and_accepted_blocks() {
    struct AcceptAll;
    impl SignatureVerifier for AcceptAll {
        fn verify(&self, _: &Transaction, _: &[Prevout]) -> Result<(), SpendError> {
            Ok(())
        }
    }
    for text in [GBT_EMPTY, GBT_2TX] {
        let template = Template::from_json_str(text).unwrap();
        let mut factory =
            JobFactory::new(JobConfig::new(ScriptBuf::new_p2wpkh(&[0x42; 20]))).unwrap();
        let mut validator = ShareValidator::new(ValidatorConfig::default());
        let job = validator.add_job(factory.build(Arc::new(template.clone())).unwrap());
        let now = UnixTime::from_secs(u64::from(template.cur_time));
        let s = session(&[1, 2, 3, 4], 1e-6);
        let block = mine(
            &mut validator,
            &s,
            &job,
            ExtraNonce::from_counter(7, 4).unwrap(),
            now,
        );
        check_block(&block, &template, Network::Regtest.params()).unwrap();
        assert_eq!(block.txdata.len(), template.transactions.len() + 1);

        // An embedded chain at the template's parent accepts it. This test is about assembly,
        // so the inputs of the template transactions (whose amounts the vectors do not give)
        // are seeded with the fee on input 0 and signatures are not checked here.
        let mut chain = EmbeddedChain::from_snapshot(
            ChainConfig::default(),
            Box::new(AcceptAll),
            template.prev_blockhash,
            template.height - 1,
            &[template.min_time - 1],
        );
        chain.set_time(now);
        for t in &template.transactions {
            let out: u64 = t.tx.output.iter().map(|o| o.value).sum();
            for (i, input) in t.tx.input.iter().enumerate() {
                chain.import_utxo(
                    input.previous_output,
                    Coin {
                        value: if i == 0 { out + t.fee } else { 0 },
                        script_pubkey: ScriptBuf::new_p2wpkh(&[1; 20]),
                        height: 1,
                        is_coinbase: false,
                    },
                );
            }
        }
        assert_eq!(chain.submit_block(&block), SubmitOutcome::Accepted);
        assert_eq!(chain.height(), template.height);
        assert_eq!(chain.tip_hash(), block.block_hash());
        assert_eq!(chain.submit_block(&block), SubmitOutcome::Duplicate);
    }
}

#[test]
fn node_verified_lithium_spends_are_accepted_and_mined() {
    let v: Value = serde_json::from_str(NODE_VERIFIED).unwrap();
    let tip: BlockHash = "7ea5fa2ac3eb6cd3a8d556852965d16d56b599bbe1d18f6fcaf4165febe10e5a"
        .parse()
        .unwrap();
    let mut chain = EmbeddedChain::from_snapshot(
        ChainConfig::default(),
        Box::new(LithiumVerifier),
        tip,
        400,
        &[1_795_508_000],
    );
    chain.set_time(UnixTime::from_secs(1_795_508_600));
    let mut txs = Vec::new();
    for spend in v["spends"].as_array().unwrap() {
        let tx: Transaction =
            encoding::decode_from_slice(&hex::decode(spend["tx_hex"].as_str().unwrap()).unwrap())
                .unwrap();
        for p in spend["prevouts"].as_array().unwrap() {
            let txid: Txid = p["txid"].as_str().unwrap().parse().unwrap();
            chain.import_utxo(
                OutPoint::new(txid, p["vout"].as_u64().unwrap() as u32),
                Coin {
                    value: p["amount_sat"].as_u64().unwrap(),
                    script_pubkey: ScriptBuf::from_hex(p["scriptPubKey"].as_str().unwrap())
                        .unwrap(),
                    height: 3,
                    is_coinbase: true,
                },
            );
        }
        txs.push(tx);
    }
    // A tampered signature is refused.
    let mut bad = txs[0].clone();
    if let Some(item) = bad.input[0].witness.items().first().cloned() {
        let mut item = item;
        item[10] ^= 1;
        let mut items = bad.input[0].witness.items().to_vec();
        items[0] = item;
        bad.input[0].witness = btq_core::tx::Witness::from_items(items);
    }
    assert!(matches!(
        chain.accept_transaction(bad),
        Err(ChainRejectError::Script(_))
    ));
    let mut accepted = 0;
    for tx in &txs {
        // Some vectors spend outputs of earlier vectors; those are refused by the mempool
        // (no unconfirmed parents) and skipped here.
        if chain.accept_transaction(tx.clone()).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted >= 3, "accepted {accepted} node-verified spends");
    let template = chain.get_block_template().unwrap();
    assert_eq!(template.transactions.len(), accepted);
    let mut factory = JobFactory::new(JobConfig::new(ScriptBuf::new_p2wpkh(&[9; 20]))).unwrap();
    let mut validator = ShareValidator::new(ValidatorConfig::default());
    let job = validator.add_job(factory.build(Arc::new(template.clone())).unwrap());
    let block = mine(
        &mut validator,
        &session(&[0, 0, 0, 9], 1e-6),
        &job,
        ExtraNonce::from_counter(1, 4).unwrap(),
        chain.now(),
    );
    check_block(&block, &template, Network::Regtest.params()).unwrap();
    assert_eq!(chain.submit_block(&block), SubmitOutcome::Accepted);
    assert_eq!(chain.mempool_len(), 0);
}
