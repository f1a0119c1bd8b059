//! Property tests: encode/decode round trips, address round trips, and target/difficulty
//! conversions (monotone, round-tripping within precision).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use btq_core::block::{Block, BlockHeader};
use btq_core::encoding::{self, Reader, write_compact_size};
use btq_core::params::NETWORKS;
use btq_core::pow::{CompactTarget, ShareDifficulty, Target, U256};
use btq_core::script::ScriptBuf;
use btq_core::{
    Address, BlockHash, OutPoint, Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness,
};
use proptest::prelude::*;

fn arb_script() -> impl Strategy<Value = ScriptBuf> {
    prop::collection::vec(any::<u8>(), 0..80).prop_map(ScriptBuf::from_bytes)
}

fn arb_txin(with_witness: bool) -> impl Strategy<Value = TxIn> {
    (
        any::<[u8; 32]>(),
        any::<u32>(),
        arb_script(),
        any::<u32>(),
        prop::collection::vec(
            prop::collection::vec(any::<u8>(), 0..40),
            if with_witness { 1..4 } else { 0..1 },
        ),
    )
        .prop_map(|(txid, vout, script_sig, sequence, w)| TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array(txid), vout),
            script_sig,
            sequence,
            witness: Witness::from_items(w),
        })
}

fn arb_tx() -> impl Strategy<Value = Transaction> {
    (
        any::<i32>(),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 1..5),
        prop::collection::vec((any::<u64>(), arb_script()), 0..5),
        any::<u32>(),
    )
        .prop_flat_map(|(version, _, witness_flags, outs, lock_time)| {
            let inputs: Vec<_> = witness_flags.iter().map(|w| arb_txin(*w).boxed()).collect();
            (Just(version), inputs, Just(outs), Just(lock_time))
        })
        .prop_map(|(version, input, outs, lock_time)| Transaction {
            version,
            input,
            output: outs
                .into_iter()
                .map(|(value, script_pubkey)| TxOut {
                    value,
                    script_pubkey,
                })
                .collect(),
            lock_time,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn transaction_round_trip(tx in arb_tx()) {
        let bytes = encoding::encode_to_vec(&tx);
        prop_assert_eq!(bytes.len(), tx.total_size());
        let back: Transaction = encoding::decode_from_slice(&bytes).unwrap();
        prop_assert_eq!(&back, &tx);
        prop_assert_eq!(back.txid(), tx.txid());
        prop_assert_eq!(tx.weight().to_wu(), 15 * tx.stripped_size() as u64 + tx.total_size() as u64);
        if !tx.has_witness() {
            prop_assert_eq!(tx.txid().to_byte_array(), tx.wtxid().to_byte_array());
        }
    }

    #[test]
    fn block_round_trip(txs in prop::collection::vec(arb_tx(), 1..4), nonce in any::<u32>(), bits in any::<u32>()) {
        let mut block = Block {
            header: BlockHeader {
                version: 0x2000_0000,
                prev_blockhash: BlockHash::from_byte_array([3; 32]),
                merkle_root: TxMerkleNode::ZERO,
                time: 1_800_000_000,
                bits: CompactTarget::from_consensus(bits),
                nonce,
            },
            txdata: txs,
        };
        block.header.merkle_root = block.compute_merkle_root().unwrap();
        let bytes = encoding::encode_to_vec(&block);
        let back: Block = encoding::decode_from_slice(&bytes).unwrap();
        prop_assert!(back.check_merkle_root());
        prop_assert_eq!(back, block);
    }

    #[test]
    fn compact_size_round_trip(n in 0u64..=encoding::MAX_SIZE) {
        let mut v = Vec::new();
        write_compact_size(&mut v, n);
        prop_assert_eq!(Reader::new(&v).compact_size().unwrap(), n);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = encoding::decode_from_slice::<Transaction>(&bytes);
        let _ = encoding::decode_from_slice::<Block>(&bytes);
    }

    #[test]
    fn address_round_trip(kind in 0u8..6, payload in any::<[u8; 32]>(), net in 0usize..4) {
        let network = NETWORKS[net];
        let h20: [u8; 20] = payload[..20].try_into().unwrap();
        let script = match kind {
            0 => ScriptBuf::new_p2wpkh(&h20),
            1 => ScriptBuf::new_p2pkh_lithium(&h20),
            2 => ScriptBuf::new_p2pkh(&h20),
            3 => ScriptBuf::new_p2sh(&h20),
            4 => ScriptBuf::new_p2mr(&payload),
            _ => ScriptBuf::new_witness_program(0, &payload),
        };
        let a = Address::from_script(&script, network).unwrap();
        let text = a.to_string();
        let back = Address::parse(&text, network).unwrap();
        prop_assert_eq!(back.script_pubkey(), &script);
        if let Some(w) = a.to_lithium_wallet_string() {
            let parsed = Address::parse(&w, network).unwrap();
            prop_assert_eq!(parsed.script_pubkey(), &script);
        }
    }

    #[test]
    fn compact_target_round_trip(mantissa in 0x8000u32..0x7f_ffff, size in 4u32..=32) {
        let bits = CompactTarget::from_consensus((size << 24) | mantissa);
        if let Ok(t) = bits.to_target() {
            prop_assert_eq!(t.to_compact().to_target().unwrap(), t);
        }
    }

    #[test]
    fn share_difficulty_monotone_and_round_trips(a in 1e-9f64..1e12, b in 1e-9f64..1e12) {
        let (da, db) = (ShareDifficulty::new(a).unwrap(), ShareDifficulty::new(b).unwrap());
        let (ta, tb) = (da.to_target(), db.to_target());
        if a < b { prop_assert!(ta >= tb); }
        if a > b { prop_assert!(ta <= tb); }
        let back = ShareDifficulty::from_target(ta).get();
        prop_assert!((back - a).abs() / a < 1e-9, "{} -> {}", a, back);
    }

    #[test]
    fn work_monotone(x in any::<[u8; 32]>(), y in any::<[u8; 32]>()) {
        let (tx, ty) = (Target::from_u256(U256::from_le_bytes(x)), Target::from_u256(U256::from_le_bytes(y)));
        if tx < ty { prop_assert!(tx.to_work() >= ty.to_work()); }
    }

    #[test]
    fn u256_div_rem_identity(x in any::<[u8; 32]>(), d in 1u64..) {
        let a = U256::from_le_bytes(x);
        let (q, r) = a.div_rem(U256::from_u64(d)).unwrap();
        prop_assert!(r < U256::from_u64(d));
        prop_assert_eq!(q.checked_mul_u64(d).unwrap().saturating_add(r), a);
    }
}
