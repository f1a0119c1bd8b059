//! BIP143 signature hashes for every hashtype, against the examples published in BIP143 itself
//! (native P2WPKH, and the P2SH-P2WSH 6-of-6 example with one digest per hashtype). BTQ uses
//! BIP143 unchanged for witness v0, including P2WPKH-Lithium.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use btq_core::sighash::SighashCache;
use btq_core::{Transaction, encoding};

fn tx(hex_str: &str) -> Transaction {
    encoding::decode_from_slice(&hex::decode(hex_str).unwrap()).unwrap()
}

#[test]
fn bip143_native_p2wpkh_example() {
    let t = tx(
        "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffffffef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac11000000",
    );
    let code = hex::decode("76a9141d0f172a0ecb48aee1be1f2687d2963ae33f71a188ac").unwrap();
    let d = SighashCache::new(&t)
        .bip143_sighash(1, &code, 600_000_000, 1)
        .unwrap();
    assert_eq!(
        hex::encode(d.to_byte_array()),
        "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"
    );
    assert!(
        SighashCache::new(&t)
            .bip143_sighash(2, &code, 1, 1)
            .is_err()
    );
}

#[test]
fn bip143_p2sh_p2wsh_all_hashtypes() {
    let t = tx(
        "010000000136641869ca081e70f394c6948e8af409e18b619df2ed74aa106c1ca29787b96e0100000000ffffffff0200e9a435000000001976a914389ffce9cd9ae88dcc0631e88a821ffdbe9bfe2688acc0832f05000000001976a9147480a33f950689af511e6e84c138dbbd3c3ee41588ac00000000",
    );
    let code = hex::decode("56210307b8ae49ac90a048e9b53357a2354b3334e9c8bee813ecb98e99a7e07e8c3ba32103b28f0c28bfab54554ae8c658ac5c3e0ce6e79ad336331f78c428dd43eea8449b21034b8113d703413d57761b8b9781957b8c0ac1dfe69f492580ca4195f50376ba4a21033400f6afecb833092a9a21cfdf1ed1376e58c5d1f47de74683123987e967a8f42103a6d48b1131e94ba04d9737d61acdaa1322008af9602b3b14862c07a1789aac162102d8b661b0b3302ee2f162b09e07a55ad5dfbe673a9f01d9f0c19617681024306b56ae").unwrap();
    let cache = SighashCache::new(&t);
    for (ht, expected) in [
        (
            0x01,
            "185c0be5263dce5b4bb50a047973c1b6272bfbd0103a89444597dc40b248ee7c",
        ),
        (
            0x02,
            "e9733bc60ea13c95c6527066bb975a2ff29a925e80aa14c213f686cbae5d2f36",
        ),
        (
            0x03,
            "1e1f1c303dc025bd664acb72e583e933fae4cff9148bf78c157d1e8f78530aea",
        ),
        (
            0x81,
            "2a67f03e63a6a422125878b40b82da593be8d4efaafe88ee528af6e5a9955c6e",
        ),
        (
            0x82,
            "781ba15f3779d5542ce8ecb5c18716733a5ee42a6f51488ec96154934e2c890a",
        ),
        (
            0x83,
            "511e8e52ed574121fc1b654970395502128263f62662e076dc6baf05c2e6a99b",
        ),
    ] {
        let d = cache.bip143_sighash(0, &code, 987_654_321, ht).unwrap();
        assert_eq!(
            hex::encode(d.to_byte_array()),
            expected,
            "hashtype {ht:#04x}"
        );
    }
}
