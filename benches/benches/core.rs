//! btq-core benchmarks: decoding and hashing a 90-input Lithium consolidation, BIP143 sighash
//! for all its inputs, ML-DSA-44 sign and verify, and block header sha256d.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark harness"
)]

use btq_core::block::BlockHeader;
use btq_core::encoding;
use btq_core::lithium::Keypair;
use btq_core::sighash::SighashCache;
use btq_core::{Network, Transaction};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const CONSOLIDATION: &str = include_str!("../../../shared/vectors/btqd_consolidation_n90.json");

fn consolidation() -> (Vec<u8>, Transaction) {
    let v: serde_json::Value = serde_json::from_str(CONSOLIDATION).unwrap();
    let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
    let tx = encoding::decode_from_slice(&bytes).unwrap();
    (bytes, tx)
}

fn tx_benches(c: &mut Criterion) {
    let (bytes, tx) = consolidation();
    let mut g = c.benchmark_group("consolidation_90_inputs");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| encoding::decode_from_slice::<Transaction>(black_box(&bytes)).unwrap());
    });
    g.bench_function("txid", |b| b.iter(|| black_box(&tx).txid()));
    g.bench_function("wtxid", |b| b.iter(|| black_box(&tx).wtxid()));
    g.throughput(Throughput::Elements(90));
    g.bench_function("bip143_sighash_all_inputs", |b| {
        b.iter(|| {
            let cache = SighashCache::new(black_box(&tx));
            for i in 0..tx.input.len() {
                let pk = &tx.input[i].witness.items()[1];
                let h160 = btq_core::hash::hash160(pk);
                black_box(
                    cache
                        .p2wpkh_lithium_sighash(i, &h160, 500_000_000, 1)
                        .unwrap(),
                );
            }
        });
    });
    g.finish();
}

fn mldsa_benches(c: &mut Criterion) {
    let kp = Keypair::from_seed(&[7u8; 32]);
    let msg = [0x42u8; 32];
    let sig = kp.sign(&msg);
    let mut g = c.benchmark_group("ml_dsa_44");
    g.bench_function("keygen_from_seed", |b| {
        b.iter(|| Keypair::from_seed(black_box(&[7u8; 32])));
    });
    // Signing time depends on the message (rejection sampling): average over many messages.
    let mut n = 0u64;
    g.bench_function("sign_deterministic", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let mut m = [0u8; 32];
            m[..8].copy_from_slice(&n.to_le_bytes());
            kp.sign(black_box(&m))
        });
    });
    g.bench_function("sign_hedged", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let mut m = [0u8; 32];
            m[..8].copy_from_slice(&n.to_le_bytes());
            kp.sign_hedged(black_box(&m), &[0x55; 32])
        });
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            assert!(btq_core::lithium::verify(
                kp.public_key().as_bytes(),
                black_box(&msg),
                sig.as_bytes()
            ));
        });
    });
    g.throughput(Throughput::Elements(90));
    g.bench_function("sign_many_90_parallel", |b| {
        b.iter_batched(
            || (0..90u8).map(|i| (&kp, [i; 32])).collect::<Vec<_>>(),
            |jobs| btq_core::lithium::sign_many(&jobs),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn header_benches(c: &mut Criterion) {
    let header: BlockHeader = Network::Bitcoin.params().genesis_block().header;
    let bytes = header.to_bytes();
    let mut g = c.benchmark_group("header");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sha256d_80_bytes", |b| {
        b.iter(|| btq_core::hash::sha256d(black_box(&bytes)));
    });
    g.bench_function("block_hash_from_header", |b| {
        b.iter(|| black_box(&header).block_hash());
    });
    g.finish();
}

criterion_group!(benches, tx_benches, mldsa_benches, header_benches);
criterion_main!(benches);
