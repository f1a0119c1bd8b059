//! Fuzz target: the Stratum line framer and request parser on arbitrary bytes.
//!
//! Checks: no panic; every line handed out respects the cap; every parsed request id
//! re-encodes to JSON that parses back to the same id.
#![allow(unexpected_cfgs)] // `fuzzing` is set by cargo-fuzz.
#![cfg_attr(fuzzing, no_main)]

use btq_stratum::framing::LineFramer;
use btq_stratum::message::{RequestId, parse_request};

const MAX_LINE: usize = 1024;

fn check_line(line: &[u8]) -> bool {
    assert!(line.len() <= MAX_LINE);
    if let Ok(req) = parse_request(line) {
        let mut out = Vec::new();
        req.id.write_json(&mut out);
        let text = String::from_utf8(out).expect("ids are UTF-8");
        let back = RequestId::from_json(&text).expect("an echoed id parses");
        assert_eq!(back, req.id);
    }
    true
}

fn do_test(data: &[u8]) {
    let _ = check_line(data.get(..data.len().min(MAX_LINE)).unwrap_or(&[]));
    // Whole, then split at an arbitrary point: the same lines come out.
    let mut whole = LineFramer::new(MAX_LINE);
    let mut a = Vec::new();
    let ra = whole.push(data, |l| {
        a.push(l.to_vec());
        check_line(l)
    });
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (x, y) = data.split_at(split);
    let mut parts = LineFramer::new(MAX_LINE);
    let mut b = Vec::new();
    let rb = parts.push(x, |l| {
        b.push(l.to_vec());
        true
    });
    if ra.is_ok() && rb.is_ok() {
        let rc = parts.push(y, |l| {
            b.push(l.to_vec());
            true
        });
        if rc.is_ok() {
            assert_eq!(a, b);
        }
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| do_test(data));

#[cfg(not(fuzzing))]
fn main() {
    for input in [
        &b"{\"id\":1,\"method\":\"mining.submit\",\"params\":[\"w\",\"1a\",\"00000000\",\"66000000\",\"00000000\"]}\n"[..],
        b"{\"id\":[1,{\"a\":null}],\"method\":\"x\"}\n{bad\n",
        b"\xff\xfe\n\n\r\n",
    ] {
        do_test(input);
    }
}
