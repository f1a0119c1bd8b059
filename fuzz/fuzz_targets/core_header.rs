//! Header decoder and proof-of-work math: never panics.
#![cfg_attr(fuzzing, no_main)]

use btq_core::block::BlockHeader;
use btq_core::encoding;
use btq_core::pow::{POW_LIMIT, ShareDifficulty};

fn do_test(data: &[u8]) {
    if let Ok(h) = encoding::decode_from_slice::<BlockHeader>(data) {
        assert_eq!(h.to_bytes().as_slice(), data);
        let _ = h.check_pow(POW_LIMIT);
        let _ = h.difficulty();
        if let Ok(t) = h.target() {
            let _ = (t.to_compact(), t.to_work(), t.difficulty());
            let d = ShareDifficulty::from_target(t);
            let _ = d.to_target();
        }
        let _ = btq_core::pow::retarget(h.bits, i64::from(h.time) - i64::from(h.nonce), POW_LIMIT);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| do_test(data));

#[cfg(not(fuzzing))]
fn main() {
    do_test(&[0; 80]);
}
