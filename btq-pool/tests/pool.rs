//! The pool's mining path against the embedded regtest chain: blocks at heights 1–16 (BIP34
//! OP_1..OP_16) and above, clean_jobs, every share reject, found-block tracking, and the
//! merkle-branch property.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "test helpers"
)]

use std::sync::Arc;

use btq_core::block::Block;
use btq_core::hash;
use btq_core::pow::ShareDifficulty;
use btq_core::script::ScriptBuf;
use btq_core::time::UnixTime;
use btq_core::tx::{OutPoint, Transaction, TxIn, TxOut};
use btq_pool::{
    ChainConfig, EmbeddedChain, ExtraNonce, FoundBlockState, FoundBlockTracker, Job, JobConfig,
    JobFactory, SessionParams, ShareError, ShareValidator, StratumReject, Submit, SubmitOutcome,
    Template, TemplateTx, ValidatorConfig, assemble_block,
};
use proptest::prelude::*;

const T0: u64 = 1_800_000_000;

fn session(en1: u32, diff: f64, mask: u32) -> SessionParams {
    SessionParams::new(
        Arc::from("addr.rig"),
        ExtraNonce::from_slice(&en1.to_be_bytes()).unwrap(),
        ShareDifficulty::new(diff).unwrap(),
        mask,
    )
}

fn submit(job: &Job, en2: u64, nonce: u32) -> Submit {
    Submit {
        job_id: job.id(),
        extranonce2: ExtraNonce::from_counter(en2, 4).unwrap(),
        ntime: job.ntime(),
        nonce,
        version_bits: None,
    }
}

struct Pool {
    chain: EmbeddedChain,
    factory: JobFactory,
    validator: ShareValidator,
    now: UnixTime,
}

impl Pool {
    fn new() -> Self {
        let mut chain = EmbeddedChain::new_regtest(ChainConfig::default());
        let now = UnixTime::from_secs(T0);
        chain.set_time(now);
        Self {
            chain,
            factory: JobFactory::new(JobConfig::new(ScriptBuf::new_p2wpkh(&[5; 20]))).unwrap(),
            validator: ShareValidator::new(ValidatorConfig::default()),
            now,
        }
    }

    fn new_job(&mut self) -> Arc<Job> {
        let t = self.chain.get_block_template().unwrap();
        self.validator
            .add_job(self.factory.build(Arc::new(t)).unwrap())
    }

    /// Mines one block through a share; returns it.
    fn mine_block(&mut self) -> Block {
        self.now = UnixTime::from_secs(self.now.as_secs() + 60);
        self.chain.set_time(self.now);
        let job = self.new_job();
        let s = session(1, 0.001, 0);
        for nonce in 0.. {
            match self
                .validator
                .validate(&s, &submit(&job, 0, nonce), self.now)
            {
                Ok(a) => {
                    if let Some(c) = a.block {
                        let block = assemble_block(&c).unwrap();
                        assert_eq!(self.chain.submit_block(&block), SubmitOutcome::Accepted);
                        return block;
                    }
                }
                Err(ShareError::LowDifficulty) => {}
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!()
    }
}

#[test]
fn blocks_at_small_and_large_heights_are_accepted() {
    let mut pool = Pool::new();
    for height in 1..=20u32 {
        let block = pool.mine_block();
        let script_sig = block.txdata[0].input[0].script_sig.as_bytes().to_vec();
        if height <= 16 {
            // BIP34: heights 1–16 are the single opcodes OP_1..OP_16.
            assert_eq!(script_sig[0], 0x50 + height as u8, "height {height}");
        } else {
            assert_eq!(&script_sig[..2], &[0x01, height as u8], "height {height}");
        }
        assert!((2..=100).contains(&script_sig.len()));
        assert_eq!(block.bip34_height(), Some(height));
        assert_eq!(block.txdata[0].input[0].witness.items(), &[vec![0u8; 32]]);
        assert_eq!(pool.chain.height(), height);
    }
}

#[test]
fn clean_jobs_only_on_a_new_tip() {
    let mut pool = Pool::new();
    let j1 = pool.new_job();
    assert!(j1.clean_jobs());
    let j2 = pool.new_job();
    assert!(!j2.clean_jobs(), "same tip: no clean_jobs");
    assert!(!j2.notify_params().clean_jobs);
    // Both jobs of the same tip stay valid.
    assert!(pool.validator.job(j1.id()).is_some());
    pool.mine_block();
    let j3 = pool.new_job();
    assert!(j3.clean_jobs());
    assert!(j3.notify_params().clean_jobs);
}

#[test]
fn stale_after_new_tip_low_difficulty_and_duplicates_are_rejected() {
    let mut pool = Pool::new();
    let old = pool.new_job();
    pool.mine_block(); // new tip
    let fresh = pool.new_job(); // the pool learns the tip: a clean job
    assert!(fresh.clean_jobs());
    let s = session(2, 1e-10, 0);
    assert_eq!(
        pool.validator
            .validate(&s, &submit(&old, 0, 1), pool.now)
            .unwrap_err(),
        ShareError::StaleJob(old.id())
    );

    // High share difficulty on a chain whose target is 2^255: find a hash that misses both.
    let job = pool.new_job();
    let hard = session(3, 1e12, 0);
    let mut low = None;
    for nonce in 0..64 {
        match pool
            .validator
            .validate(&hard, &submit(&job, 0, nonce), pool.now)
        {
            Err(ShareError::LowDifficulty) => {
                low = Some(nonce);
                break;
            }
            Ok(a) => assert!(a.record.is_block, "accepted only as a block"),
            Err(e) => panic!("{e}"),
        }
    }
    let low = low.expect("half of all hashes miss the regtest target");
    let reject = StratumReject::from(&ShareError::LowDifficulty);
    assert_eq!((reject.code, reject.miner_fault), (23, true));
    // Low-difficulty shares are not remembered: the same one is low again, not duplicate.
    assert_eq!(
        pool.validator
            .validate(&hard, &submit(&job, 0, low), pool.now)
            .unwrap_err(),
        ShareError::LowDifficulty
    );

    // Duplicates: the same share twice, including with the same version bits.
    let easy = session(4, 1e-10, 0x1fff_e000);
    let mut sub = submit(&job, 9, 42);
    sub.version_bits = Some(0x0000_2000);
    let first = pool.validator.validate(&easy, &sub, pool.now);
    let first_ok = first.is_ok();
    if first_ok {
        assert_eq!(
            pool.validator.validate(&easy, &sub, pool.now).unwrap_err(),
            ShareError::Duplicate
        );
        // Other version bits make another header: not a duplicate.
        sub.version_bits = Some(0x0000_4000);
        let r = pool.validator.validate(&easy, &sub, pool.now);
        assert_ne!(r.err(), Some(ShareError::Duplicate));
    }
    assert!(first_ok, "difficulty 1e-10 accepts every hash");
    // The unknown job.
    let mut unknown = submit(&job, 0, 0);
    unknown.job_id = btq_pool::JobId::from_u64(9999);
    assert_eq!(
        pool.validator
            .validate(&easy, &unknown, pool.now)
            .unwrap_err(),
        ShareError::UnknownJob(unknown.job_id)
    );
}

#[test]
fn ntime_size_and_version_rejects() {
    let mut pool = Pool::new();
    let job = pool.new_job();
    let s = session(5, 1e-10, 0x1fff_e000);
    let mut sub = submit(&job, 1, 1);
    sub.ntime = job.ntime() - 1;
    assert!(matches!(
        pool.validator.validate(&s, &sub, pool.now),
        Err(ShareError::NtimeTooOld { .. })
    ));
    sub.ntime = (pool.now.as_secs() + 7201) as u32;
    assert!(matches!(
        pool.validator.validate(&s, &sub, pool.now),
        Err(ShareError::NtimeTooNew { .. })
    ));
    sub.ntime = (pool.now.as_secs() + 7200) as u32;
    assert!(
        pool.validator.validate(&s, &sub, pool.now).is_ok()
            || matches!(
                pool.validator.validate(&s, &sub, pool.now),
                Err(ShareError::Duplicate)
            )
    );
    // Wrong extranonce2 size, both as parsed hex and as a value.
    assert!(matches!(
        Submit::from_hex(&job.id().to_string(), "00", "00000000", "00000000", None, 4),
        Err(ShareError::Extranonce2Size {
            expected: 4,
            got: 1
        })
    ));
    let mut short = submit(&job, 1, 2);
    short.extranonce2 = ExtraNonce::from_slice(&[1, 2]).unwrap();
    assert!(matches!(
        pool.validator.validate(&s, &short, pool.now),
        Err(ShareError::Extranonce2Size { .. })
    ));
    assert!(matches!(
        Submit::from_hex("zz", "00000000", "00000000", "00000000", None, 4),
        Err(ShareError::Malformed { field: "job_id" })
    ));
    // Version bits outside the negotiated mask; BIP 310 combination inside it.
    let mut v = submit(&job, 1, 3);
    v.version_bits = Some(0x2000_0000);
    assert_eq!(
        pool.validator.validate(&s, &v, pool.now).unwrap_err(),
        ShareError::VersionBitsOutsideMask {
            bits: 0x2000_0000,
            mask: 0x1fff_e000
        }
    );
    v.version_bits = Some(0x0001_e000);
    let a = pool.validator.validate(&s, &v, pool.now).unwrap();
    if let Some(c) = a.block {
        assert_eq!(
            c.header.version as u32,
            (0x3000_0000 & !0x1fff_e000) | 0x0001_e000
        );
    }
}

#[test]
fn duplicate_set_is_bounded_per_job() {
    let mut pool = Pool::new();
    pool.validator = ShareValidator::new(ValidatorConfig {
        max_shares_per_job: 3,
        max_jobs: 2,
        ..ValidatorConfig::default()
    });
    let job = pool.new_job();
    let s = session(6, 1e-10, 0);
    let mut accepted = 0;
    let mut limit = false;
    for nonce in 0..10 {
        match pool
            .validator
            .validate(&s, &submit(&job, 0, nonce), pool.now)
        {
            Ok(_) => accepted += 1,
            Err(ShareError::JobShareLimit(_)) => limit = true,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(accepted, 3);
    assert!(limit);
    // Jobs are bounded too: the oldest is evicted and becomes unknown.
    pool.new_job();
    pool.new_job();
    assert_eq!(pool.validator.job_count(), 2);
    assert!(matches!(
        pool.validator.validate(&s, &submit(&job, 0, 20), pool.now),
        Err(ShareError::UnknownJob(_))
    ));
}

#[test]
fn found_blocks_confirm_orphan_and_mature() {
    let mut pool = Pool::new();
    let mut tracker = FoundBlockTracker::new(8);
    let b1 = pool.mine_block();
    tracker.handle_found(&b1.header, 1, 500_000_000);
    let fake = {
        let mut h = b1.header;
        h.nonce ^= 0xdead;
        h
    };
    tracker.handle_found(&fake, 1, 500_000_000);
    let events = tracker.handle_tip(pool.chain.height(), |h| pool.chain.hash_at(h));
    assert!(
        events
            .iter()
            .any(|e| e.hash == fake.block_hash() && e.state == FoundBlockState::Orphaned)
    );
    for _ in 0..99 {
        pool.mine_block();
    }
    let events = tracker.handle_tip(pool.chain.height(), |h| pool.chain.hash_at(h));
    assert!(
        events
            .iter()
            .any(|e| e.hash == b1.block_hash() && e.state == FoundBlockState::Mature),
        "{events:?}"
    );
    // The matured coinbase is in the UTXO set.
    let coin = pool
        .chain
        .utxo(&OutPoint::new(b1.txdata[0].txid(), 0))
        .unwrap();
    assert!(coin.is_coinbase);
}

fn synthetic_template(n: usize, seed: u64) -> Template {
    let transactions = (0..n)
        .map(|i| {
            let tx = Transaction {
                version: 2,
                input: vec![TxIn::new(OutPoint::new(
                    hash::Txid::from_byte_array(hash::sha256d(
                        &[seed.to_le_bytes(), (i as u64).to_le_bytes()].concat(),
                    )),
                    0,
                ))],
                output: vec![TxOut {
                    value: 1000,
                    script_pubkey: ScriptBuf::new_p2wpkh(&[1; 20]),
                }],
                lock_time: 0,
            };
            TemplateTx {
                txid: tx.txid(),
                wtxid: tx.wtxid(),
                fee: 100,
                sigops: 0,
                weight: tx.weight().to_wu(),
                depends: vec![],
                tx,
            }
        })
        .collect();
    let chain = EmbeddedChain::new_regtest(ChainConfig::default());
    let mut t = chain.get_block_template().unwrap();
    t.transactions = transactions;
    t.default_witness_commitment = None;
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Merkle branch + coinbase reconstruct the root of the full tree for any tx count.
    #[test]
    fn branch_and_coinbase_give_the_template_merkle_root(
        n in 0usize..300, seed in any::<u64>(), en1 in any::<u32>(), en2 in any::<u32>()
    ) {
        let template = synthetic_template(n, seed);
        let mut factory = JobFactory::new(JobConfig::new(ScriptBuf::new_p2wpkh(&[3; 20]))).unwrap();
        let job = factory.build(Arc::new(template.clone())).unwrap();
        let en1 = en1.to_be_bytes();
        let en2 = en2.to_be_bytes();
        let coinbase: Transaction =
            btq_core::encoding::decode_from_slice(&job.coinbase_bytes(&en1, &en2)).unwrap();
        let leaves = std::iter::once(coinbase.txid().to_byte_array())
            .chain(template.transactions.iter().map(|t| t.txid.to_byte_array()));
        let root = hash::merkle_root(leaves).unwrap();
        prop_assert_eq!(job.coinbase_txid(&en1, &en2), coinbase.txid().to_byte_array());
        prop_assert_eq!(job.merkle_root(&en1, &en2), root);
        prop_assert_eq!(job.merkle_branch().len(), (usize::BITS - n.leading_zeros()) as usize);
    }
}
