//! # btq-core
//!
//! Consensus primitives of the BTQ network, byte-compatible with the BTQ node (a Bitcoin Core v26
//! fork whose post-quantum signatures are ML-DSA-44, called "Lithium" here and "Dilithium2" in
//! the node's source).
//!
//! Everything that decodes untrusted bytes is bounded: no length read from the wire is trusted
//! before it is checked against a named BTQ limit (see [`encoding`]), and every decoder returns
//! a typed error instead of panicking.
//!
//! The modules are layered like rust-bitcoin's crates: [`amount`], [`hash`], [`encoding`],
//! [`script`], [`tx`], [`block`], [`pow`], [`params`], [`address`], [`sighash`], [`lithium`],
//! [`policy`]. Time enters as values ([`time::Timestamp`], [`time::UnixTime`]); nothing here reads
//! a clock, draws global randomness or touches the OS.
//!
//! ## Features
//! - `std` (default): standard library support.
//! - `parallel`: sign many inputs in parallel with rayon ([`lithium::sign_many`]).
//! - `serde`: serde support for hashes, amounts and networks.
//!
//! ## Example
//! ```
//! use btq_core::{params::Network, block::Block, encoding};
//! let params = Network::Bitcoin.params();
//! let genesis: &Block = params.genesis_block();
//! let bytes = encoding::encode_to_vec(genesis);
//! let back: Block = encoding::decode_from_slice(&bytes)?;
//! assert_eq!(back.block_hash(), params.genesis_hash());
//! assert_eq!(
//!     back.block_hash().to_string(),
//!     "0000ca45ea08433961609b50cd0c3f76d14589f8f61973ebbc344c3a160f7cdd"
//! );
//! # Ok::<_, btq_core::encoding::DecodeError>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(fuzzing, allow(missing_docs))]
#![doc(test(attr(warn(unused))))]

pub mod address;
pub mod amount;
pub mod block;
pub mod encoding;
pub mod hash;
pub mod hex;
pub mod lithium;
pub mod params;
pub mod policy;
pub mod pow;
pub mod script;
pub mod sighash;
pub mod signer;
pub mod time;
pub mod tx;

pub use bitcoin_hashes;

pub use crate::address::Address;
pub use crate::amount::Amount;
pub use crate::block::{Block, BlockHeader};
pub use crate::hash::{BlockHash, TxMerkleNode, Txid, WitnessMerkleNode, Wtxid};
pub use crate::params::{ChainParams, Network};
pub use crate::script::{Script, ScriptBuf};
pub use crate::tx::{OutPoint, Transaction, TxIn, TxOut, Weight, Witness};
