//! Transaction decoder: never panics; whatever decodes re-encodes to the same bytes.
#![cfg_attr(fuzzing, no_main)]

use btq_core::{Transaction, encoding};

fn do_test(data: &[u8]) {
    if let Ok(tx) = encoding::decode_from_slice::<Transaction>(data) {
        assert_eq!(encoding::encode_to_vec(&tx), data);
        let _ = (tx.txid(), tx.wtxid(), tx.weight(), tx.check());
        let _ = btq_core::policy::check_standard(&tx);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| do_test(data));

#[cfg(not(fuzzing))]
fn main() {
    do_test(&[]);
}
