//! Block decoder: never panics; whatever decodes re-encodes to the same bytes.
#![cfg_attr(fuzzing, no_main)]

use btq_core::{Block, encoding};

fn do_test(data: &[u8]) {
    if let Ok(block) = encoding::decode_from_slice::<Block>(data) {
        assert_eq!(encoding::encode_to_vec(&block), data);
        let _ = (block.check_merkle_root(), block.check_witness_commitment(), block.weight(), block.bip34_height());
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| do_test(data));

#[cfg(not(fuzzing))]
fn main() {
    do_test(&[]);
}
