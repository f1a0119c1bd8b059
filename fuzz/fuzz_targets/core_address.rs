//! Address parsing: never panics; whatever parses renders back to a string that parses to the
//! same script.
#![cfg_attr(fuzzing, no_main)]

use btq_core::address;

fn do_test(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(d) = address::decode_any(s) {
        for n in d.networks {
            let a = btq_core::Address::from_script(&d.script, n).expect("decoded scripts render");
            let back = btq_core::Address::parse(&a.to_string(), n).expect("rendered addresses parse");
            assert_eq!(back.script_pubkey(), &d.script);
        }
    }
    let _ = btq_core::amount::Amount::from_btq_str(s);
    let _ = btq_core::hex::decode_bounded(s, 1024);
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| do_test(data));

#[cfg(not(fuzzing))]
fn main() {
    do_test(b"qbtc1qgqrqdzm3k2g6qu5ykm7nkka909xhk9tgwc0q58");
}
