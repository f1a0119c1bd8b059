//! Chain parameters of the four BTQ networks (`src/kernel/chainparams.cpp`), with their genesis
//! blocks built in and checked against the node's hashes.

use core::fmt;
use core::str::FromStr;
use std::sync::OnceLock;

use crate::amount::{Amount, COIN};
use crate::block::{Block, BlockHeader};
use crate::hash::{BlockHash, TxMerkleNode};
use crate::pow::{CompactTarget, POW_LIMIT, Target};
use crate::script::{Builder, ScriptBuf, opcodes};
use crate::tx::{OutPoint, Transaction, TxIn, TxOut, Witness};

/// A BTQ network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Network {
    /// Mainnet (`-chain=main`).
    Bitcoin,
    /// Testnet (`-chain=test`).
    Testnet,
    /// Signet (`-chain=signet`; the default challenge is empty, see btq-protocol.md §1).
    Signet,
    /// Regtest (`-chain=regtest`).
    Regtest,
}

/// All networks.
pub const NETWORKS: [Network; 4] = [
    Network::Bitcoin,
    Network::Testnet,
    Network::Signet,
    Network::Regtest,
];

/// An unknown network name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network {0:?}: expected main, test, signet or regtest")]
pub struct UnknownNetworkError(pub String);

impl Network {
    /// Returns the node's chain name (`getblockchaininfo`'s `chain`).
    pub const fn chain_name(self) -> &'static str {
        match self {
            Self::Bitcoin => "main",
            Self::Testnet => "test",
            Self::Signet => "signet",
            Self::Regtest => "regtest",
        }
    }

    /// Returns the parameters.
    pub fn params(self) -> &'static ChainParams {
        static P: [OnceLock<ChainParams>; 4] = [
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
        ];
        let idx = self as usize;
        match P.get(idx) {
            Some(cell) => cell.get_or_init(|| ChainParams::build(self)),
            None => Box::leak(Box::new(ChainParams::build(self))),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.chain_name())
    }
}

impl FromStr for Network {
    type Err = UnknownNetworkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "main" | "mainnet" | "bitcoin" | "btq" => Ok(Self::Bitcoin),
            "test" | "testnet" => Ok(Self::Testnet),
            "signet" => Ok(Self::Signet),
            "regtest" => Ok(Self::Regtest),
            _ => Err(UnknownNetworkError(s.chars().take(32).collect())),
        }
    }
}

/// Consensus and address parameters of one network.
#[derive(Debug, Clone)]
pub struct ChainParams {
    /// The network.
    pub network: Network,
    /// P2P message start bytes.
    pub magic: [u8; 4],
    /// Default P2P port.
    pub p2p_port: u16,
    /// Default RPC port (regtest's 18443 is the same as bitcoind's: always make it configurable).
    pub rpc_port: u16,
    /// Base58 prefix of ECDSA P2PKH addresses.
    pub pubkey_address_prefix: u8,
    /// Base58 prefix of ECDSA P2SH addresses (not what the node renders; see
    /// `lithium_script_address_prefix`).
    pub script_address_prefix: u8,
    /// Base58 prefix of Lithium P2PKH addresses.
    pub lithium_pubkey_address_prefix: u8,
    /// Base58 prefix the node uses for every P2SH address.
    pub lithium_script_address_prefix: u8,
    /// Base58 prefix of WIF secrets.
    pub secret_key_prefix: u8,
    /// The bech32 human-readable part of chain RPC addresses.
    pub bech32_hrp: &'static str,
    /// The Lithium wallet's bech32 HRP (same scripts, other strings).
    pub lithium_bech32_hrp: &'static str,
    /// The proof-of-work limit.
    pub pow_limit: Target,
    /// Whether testnet's minimum-difficulty rule applies.
    pub allow_min_difficulty_blocks: bool,
    /// Whether difficulty never changes (regtest).
    pub no_retargeting: bool,
    /// Blocks between subsidy halvings.
    pub subsidy_halving_interval: u32,
    /// Version `ComputeBlockVersion` gives (regtest signals TESTDUMMY).
    pub default_block_version: i32,
    genesis: Block,
    genesis_hash: BlockHash,
}

/// `COINBASE_MATURITY`: blocks before a coinbase output may be spent.
pub const COINBASE_MATURITY: u32 = 100;

/// The genesis coinbase message.
pub const GENESIS_MESSAGE: &str = "BTQ genesis remine: quantum-safe launch baseline, 26/Feb/2026";

const GENESIS_PUBKEY: [u8; 65] = [
    0x04, 0x67, 0x8a, 0xfd, 0xb0, 0xfe, 0x55, 0x48, 0x27, 0x19, 0x67, 0xf1, 0xa6, 0x71, 0x30, 0xb7,
    0x10, 0x5c, 0xd6, 0xa8, 0x28, 0xe0, 0x39, 0x09, 0xa6, 0x79, 0x62, 0xe0, 0xea, 0x1f, 0x61, 0xde,
    0xb6, 0x49, 0xf6, 0xbc, 0x3f, 0x4c, 0xef, 0x38, 0xc4, 0xf3, 0x55, 0x04, 0xe5, 0x1e, 0xc1, 0x12,
    0xde, 0x5c, 0x38, 0x4d, 0xf7, 0xba, 0x0b, 0x8d, 0x57, 0x8a, 0x4c, 0x70, 0x2b, 0x6b, 0xf1, 0x1d,
    0x5f,
];

fn genesis_block(time: u32, nonce: u32, bits: u32) -> Block {
    // CreateGenesisBlock: scriptSig = 486604799 << CScriptNum(4) << message.
    let script_sig = Builder::new()
        .push_slice(&486_604_799u32.to_le_bytes())
        .push_slice(&[4])
        .push_slice(GENESIS_MESSAGE.as_bytes())
        .into_script();
    let script_pubkey = Builder::new()
        .push_slice(&GENESIS_PUBKEY)
        .push_opcode(opcodes::OP_CHECKSIG)
        .into_script();
    let coinbase = Transaction {
        version: 1,
        input: vec![TxIn {
            previous_output: OutPoint::NULL,
            script_sig,
            sequence: u32::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: 5 * COIN,
            script_pubkey,
        }],
        lock_time: 0,
    };
    let merkle_root = TxMerkleNode::from_byte_array(coinbase.txid().to_byte_array());
    Block {
        header: BlockHeader {
            version: 1,
            prev_blockhash: BlockHash::ZERO,
            merkle_root,
            time,
            bits: CompactTarget::from_consensus(bits),
            nonce,
        },
        txdata: vec![coinbase],
    }
}

impl ChainParams {
    fn build(network: Network) -> Self {
        let (magic, p2p_port, rpc_port, genesis, hrp, lhrp) = match network {
            Network::Bitcoin => (
                [0xf1, 0xb2, 0xa3, 0xd4],
                9333,
                8332,
                genesis_block(1_771_804_800, 184_980, 0x1f00_ffff),
                "qbtc",
                "dbtc",
            ),
            Network::Testnet => (
                [0x0c, 0x12, 0x0a, 0x08],
                19333,
                18332,
                genesis_block(1_771_804_800, 3, 0x207f_ffff),
                "tbtq",
                "tdbt",
            ),
            Network::Signet => (
                [0x14, 0x06, 0xe0, 0x58],
                38333,
                38332,
                genesis_block(1_771_804_800, 2_666_531, 0x1e03_77ae),
                "qtb",
                "sdbt",
            ),
            Network::Regtest => (
                [0xfa, 0xbf, 0xb5, 0xda],
                19444,
                18443,
                genesis_block(1_771_804_800, 3, 0x207f_ffff),
                "qcrt",
                "rdbt",
            ),
        };
        let main = network == Network::Bitcoin;
        let genesis_hash = genesis.block_hash();
        Self {
            network,
            magic,
            p2p_port,
            rpc_port,
            pubkey_address_prefix: if main { 75 } else { 111 },
            script_address_prefix: if main { 135 } else { 196 },
            lithium_pubkey_address_prefix: if main { 76 } else { 112 },
            lithium_script_address_prefix: if main { 136 } else { 197 },
            secret_key_prefix: if main { 235 } else { 239 },
            bech32_hrp: hrp,
            lithium_bech32_hrp: lhrp,
            pow_limit: POW_LIMIT,
            allow_min_difficulty_blocks: matches!(network, Network::Testnet | Network::Regtest),
            no_retargeting: network == Network::Regtest,
            subsidy_halving_interval: if network == Network::Regtest {
                1500
            } else {
                2_100_000
            },
            default_block_version: if network == Network::Regtest {
                0x3000_0000
            } else {
                0x2000_0000
            },
            genesis,
            genesis_hash,
        }
    }

    /// Returns the genesis block.
    pub fn genesis_block(&self) -> &Block {
        &self.genesis
    }

    /// Returns the genesis block hash.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_hash
    }

    /// Returns the block subsidy at `height`: `5 BTQ >> (height / halving interval)`, zero after
    /// 64 halvings.
    pub fn subsidy(&self, height: u32) -> Amount {
        let halvings = height / self.subsidy_halving_interval.max(1);
        if halvings >= 64 {
            return Amount::ZERO;
        }
        Amount::from_sat((5 * COIN) >> halvings).unwrap_or(Amount::ZERO)
    }
}

/// The script of the genesis output (Satoshi's key, P2PK), for reference.
pub fn genesis_output_script() -> ScriptBuf {
    Builder::new()
        .push_slice(&GENESIS_PUBKEY)
        .push_opcode(opcodes::OP_CHECKSIG)
        .into_script()
}
