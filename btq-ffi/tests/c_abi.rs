//! The C ABI called from Rust: status codes, the last-error message, buffers and handles.
#![allow(unsafe_code, reason = "calls the extern \"C\" functions under test")]
#![allow(
    clippy::undocumented_unsafe_blocks,
    reason = "test code: every pointer is local"
)]
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::ffi::{CStr, c_char};
use std::ptr;

use btq_ffi::api::Tx;
use btq_ffi::c_abi::*;
use btq_index::{Indexer, RedbStore, Store};

fn last_error() -> String {
    let mut need = 0usize;
    assert_eq!(
        unsafe { btq_last_error_message(ptr::null_mut(), 0, &raw mut need) },
        BTQ_OK
    );
    let mut buf = vec![0u8; need];
    assert_eq!(
        unsafe { btq_last_error_message(buf.as_mut_ptr().cast(), need, &raw mut need) },
        BTQ_OK
    );
    CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

fn buffer_str(b: &BtqBuffer) -> String {
    let s = unsafe { std::slice::from_raw_parts(b.data, b.len) };
    String::from_utf8(s.to_vec()).unwrap()
}

fn c(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap()
}

#[test]
fn errors_set_status_and_thread_local_message() {
    let mut tx: *mut Tx = ptr::null_mut();
    let hex = c("zz");
    assert_eq!(
        unsafe { btq_tx_decode_hex(hex.as_ptr(), &raw mut tx) },
        BTQ_ERR_DECODE
    );
    assert!(tx.is_null());
    assert!(last_error().starts_with("decode error"));
    // Another thread has its own (empty) last error.
    std::thread::spawn(|| assert_eq!(last_error(), ""))
        .join()
        .unwrap();
    // A too-small buffer is refused and leaves the message in place.
    let mut small = [0 as c_char; 4];
    let mut need = 0usize;
    assert_eq!(
        unsafe { btq_last_error_message(small.as_mut_ptr(), small.len(), &raw mut need) },
        BTQ_ERR_BUFFER_TOO_SMALL
    );
    assert!(need > 4);
    assert!(last_error().starts_with("decode error"));
    // NULL arguments.
    assert_eq!(
        unsafe { btq_tx_decode(ptr::null(), 3, &raw mut tx) },
        BTQ_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { btq_tx_decode_hex(ptr::null(), &raw mut tx) },
        BTQ_ERR_INVALID_ARGUMENT
    );
    let mut w = 0u64;
    assert_eq!(
        unsafe { btq_tx_weight(ptr::null(), &raw mut w) },
        BTQ_ERR_INVALID_ARGUMENT
    );
    // Invalid UTF-8.
    let bad = [0xffu8, 0];
    assert_eq!(
        unsafe { btq_tx_decode_hex(bad.as_ptr().cast(), &raw mut tx) },
        BTQ_ERR_INVALID_ARGUMENT
    );
    // Frees accept NULL.
    unsafe {
        btq_tx_free(ptr::null_mut());
        btq_buffer_free(ptr::null_mut());
    }
}

#[test]
fn buffers_and_caller_owned_strings() {
    let mut b = BtqBuffer {
        data: ptr::null_mut(),
        len: 0,
        capacity: 0,
    };
    assert_eq!(unsafe { btq_version(&raw mut b) }, BTQ_OK);
    assert_eq!(buffer_str(&b), env!("CARGO_PKG_VERSION"));
    unsafe { btq_buffer_free(&raw mut b) };
    assert!(b.data.is_null() && b.len == 0);

    let genesis = btq_core::encoding::encode_to_vec(
        &btq_core::params::Network::Regtest
            .params()
            .genesis_block()
            .txdata[0],
    );
    let mut tx: *mut Tx = ptr::null_mut();
    assert_eq!(
        unsafe { btq_tx_decode(genesis.as_ptr(), genesis.len(), &raw mut tx) },
        BTQ_OK
    );
    let mut need = 0usize;
    let mut small = [0 as c_char; 10];
    assert_eq!(
        unsafe { btq_tx_txid(tx, small.as_mut_ptr(), small.len(), &raw mut need) },
        BTQ_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(need, 65);
    let mut txid = [0 as c_char; 65];
    assert_eq!(
        unsafe { btq_tx_txid(tx, txid.as_mut_ptr(), txid.len(), &raw mut need) },
        BTQ_OK
    );
    let s = unsafe { CStr::from_ptr(txid.as_ptr()) }.to_str().unwrap();
    assert_eq!(
        s,
        btq_core::params::Network::Regtest
            .params()
            .genesis_block()
            .txdata[0]
            .txid()
            .to_string()
    );
    unsafe { btq_tx_free(tx) };
}

#[test]
fn index_queries_on_a_store_with_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        let g = btq_core::params::Network::Regtest.params().genesis_block();
        let cs = Indexer::default()
            .apply_block(&store.snapshot().unwrap(), g)
            .unwrap();
        store.commit(&cs).unwrap();
    }
    let p = c(path.to_str().unwrap());
    let mut idx = ptr::null_mut();
    assert_eq!(unsafe { btq_index_open(p.as_ptr(), &raw mut idx) }, BTQ_OK);
    let mut b = BtqBuffer {
        data: ptr::null_mut(),
        len: 0,
        capacity: 0,
    };
    assert_eq!(unsafe { btq_index_tip(idx, &raw mut b) }, BTQ_OK);
    let tip: serde_json::Value = serde_json::from_str(&buffer_str(&b)).unwrap();
    assert_eq!(tip["height"], 0);
    unsafe { btq_buffer_free(&raw mut b) };
    let bad = c("bad");
    let net = c("regtest");
    assert_eq!(
        unsafe { btq_index_balance(idx, bad.as_ptr(), net.as_ptr(), &raw mut b) },
        BTQ_ERR_ADDRESS
    );
    unsafe { btq_index_free(idx) };
}
