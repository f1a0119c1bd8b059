//! `getblocktemplate` JSON parsing: never panics; whatever parses builds a job whose coinbase
//! parts, extranonces and merkle branch reconstruct a decodable coinbase and the full merkle root.
#![cfg_attr(fuzzing, no_main)]

use std::sync::Arc;

use btq_core::{ScriptBuf, Transaction, encoding, hash};
use btq_pool::{JobConfig, JobFactory, Template};

fn do_test(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::from_json_str(text) else {
        return;
    };
    let Ok(mut factory) = JobFactory::new(JobConfig::new(ScriptBuf::new_p2wpkh(&[1; 20]))) else {
        return;
    };
    let Ok(job) = factory.build(Arc::new(template.clone())) else {
        return;
    };
    let (en1, en2) = ([1u8, 2, 3, 4], [5u8, 6, 7, 8]);
    let bytes = job.coinbase_bytes(&en1, &en2);
    let coinbase: Transaction = encoding::decode_from_slice(&bytes).expect("coinbase decodes");
    assert_eq!(
        coinbase.txid().to_byte_array(),
        job.coinbase_txid(&en1, &en2)
    );
    let leaves = core::iter::once(coinbase.txid().to_byte_array())
        .chain(template.transactions.iter().map(|t| t.txid.to_byte_array()));
    assert_eq!(hash::merkle_root(leaves), Some(job.merkle_root(&en1, &en2)));
    let _ = job.notify_params().to_json();
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| do_test(data));

#[cfg(not(fuzzing))]
fn main() {
    do_test(include_bytes!("../../../shared/vectors/gbt-empty.json"));
    do_test(include_bytes!("../../../shared/vectors/gbt-with-2tx.json"));
    do_test(b"{}");
}
