//! Hash newtypes: each kind of hash is its own type.
//!
//! All wrap the 32-byte output of double SHA-256 (`sha256d`), computed by `bitcoin_hashes`
//! (which uses the CPU's SHA extensions when present). `Display` and `FromStr` use the
//! byte-reversed order that the BTQ node prints.

use core::fmt;
use core::str::FromStr;

use bitcoin_hashes::{HashEngine as _, hash160, sha256, sha256d};

use crate::hex::{self, HexError};

macro_rules! hash_type {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name([u8; 32]);

        impl $name {
            /// The all-zero hash.
            pub const ZERO: Self = Self([0; 32]);

            /// Creates the hash from bytes in internal (sha256d output) order.
            pub const fn from_byte_array(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// Returns the bytes in internal order.
            pub const fn to_byte_array(self) -> [u8; 32] {
                self.0
            }

            /// Borrows the bytes in internal order.
            pub const fn as_byte_array(&self) -> &[u8; 32] {
                &self.0
            }

            /// Computes sha256d of `data`.
            pub fn hash(data: &[u8]) -> Self {
                Self(sha256d::Hash::hash(data).to_byte_array())
            }

            /// Returns the hash with its bytes reversed (display order).
            pub fn to_display_bytes(self) -> [u8; 32] {
                let mut b = self.0;
                b.reverse();
                b
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(&self.to_display_bytes()))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            /// Parses the node's display (byte-reversed) hex.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut b = hex::decode_array::<32>(s)?;
                b.reverse();
                Ok(Self(b))
            }
        }

        impl crate::encoding::Encodable for $name {
            fn consensus_encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
            fn encoded_len(&self) -> usize {
                32
            }
        }

        impl crate::encoding::Decodable for $name {
            fn consensus_decode(
                r: &mut crate::encoding::Reader<'_>,
            ) -> Result<Self, crate::encoding::DecodeError> {
                Ok(Self(r.array()?))
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

hash_type!(
    /// A transaction id: sha256d of the transaction without witness data.
    Txid
);
hash_type!(
    /// A witness transaction id: sha256d of the full serialisation.
    Wtxid
);
hash_type!(
    /// A block hash: sha256d of the 80-byte header.
    BlockHash
);
hash_type!(
    /// A node of the transaction merkle tree (the header's merkle root is one).
    TxMerkleNode
);
hash_type!(
    /// A node of the witness merkle tree.
    WitnessMerkleNode
);
hash_type!(
    /// A signature hash: the 32-byte message that a signature commits to.
    SighashDigest
);

/// Computes sha256d of `data` as bytes.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    sha256d::Hash::hash(data).to_byte_array()
}

/// Computes single SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha256::Hash::hash(data).to_byte_array()
}

/// Computes HASH160 = RIPEMD-160(SHA-256(data)).
pub fn hash160(data: &[u8]) -> [u8; 20] {
    hash160::Hash::hash(data).to_byte_array()
}

/// Computes sha256d of `a ‖ b`, the merkle node combiner.
pub fn sha256d_pair(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(a);
    buf[32..].copy_from_slice(b);
    sha256d(&buf)
}

/// Computes a BIP340-style tagged hash `sha256(sha256(tag) ‖ sha256(tag) ‖ data)`.
pub fn tagged_hash(tag: &str, data: &[&[u8]]) -> [u8; 32] {
    let t = sha256(tag.as_bytes());
    let mut e = sha256::HashEngine::default();
    e.input(&t);
    e.input(&t);
    for d in data {
        e.input(d);
    }
    sha256::Hash::from_engine(e).to_byte_array()
}

/// Computes a merkle root over 32-byte leaves, duplicating the last node on odd levels, as the
/// node does. Returns `None` for an empty list.
pub fn merkle_root(leaves: impl IntoIterator<Item = [u8; 32]>) -> Option<[u8; 32]> {
    let mut level: Vec<[u8; 32]> = leaves.into_iter().collect();
    if level.is_empty() {
        return None;
    }
    while level.len() > 1 {
        if level.len() % 2 == 1
            && let Some(last) = level.last().copied()
        {
            level.push(last);
        }
        let pairs: Vec<[u8; 64]> = level
            .chunks_exact(2)
            .map(|p| {
                let mut b = [0u8; 64];
                if let [l, r] = p {
                    b[..32].copy_from_slice(l);
                    b[32..].copy_from_slice(r);
                }
                b
            })
            .collect();
        let mut next = vec![[0u8; 32]; pairs.len()];
        sha256d::Hash::hash_64_many(&mut next, &pairs);
        level = next;
    }
    level.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_reversed() {
        let h: BlockHash = "0000ca45ea08433961609b50cd0c3f76d14589f8f61973ebbc344c3a160f7cdd"
            .parse()
            .unwrap();
        assert_eq!(h.as_byte_array()[31], 0x00);
        assert_eq!(h.as_byte_array()[0], 0xdd);
        assert_eq!(
            h.to_string(),
            "0000ca45ea08433961609b50cd0c3f76d14589f8f61973ebbc344c3a160f7cdd"
        );
    }

    #[test]
    fn merkle_matches_pairwise() {
        let a = sha256d(b"a");
        let b = sha256d(b"b");
        let c = sha256d(b"c");
        assert_eq!(merkle_root([a]), Some(a));
        let ab = sha256d_pair(&a, &b);
        let cc = sha256d_pair(&c, &c);
        assert_eq!(merkle_root([a, b, c]), Some(sha256d_pair(&ab, &cc)));
        assert_eq!(merkle_root(Vec::<[u8; 32]>::new()), None);
    }
}
