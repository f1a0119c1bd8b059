//! Known-answer tests against the BTQ node's data in `../shared/vectors` (see its README for
//! provenance): genesis blocks, the legacy sighash suite, Lithium spends (decode, ids, sizes,
//! weights, sighash preimages and digests), addresses on four networks, the node-verified block
//! and the 90-input consolidation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use btq_core::address::{self, AddressForm};
use btq_core::block::Block;
use btq_core::encoding::{self, DecodeError};
use btq_core::hash::sha256d;
use btq_core::params::{NETWORKS, Network};
use btq_core::script::{P2mrTree, ScriptBuf, ScriptType, p2mr_leaf_hash, p2mr_root_from_control};
use btq_core::sighash::{SighashCache, legacy_preimage, legacy_sighash};
use btq_core::{Address, Transaction};
use serde_json::Value;

const GENESIS: &str = include_str!("../../../shared/vectors/genesis.json");
const SIGHASH: &str = include_str!("../../../shared/vectors/sighash.json");
const TX_VECTORS: &str = include_str!("../../../shared/vectors/btq_tx_vectors.json");
const NODE_VERIFIED: &str = include_str!("../../../shared/vectors/btq_node_verified.json");
const CONSOLIDATION: &str = include_str!("../../../shared/vectors/btqd_consolidation_n90.json");
const BLOCK_FROM_TEMPLATE: &str =
    include_str!("../../../shared/vectors/btqd_block_from_template.json");

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn num(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap()
}

fn network(name: &str) -> Network {
    name.parse().unwrap()
}

/// Decodes whole and byte-by-byte truncated: every strict prefix must fail cleanly.
fn decode_tx_checked(bytes: &[u8]) -> Transaction {
    let tx: Transaction = encoding::decode_from_slice(bytes).unwrap();
    assert_eq!(encoding::encode_to_vec(&tx), bytes, "re-encoding differs");
    for cut in [0, 1, 4, 5, 6, 40, bytes.len() / 2, bytes.len() - 1] {
        if cut < bytes.len() {
            assert!(encoding::decode_from_slice::<Transaction>(&bytes[..cut]).is_err());
        }
    }
    let mut extra = bytes.to_vec();
    extra.push(0);
    assert_eq!(
        encoding::decode_from_slice::<Transaction>(&extra),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    tx
}

#[test]
fn genesis_blocks_of_all_networks() {
    let g = json(GENESIS);
    for (name, n) in g["networks"].as_object().unwrap() {
        let net = network(name);
        let params = net.params();
        let block = params.genesis_block();
        assert_eq!(
            block.header.to_bytes().to_vec(),
            h(&n["header_hex"]),
            "{name} header"
        );
        assert_eq!(block.block_hash().to_string(), s(&n["hash"]), "{name} hash");
        assert_eq!(params.genesis_hash().to_string(), s(&n["hash"]));
        assert_eq!(block.header.merkle_root.to_string(), s(&g["merkle_root"]));
        assert_eq!(block.txdata[0].txid().to_string(), s(&n["coinbase_txid"]));
        assert_eq!(block.header.time, u32::try_from(num(&n["nTime"])).unwrap());
        assert_eq!(
            block.header.nonce,
            u32::try_from(num(&n["nNonce"])).unwrap()
        );
        assert_eq!(block.header.bits.to_string(), s(&n["nBits"]));
        assert_eq!(
            block.txdata[0].output[0].value,
            num(&g["coinbase_value_sat"])
        );
        let bytes = h(&n["block_hex"]);
        assert_eq!(encoding::encode_to_vec(block), bytes, "{name} block bytes");
        let decoded: Block = encoding::decode_from_slice(&bytes).unwrap();
        assert_eq!(&decoded, block);
        assert!(decoded.check_merkle_root());
        assert!(decoded.header.check_pow(params.pow_limit), "{name} pow");
        assert!(decoded.check_witness_commitment());
    }
    // Test and regtest share one genesis.
    assert_eq!(
        Network::Testnet.params().genesis_hash(),
        Network::Regtest.params().genesis_hash()
    );
    assert!(
        (Network::Bitcoin
            .params()
            .genesis_block()
            .header
            .difficulty()
            - 1.52587890625e-05)
            .abs()
            < 1e-18
    );
}

#[test]
fn legacy_sighash_suite() {
    let cases = json(SIGHASH);
    let mut n = 0;
    for case in cases.as_array().unwrap().iter().skip(1) {
        let c = case.as_array().unwrap();
        let tx: Transaction = encoding::decode_from_slice(&h(&c[0])).unwrap();
        let script = h(&c[1]);
        let idx = usize::try_from(c[2].as_u64().unwrap()).unwrap();
        let hash_type = i32::try_from(c[3].as_i64().unwrap())
            .unwrap()
            .cast_unsigned();
        let got = legacy_sighash(&tx, idx, &script, hash_type);
        assert_eq!(got.to_string(), s(&c[4]), "case {n}: {case}");
        n += 1;
    }
    assert_eq!(n, 500);
}

fn check_spend_common(spend: &Value, prevouts: &[(u64, Vec<u8>)]) -> Transaction {
    let bytes = h(&spend["tx_hex"]);
    let tx = decode_tx_checked(&bytes);
    assert_eq!(tx.txid().to_string(), s(&spend["txid"]));
    assert_eq!(tx.wtxid().to_string(), s(&spend["wtxid"]));
    assert_eq!(tx.total_size() as u64, num(&spend["size"]));
    assert_eq!(tx.stripped_size() as u64, num(&spend["stripped_size"]));
    assert_eq!(tx.weight().to_wu(), num(&spend["weight"]));
    let vsize = spend
        .get("vsize_true")
        .or_else(|| spend.get("vsize"))
        .unwrap();
    assert_eq!(tx.vsize(), num(vsize));
    assert!(tx.check().is_ok());
    assert!(
        btq_core::policy::check_standard(&tx).is_ok(),
        "{:?}",
        btq_core::policy::check_standard(&tx)
    );
    let _ = prevouts;
    tx
}

#[test]
fn tx_vectors_spends_preimages_and_digests() {
    let v = json(TX_VECTORS);
    for (name, spend) in v["spends"].as_object().unwrap() {
        let tx = check_spend_common(spend, &[]);
        let prev = &spend["spent_output"];
        let amount = num(&prev["amount_sat"]);
        let ht = u32::try_from(num(&spend["sighash_type"])).unwrap();
        let spk = h(&prev["scriptPubKey"]);
        assert_eq!(
            tx.input[0].previous_output.txid.to_string(),
            s(&prev["txid"])
        );
        let preimage = match ScriptBuf::from_bytes(spk.clone()).script_type() {
            ScriptType::P2wpkh => {
                let code = h(&spend["script_code"]);
                SighashCache::new(&tx)
                    .bip143_preimage(0, &code, amount, ht)
                    .unwrap()
            }
            ScriptType::P2pkhLithium => legacy_preimage(&tx, 0, &spk, ht).unwrap(),
            ScriptType::P2mr => {
                let leaf = h(&v["scripts"]["p2mr_leaf_script"]);
                legacy_preimage(&tx, 0, &leaf, ht).unwrap()
            }
            other => panic!("{name}: unexpected {other:?}"),
        };
        assert_eq!(preimage, h(&spend["sighash_preimage"]), "{name} preimage");
        assert_eq!(
            sha256d(&preimage).to_vec(),
            h(&spend["sighash_msg_signed_by_mldsa"]),
            "{name} digest"
        );
    }
}

#[test]
fn tx_vectors_scripts_and_addresses_on_four_networks() {
    let v = json(TX_VECTORS);
    let pk = h(&v["key"]["pubkey"]);
    let h160: [u8; 20] = h(&v["key"]["hash160_pubkey"]).try_into().unwrap();
    assert_eq!(btq_core::hash::hash160(&pk), h160);
    let sc = &v["scripts"];
    assert_eq!(
        ScriptBuf::new_p2wpkh(&h160).as_bytes(),
        h(&sc["p2wpkh_dilithium_spk"])
    );
    assert_eq!(
        ScriptBuf::new_p2pkh_lithium(&h160).as_bytes(),
        h(&sc["p2pkh_dilithium_spk"])
    );
    assert_eq!(
        ScriptBuf::new_p2pk_lithium(&pk).as_bytes(),
        h(&sc["p2dpk_bare_spk"])
    );
    assert_eq!(
        ScriptBuf::new_p2pk_lithium(&pk).as_bytes(),
        h(&sc["p2mr_leaf_script"])
    );
    let tree = P2mrTree::single_lithium_leaf(&pk);
    assert_eq!(
        p2mr_leaf_hash(0xc0, &h(&sc["p2mr_leaf_script"])).to_vec(),
        h(&sc["p2mr_tapleaf_hash"])
    );
    assert_eq!(tree.merkle_root().to_vec(), h(&sc["p2mr_merkle_root"]));
    assert_eq!(tree.script_pubkey().as_bytes(), h(&sc["p2mr_spk"]));
    assert_eq!(tree.control_block(0).unwrap(), h(&sc["p2mr_control_block"]));
    assert_eq!(
        p2mr_root_from_control(&h(&sc["p2mr_control_block"]), &h(&sc["p2mr_leaf_script"]))
            .unwrap()
            .to_vec(),
        h(&sc["p2mr_merkle_root"])
    );

    let p2wpkh = ScriptBuf::new_p2wpkh(&h160);
    let p2pkh_l = ScriptBuf::new_p2pkh_lithium(&h160);
    let p2pkh_e = ScriptBuf::new_p2pkh(&h160);
    let p2mr = tree.script_pubkey();
    let p2sh = ScriptBuf::new_p2sh_for(p2pkh_l.as_bytes());
    for (name, a) in v["addresses"].as_object().unwrap() {
        let net = network(name);
        let get = |prefix: &str| -> &str {
            a.as_object()
                .unwrap()
                .iter()
                .find(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| s(v))
                .unwrap()
        };
        let cases = [
            (&p2wpkh, get("p2wpkh_as_shown_by_chain_rpcs")),
            (&p2pkh_l, get("p2pkh_dilithium_base58")),
            (&p2pkh_e, get("p2pkh_ecdsa_base58")),
            (&p2mr, get("p2mr_bech32m_v2")),
            (&p2sh, get("p2sh_of_p2pkh_dilithium_base58")),
        ];
        for (script, expected) in cases {
            let addr = Address::from_script(script, net).unwrap();
            assert_eq!(
                addr.to_string(),
                expected,
                "{name} {:?}",
                script.script_type()
            );
            let parsed = Address::parse(expected, net).unwrap();
            assert_eq!(parsed.script_pubkey(), script);
        }
        // The Lithium wallet form names the same script.
        let wallet = get("p2wpkh_as_shown_by_dilithium_wallet");
        assert_eq!(
            Address::from_script(&p2wpkh, net)
                .unwrap()
                .to_lithium_wallet_string()
                .unwrap(),
            wallet
        );
        let d = address::decode_any(wallet).unwrap();
        assert_eq!(d.script, p2wpkh);
        assert_eq!(d.form, AddressForm::LithiumSegwit);
        assert!(d.networks.contains(&net));
    }
    // Wrong network, bad checksum, Lithium HRP with witness v2.
    let main_addr = s(&v["addresses"]["main"]["p2mr_bech32m_v2"]);
    assert!(Address::parse(main_addr, Network::Regtest).is_err());
    let mut bad = main_addr.to_string();
    bad.pop();
    bad.push('q');
    assert!(Address::parse(&bad, Network::Bitcoin).is_err());
}

#[test]
fn node_verified_spends() {
    let v = json(NODE_VERIFIED);
    let pk = h(&v["key"]["pubkey"]);
    for spend in v["spends"].as_array().unwrap() {
        let name = s(&spend["name"]);
        let prevouts: Vec<(u64, Vec<u8>)> = spend["prevouts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (num(&p["amount_sat"]), h(&p["scriptPubKey"])))
            .collect();
        let tx = check_spend_common(spend, &prevouts);
        assert_eq!(tx.version, 2);
        for (i, p) in spend["prevouts"].as_array().unwrap().iter().enumerate() {
            assert_eq!(tx.input[i].previous_output.txid.to_string(), s(&p["txid"]));
            assert_eq!(u64::from(tx.input[i].previous_output.vout), num(&p["vout"]));
        }
        for (i, o) in spend["outputs"].as_array().unwrap().iter().enumerate() {
            assert_eq!(tx.output[i].value, num(&o["value_sat"]));
            assert_eq!(tx.output[i].script_pubkey.as_bytes(), h(&o["scriptPubKey"]));
            let addr = Address::from_script(&tx.output[i].script_pubkey, Network::Regtest).unwrap();
            assert_eq!(addr.to_string(), s(&o["address"]));
        }
        let cache = SighashCache::new(&tx);
        for input in spend["inputs"].as_array().unwrap() {
            let i = usize::try_from(num(&input["input"])).unwrap();
            let ht = u32::try_from(num(&input["sighash_type"])).unwrap();
            let code = h(&input["script_code"]);
            let preimage = match s(&input["sighash_algorithm"]) {
                "bip143" => cache.bip143_preimage(i, &code, prevouts[i].0, ht).unwrap(),
                "legacy" => legacy_preimage(&tx, i, &code, ht).unwrap(),
                other => panic!("{other}"),
            };
            assert_eq!(preimage, h(&input["sighash_preimage"]), "{name} input {i}");
            assert_eq!(sha256d(&preimage).to_vec(), h(&input["sighash_digest"]));
            let mut sig_item = h(&input["mldsa44_signature"]);
            sig_item.push(u8::try_from(ht).unwrap());
            let items = tx.input[i].witness.items();
            match s(&input["kind"]) {
                "p2wpkh" => {
                    assert_eq!(items, &[sig_item, pk.clone()][..]);
                }
                "p2mr" => {
                    assert_eq!(items.len(), 3);
                    assert_eq!(items[0], sig_item);
                    assert_eq!(items[1], ScriptBuf::new_p2pk_lithium(&pk).as_bytes());
                    assert_eq!(items[2], vec![0xc1]);
                }
                "p2pkh" => {
                    let expected = btq_core::script::Builder::new()
                        .push_slice(&sig_item)
                        .push_slice(&pk)
                        .into_script();
                    assert_eq!(tx.input[i].script_sig, expected);
                    assert!(items.is_empty());
                }
                other => panic!("{other}"),
            }
        }
    }
}

#[test]
fn node_verified_block_and_coinbases() {
    let v = json(NODE_VERIFIED);
    let b = &v["block"];
    let bytes = h(&b["block_hex"]);
    let block: Block = encoding::decode_from_slice(&bytes).unwrap();
    assert_eq!(encoding::encode_to_vec(&block), bytes);
    assert_eq!(block.block_hash().to_string(), s(&b["hash"]));
    assert_eq!(block.header.to_bytes().to_vec(), h(&b["header_hex"]));
    assert_eq!(block.total_size() as u64, num(&b["size"]));
    assert_eq!(block.stripped_size() as u64, num(&b["strippedsize"]));
    assert_eq!(block.weight().to_wu(), num(&b["weight"]));
    assert_eq!(block.txdata.len() as u64, num(&b["nTx"]));
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    assert!(block.header.check_pow(Network::Regtest.params().pow_limit));
    assert_eq!(
        block.bip34_height(),
        Some(u32::try_from(num(&b["height"])).unwrap())
    );
    assert_eq!(
        block
            .compute_witness_root()
            .unwrap()
            .as_byte_array()
            .to_vec(),
        h(&b["witness_merkle_root_internal_order"])
    );
    for t in b["tx_order"].as_array().unwrap() {
        let i = usize::try_from(num(&t["index"])).unwrap();
        assert_eq!(block.txdata[i].txid().to_string(), s(&t["txid"]));
        assert_eq!(block.txdata[i].wtxid().to_string(), s(&t["wtxid"]));
    }
    // Tampering breaks the checks.
    let mut bad = block.clone();
    bad.txdata.swap(1, 2);
    assert!(!bad.check_merkle_root());
    let mut bad = block;
    bad.txdata[1].input[0].witness = btq_core::Witness::from_items(vec![vec![1]]);
    assert!(!bad.check_witness_commitment());

    for cb in v["funding"]["coinbases_spent_here"].as_array().unwrap() {
        let tx = decode_tx_checked(&h(&cb["coinbase_hex"]));
        assert!(tx.is_coinbase());
        assert_eq!(tx.txid().to_string(), s(&cb["coinbase_txid"]));
        assert_eq!(tx.wtxid().to_string(), s(&cb["coinbase_wtxid"]));
        assert!(tx.check().is_ok());
    }
}

#[test]
fn consolidation_of_90_inputs() {
    let v = json(CONSOLIDATION);
    let bytes = h(&v["hex"]);
    let tx = decode_tx_checked(&bytes);
    assert_eq!(tx.input.len() as u64, num(&v["n_inputs"]));
    assert_eq!(tx.txid().to_string(), s(&v["txid"]));
    assert_eq!(tx.wtxid().to_string(), s(&v["wtxid"]));
    assert_eq!(tx.total_size() as u64, num(&v["size"]));
    assert_eq!(tx.weight().to_wu(), num(&v["weight"]));
    assert_eq!(tx.vsize(), num(&v["vsize"]));
    assert!(tx.weight() <= btq_core::policy::MAX_STANDARD_TX_WEIGHT);
    assert!(btq_core::policy::check_standard(&tx).is_ok());
    // One more input of the same shape crosses the standard weight (the node: `tx-size`).
    let mut bigger = tx.clone();
    bigger.input.push(tx.input[0].clone());
    assert_eq!(
        btq_core::policy::check_standard(&bigger),
        Err(btq_core::policy::NonStandardError::TxSize)
    );
}

#[test]
fn block_from_template_decodes_and_validates() {
    let v = json(BLOCK_FROM_TEMPLATE);
    let bytes = h(&v["block_hex"]);
    let block: Block = encoding::decode_from_slice(&bytes).unwrap();
    assert_eq!(block.block_hash().to_string(), s(&v["block_hash"]));
    assert_eq!(block.txdata[0].txid().to_string(), s(&v["coinbase_txid"]));
    assert_eq!(block.total_size() as u64, num(&v["block_size_bytes"]));
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    assert!(block.header.check_pow(Network::Regtest.params().pow_limit));
    assert!(block.weight() <= btq_core::tx::Weight::MAX_BLOCK);
    let tmpl = &v["template"];
    let height = tmpl.get("height").and_then(Value::as_u64);
    if let Some(hgt) = height {
        assert_eq!(u64::from(block.bip34_height().unwrap()), hgt);
    }
}

#[test]
fn networks_parse_and_params() {
    for n in NETWORKS {
        assert_eq!(network(n.chain_name()), n);
    }
    assert!("mainnet2".parse::<Network>().is_err());
    let main = Network::Bitcoin.params();
    assert_eq!(main.subsidy(0).to_sat(), 500_000_000);
    assert_eq!(main.subsidy(2_099_999).to_sat(), 500_000_000);
    assert_eq!(main.subsidy(2_100_000).to_sat(), 250_000_000);
    assert_eq!(main.subsidy(64 * 2_100_000).to_sat(), 0);
    assert_eq!(
        Network::Regtest.params().subsidy(1500).to_sat(),
        250_000_000
    );
    assert_eq!(Network::Regtest.params().rpc_port, 18443);
}
