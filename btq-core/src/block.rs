//! Block headers and blocks: merkle root, witness commitment, weight and size.

use crate::encoding::{
    self, Decodable, DecodeError, Encodable, MAX_SIZE, Reader, write_compact_size,
};
use crate::hash::{self, BlockHash, TxMerkleNode, WitnessMerkleNode};
use crate::pow::{CompactTarget, Target};
use crate::tx::{Transaction, Weight};

/// `MAX_BLOCK_SERIALIZED_SIZE` (8,000,000 bytes).
pub const MAX_BLOCK_SERIALIZED_SIZE: usize = 8_000_000;
/// The prefix of the witness commitment output script: `OP_RETURN` push-36 `aa21a9ed`.
pub const WITNESS_COMMITMENT_PREFIX: [u8; 6] = [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
/// `MIN_TRANSACTION_WEIGHT` (960 WU = 60 stripped bytes × 16).
pub const MIN_TRANSACTION_WEIGHT: u64 = 960;

/// The 80-byte block header (unchanged from Bitcoin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockHeader {
    /// `nVersion`.
    pub version: i32,
    /// Hash of the previous block.
    pub prev_blockhash: BlockHash,
    /// Merkle root of the transactions.
    pub merkle_root: TxMerkleNode,
    /// `nTime`, seconds since the Unix epoch.
    pub time: u32,
    /// `nBits`, the compact target.
    pub bits: CompactTarget,
    /// `nNonce`.
    pub nonce: u32,
}

impl BlockHeader {
    /// The header's serialised size.
    pub const SIZE: usize = 80;

    /// Serialises the header into its 80 bytes.
    pub fn to_bytes(&self) -> [u8; 80] {
        let mut b = [0u8; 80];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..36].copy_from_slice(self.prev_blockhash.as_byte_array());
        b[36..68].copy_from_slice(self.merkle_root.as_byte_array());
        b[68..72].copy_from_slice(&self.time.to_le_bytes());
        b[72..76].copy_from_slice(&self.bits.to_consensus().to_le_bytes());
        b[76..80].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    /// Parses the 80 header bytes.
    pub fn from_bytes(b: &[u8; 80]) -> Self {
        let mut r = Reader::new(b);
        // 80 bytes always hold a header.
        Self::consensus_decode(&mut r).unwrap_or(Self {
            version: 0,
            prev_blockhash: BlockHash::ZERO,
            merkle_root: TxMerkleNode::ZERO,
            time: 0,
            bits: CompactTarget::from_consensus(0),
            nonce: 0,
        })
    }

    /// Computes the block hash, sha256d of the header.
    pub fn block_hash(&self) -> BlockHash {
        BlockHash::hash(&self.to_bytes())
    }

    /// Returns the target expanded from `bits`.
    ///
    /// # Errors
    /// Invalid compact bits.
    pub fn target(&self) -> Result<Target, crate::pow::CompactTargetError> {
        self.bits.to_target()
    }

    /// Checks proof of work (`CheckProofOfWork`): the bits are valid and at most `pow_limit`, and
    /// the hash meets the target.
    pub fn check_pow(&self, pow_limit: Target) -> bool {
        match self.bits.to_target() {
            Ok(t) if t <= pow_limit => t.is_met_by(self.block_hash()),
            _ => false,
        }
    }

    /// Returns the node's difficulty for this header's bits.
    pub fn difficulty(&self) -> f64 {
        self.bits.difficulty()
    }
}

impl Encodable for BlockHeader {
    fn consensus_encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
    fn encoded_len(&self) -> usize {
        80
    }
}

impl Decodable for BlockHeader {
    fn consensus_decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.i32_le()?,
            prev_blockhash: BlockHash::consensus_decode(r)?,
            merkle_root: TxMerkleNode::consensus_decode(r)?,
            time: r.u32_le()?,
            bits: CompactTarget::from_consensus(r.u32_le()?),
            nonce: r.u32_le()?,
        })
    }
}

/// A block: header and transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, coinbase first.
    pub txdata: Vec<Transaction>,
}

/// Smallest serialised transaction the decoder accepts per claimed count (10 bytes overhead,
/// no inputs); keeps a claimed count bounded by the input length.
const MIN_TX_SIZE: usize = 10;

impl Encodable for Block {
    fn consensus_encode(&self, out: &mut Vec<u8>) {
        self.header.consensus_encode(out);
        write_compact_size(out, self.txdata.len() as u64);
        for tx in &self.txdata {
            tx.consensus_encode(out);
        }
    }
    fn encoded_len(&self) -> usize {
        80 + encoding::compact_size_len(self.txdata.len() as u64)
            + self
                .txdata
                .iter()
                .map(Transaction::total_size)
                .sum::<usize>()
    }
}

impl Decodable for Block {
    fn consensus_decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::consensus_decode(r)?;
        let n = r.count("transactions", MIN_TX_SIZE, MAX_SIZE)?;
        let mut txdata = Vec::with_capacity(n);
        for _ in 0..n {
            txdata.push(Transaction::consensus_decode(r)?);
        }
        Ok(Self { header, txdata })
    }
}

impl Block {
    /// Returns the block hash.
    pub fn block_hash(&self) -> BlockHash {
        self.header.block_hash()
    }

    /// Computes the merkle root of the transactions' txids, or `None` without transactions.
    pub fn compute_merkle_root(&self) -> Option<TxMerkleNode> {
        hash::merkle_root(self.txdata.iter().map(|t| t.txid().to_byte_array()))
            .map(TxMerkleNode::from_byte_array)
    }

    /// Returns true when the header's merkle root matches the transactions and the tree is not
    /// mutated (CVE-2012-2459: two identical adjacent hashes at any level).
    pub fn check_merkle_root(&self) -> bool {
        let leaves: Vec<[u8; 32]> = self
            .txdata
            .iter()
            .map(|t| t.txid().to_byte_array())
            .collect();
        if merkle_mutated(&leaves) {
            return false;
        }
        self.compute_merkle_root() == Some(self.header.merkle_root)
    }

    /// Computes the witness merkle root (the coinbase's wtxid counts as zero).
    pub fn compute_witness_root(&self) -> Option<WitnessMerkleNode> {
        hash::merkle_root(self.txdata.iter().enumerate().map(|(i, t)| {
            if i == 0 {
                [0u8; 32]
            } else {
                t.wtxid().to_byte_array()
            }
        }))
        .map(WitnessMerkleNode::from_byte_array)
    }

    /// Returns the index of the coinbase output holding the witness commitment (the last one
    /// matching, as `GetWitnessCommitmentIndex`).
    pub fn witness_commitment_index(&self) -> Option<usize> {
        let cb = self.txdata.first()?;
        cb.output.iter().rposition(|o| {
            let s = o.script_pubkey.as_bytes();
            s.len() >= 38 && s.starts_with(&WITNESS_COMMITMENT_PREFIX)
        })
    }

    /// Checks the witness commitment as `CheckWitnessMalleation` does: with a commitment, the
    /// coinbase witness must be one 32-byte item and the commitment must equal
    /// sha256d(witness root ‖ that item); without one, no transaction may carry witness data.
    pub fn check_witness_commitment(&self) -> bool {
        let Some(cb) = self.txdata.first() else {
            return false;
        };
        match self.witness_commitment_index() {
            Some(idx) => {
                let Some(out) = cb.output.get(idx) else {
                    return false;
                };
                let reserved = match cb.input.first().map(|i| i.witness.items()) {
                    Some([item]) if item.len() == 32 => item.as_slice(),
                    _ => return false,
                };
                let Some(root) = self.compute_witness_root() else {
                    return false;
                };
                let mut buf = Vec::with_capacity(64);
                buf.extend_from_slice(root.as_byte_array());
                buf.extend_from_slice(reserved);
                let commitment = hash::sha256d(&buf);
                out.script_pubkey.as_bytes().get(6..38) == Some(&commitment[..])
            }
            None => !self.txdata.iter().any(Transaction::has_witness),
        }
    }

    /// Returns the block weight (sum of transaction weights plus the header and count at 16 WU
    /// per byte).
    pub fn weight(&self) -> Weight {
        let stripped = self.stripped_size() as u64;
        let total = self.total_size() as u64;
        Weight::from_sizes(stripped, total)
    }

    /// Returns the serialised size without witness data.
    pub fn stripped_size(&self) -> usize {
        80 + encoding::compact_size_len(self.txdata.len() as u64)
            + self
                .txdata
                .iter()
                .map(Transaction::stripped_size)
                .sum::<usize>()
    }

    /// Returns the full serialised size.
    pub fn total_size(&self) -> usize {
        self.encoded_len()
    }

    /// Returns the BIP34 height in the coinbase scriptSig, if it starts with a valid push.
    pub fn bip34_height(&self) -> Option<u32> {
        let cb = self.txdata.first()?;
        let s = cb.input.first()?.script_sig.as_bytes();
        match s.first()? {
            0x00 => Some(0),
            op @ 0x51..=0x60 => Some(u32::from(op - 0x50)),
            &len @ 1..=8 => {
                let data = s.get(1..1 + usize::from(len))?;
                let mut v: i64 = 0;
                for (i, b) in data.iter().enumerate() {
                    v |= i64::from(*b) << (8 * i);
                }
                u32::try_from(v).ok()
            }
            _ => None,
        }
    }
}

/// Computes the merkle root of `leaves` (txids or wtxids, internal byte order) as the node
/// does, or `None` for no leaves or a mutated tree (CVE-2012-2459: two identical adjacent
/// hashes at any level, which the node rejects).
pub fn merkle_root_unmutated(leaves: &[[u8; 32]]) -> Option<[u8; 32]> {
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        if level.chunks_exact(2).any(|p| matches!(p, [a, b] if a == b)) {
            return None;
        }
        if level.len() % 2 == 1
            && let Some(l) = level.last().copied()
        {
            level.push(l);
        }
        level = level
            .chunks_exact(2)
            .map(|p| match p {
                [a, b] => hash::sha256d_pair(a, b),
                _ => [0; 32],
            })
            .collect();
    }
    level.first().copied()
}

fn merkle_mutated(leaves: &[[u8; 32]]) -> bool {
    !leaves.is_empty() && merkle_root_unmutated(leaves).is_none()
}

/// Computes the merkle branch (siblings from the leaf up) for the first leaf, as a Stratum
/// `mining.notify` carries it: the coinbase's txid is the first leaf and is not known in advance,
/// so `others` are the txids of the remaining transactions.
pub fn coinbase_merkle_branch(others: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let mut branch = Vec::new();
    // Level 0 with a placeholder for the coinbase at index 0.
    let mut level: Vec<[u8; 32]> = Vec::with_capacity(others.len() + 1);
    level.push([0; 32]);
    level.extend_from_slice(others);
    while level.len() > 1 {
        if level.len() % 2 == 1
            && let Some(l) = level.last().copied()
        {
            level.push(l);
        }
        if let Some(s) = level.get(1) {
            branch.push(*s);
        }
        level = level
            .chunks_exact(2)
            .enumerate()
            .map(|(i, p)| match p {
                [a, b] if i > 0 => hash::sha256d_pair(a, b),
                _ => [0; 32],
            })
            .collect();
    }
    branch
}

/// Folds a leaf up a merkle branch: `root = fold(sha256d(acc ‖ sibling))`.
pub fn fold_merkle_branch(leaf: [u8; 32], branch: &[[u8; 32]]) -> [u8; 32] {
    branch
        .iter()
        .fold(leaf, |acc, s| hash::sha256d_pair(&acc, s))
}
