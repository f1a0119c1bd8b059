//! Share validation throughput (coinbase rebuild + merkle path + header hash + target
//! compare) on an empty template and on a 2,000-transaction template, beside the SHA-256 floor:
//! one sha256d of an 80-byte header, and the same hashing a share needs done with plain
//! sha256d calls (coinbase, merkle levels, header).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::sync::Arc;

use btq_core::hash;
use btq_core::pow::{CompactTarget, ShareDifficulty};
use btq_core::script::ScriptBuf;
use btq_core::time::UnixTime;
use btq_core::tx::{OutPoint, Transaction, TxIn, TxOut};
use btq_pool::{
    ExtraNonce, Job, JobConfig, JobFactory, SessionParams, ShareValidator, Submit, Template,
    TemplateTx, ValidatorConfig, header_bytes, sha256d_80,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const GBT_EMPTY: &str = include_str!("../../../shared/vectors/gbt-empty.json");

fn template(n: usize) -> Template {
    let mut t = Template::from_json_str(GBT_EMPTY).unwrap();
    // Mainnet-like difficulty so that shares are not blocks (regtest's target is 2^255).
    t.bits = CompactTarget::from_consensus(0x1d00_ffff);
    t.target = t.bits.to_target().unwrap();
    t.default_witness_commitment = None;
    t.transactions = (0..n)
        .map(|i| {
            let tx = Transaction {
                version: 2,
                input: vec![TxIn::new(OutPoint::new(
                    hash::Txid::from_byte_array(hash::sha256d(&(i as u64).to_le_bytes())),
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
                fee: 0,
                sigops: 0,
                weight: tx.weight().to_wu(),
                depends: vec![],
                tx,
            }
        })
        .collect();
    t
}

fn setup(n: usize) -> (ShareValidator, Arc<Job>, SessionParams) {
    let t = template(n);
    let mut f = JobFactory::new(JobConfig::new(ScriptBuf::new_p2wpkh(&[7; 20]))).unwrap();
    let mut v = ShareValidator::new(ValidatorConfig::default());
    let job = v.add_job(f.build(Arc::new(t)).unwrap());
    // A share difficulty no CPU hash meets: every share takes the full path and is rejected
    // as low difficulty after the target compare (no duplicate-set insert).
    let s = SessionParams::new(
        Arc::from("bench.worker"),
        ExtraNonce::from_slice(&[1, 2, 3, 4]).unwrap(),
        ShareDifficulty::new(1e15).unwrap(),
        0x1fff_e000,
    );
    (v, job, s)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool");
    g.throughput(Throughput::Elements(1));

    let header = [7u8; 80];
    g.bench_function("floor/sha256d_80", |b| {
        b.iter(|| sha256d_80(black_box(&header)));
    });

    for n in [0usize, 2000] {
        let (mut v, job, s) = setup(n);
        let now = UnixTime::from_secs(u64::from(job.ntime()));
        let mut nonce = 0u32;
        g.bench_function(format!("validate_share/{n}tx"), |b| {
            b.iter(|| {
                nonce = nonce.wrapping_add(1);
                let sub = Submit {
                    job_id: job.id(),
                    extranonce2: ExtraNonce::from_counter(u64::from(nonce), 4).unwrap(),
                    ntime: job.ntime(),
                    nonce,
                    version_bits: Some(0x0000_2000),
                };
                black_box(v.validate(&s, black_box(&sub), now)).ok()
            });
        });

        // The same SHA work with plain sha256d calls and no precomputation.
        let coinbase = job.coinbase_bytes(&[1, 2, 3, 4], &[0, 0, 0, 1]);
        let branch = job.merkle_branch().to_vec();
        let prev = job.prev_blockhash().to_byte_array();
        g.bench_function(format!("floor/share_sha_only/{n}tx"), |b| {
            b.iter(|| {
                let leaf = hash::sha256d(black_box(&coinbase));
                let root = branch
                    .iter()
                    .fold(leaf, |acc, s| hash::sha256d_pair(&acc, s));
                let h = header_bytes(0x3000_0000, &prev, &root, 1, 0x1d00_ffff, 5);
                sha256d_80(&h)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
