//! Script parsing and classification: never panics.
#![cfg_attr(fuzzing, no_main)]

use btq_core::script::{self, ScriptBuf};

fn do_test(data: &[u8]) {
    let s = ScriptBuf::from_bytes(data.to_vec());
    let _ = s.script_type();
    let _ = s.is_push_only();
    let _ = s.without_codeseparators();
    let _ = script::instructions(data).count();
    for n in [btq_core::Network::Bitcoin, btq_core::Network::Regtest] {
        if let Ok(a) = btq_core::Address::from_script(&s, n) {
            let text = a.to_string();
            let back = btq_core::Address::parse(&text, n).expect("rendered addresses parse");
            assert_eq!(back.script_pubkey(), &s);
        }
    }
    if let Some((first, rest)) = data.split_first() {
        let _ = script::p2mr_root_from_control(rest, &[*first]);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| do_test(data));

#[cfg(not(fuzzing))]
fn main() {
    do_test(&[]);
}
