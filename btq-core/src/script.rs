//! Scripts: opcodes, a builder with minimal pushes, instruction parsing, and the classifier for
//! every BTQ output type (the node's `Solver`, `script/solver.cpp`).
//!
//! BTQ adds five opcodes: [`opcodes::OP_CHECKSIGDILITHIUM`] (0xbb) and friends up to
//! [`opcodes::OP_DILITHIUM_PUBKEY`] (0xbf). Pushes must be minimal under policy, so a 1,312-byte
//! public key or a 2,421-byte signature uses `OP_PUSHDATA2`.

use core::fmt;

use thiserror::Error;

use crate::hash::{hash160, sha256, tagged_hash};
use crate::hex;

/// Opcodes used by BTQ scripts.
pub mod opcodes {
    #![allow(missing_docs)]
    pub const OP_0: u8 = 0x00;
    pub const OP_PUSHDATA1: u8 = 0x4c;
    pub const OP_PUSHDATA2: u8 = 0x4d;
    pub const OP_PUSHDATA4: u8 = 0x4e;
    pub const OP_1NEGATE: u8 = 0x4f;
    pub const OP_1: u8 = 0x51;
    pub const OP_2: u8 = 0x52;
    pub const OP_16: u8 = 0x60;
    pub const OP_RETURN: u8 = 0x6a;
    pub const OP_DUP: u8 = 0x76;
    pub const OP_EQUAL: u8 = 0x87;
    pub const OP_EQUALVERIFY: u8 = 0x88;
    pub const OP_HASH160: u8 = 0xa9;
    pub const OP_CODESEPARATOR: u8 = 0xab;
    pub const OP_CHECKSIG: u8 = 0xac;
    pub const OP_CHECKSIGVERIFY: u8 = 0xad;
    pub const OP_CHECKMULTISIG: u8 = 0xae;
    pub const OP_CHECKMULTISIGVERIFY: u8 = 0xaf;
    /// `OP_CHECKSIGDILITHIUM`: (sig pubkey → bool), ML-DSA-44.
    pub const OP_CHECKSIGDILITHIUM: u8 = 0xbb;
    /// `OP_CHECKSIGDILITHIUMVERIFY`.
    pub const OP_CHECKSIGDILITHIUMVERIFY: u8 = 0xbc;
    /// `OP_CHECKMULTISIGDILITHIUM`.
    pub const OP_CHECKMULTISIGDILITHIUM: u8 = 0xbd;
    /// `OP_CHECKMULTISIGDILITHIUMVERIFY`.
    pub const OP_CHECKMULTISIGDILITHIUMVERIFY: u8 = 0xbe;
    /// `OP_DILITHIUM_PUBKEY`: (pk → bool), is it a 1,312-byte non-zero blob.
    pub const OP_DILITHIUM_PUBKEY: u8 = 0xbf;
}
use opcodes::{
    OP_0, OP_1, OP_1NEGATE, OP_16, OP_CHECKMULTISIG, OP_CHECKMULTISIGDILITHIUM, OP_CHECKSIG,
    OP_CHECKSIGDILITHIUM, OP_CODESEPARATOR, OP_DUP, OP_EQUAL, OP_EQUALVERIFY, OP_HASH160,
    OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4, OP_RETURN,
};

/// `MAX_SCRIPT_ELEMENT_SIZE` in BTQ (15,000; Bitcoin's is 520).
pub const MAX_SCRIPT_ELEMENT_SIZE: usize = 15_000;
/// `MAX_SCRIPT_SIZE` (100,000).
pub const MAX_SCRIPT_SIZE: usize = 100_000;
/// Length of a Lithium (ML-DSA-44) public key.
pub const LITHIUM_PUBKEY_LEN: usize = 1312;
/// The tapscript leaf version used by P2MR leaves.
pub const P2MR_LEAF_VERSION: u8 = 0xc0;
/// The most sibling hashes a P2MR control block may hold.
pub const P2MR_MAX_DEPTH: usize = 128;

/// An owned script.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ScriptBuf(Vec<u8>);

/// A borrowed script is a byte slice.
pub type Script = [u8];

impl fmt::Debug for ScriptBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScriptBuf({})", hex::encode(&self.0))
    }
}

impl fmt::Display for ScriptBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl From<Vec<u8>> for ScriptBuf {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl AsRef<[u8]> for ScriptBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A script instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instruction<'a> {
    /// A data push (including `OP_0`, which pushes the empty string).
    Push(&'a [u8]),
    /// Any other opcode (including `OP_1NEGATE` and `OP_1`..`OP_16`).
    Op(u8),
}

/// A push whose length runs past the end of the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("push at offset {offset} runs past the end of the script")]
pub struct BadPushError {
    /// Offset of the push opcode.
    pub offset: usize,
}

/// Iterates over the instructions of a script, yielding an error and stopping at a truncated
/// push.
#[derive(Debug, Clone)]
pub struct Instructions<'a> {
    script: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Instructions<'a> {
    type Item = Result<(usize, Instruction<'a>), BadPushError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let start = self.pos;
        let rest = self.script.get(start..)?;
        let (&op, tail) = rest.split_first()?;
        let (len_bytes, len) = match op {
            0x01..=0x4b => (0, usize::from(op)),
            OP_PUSHDATA1 => (1, tail.first().map_or(usize::MAX, |b| usize::from(*b))),
            OP_PUSHDATA2 => (
                2,
                tail.get(..2)
                    .and_then(|b| <[u8; 2]>::try_from(b).ok())
                    .map_or(usize::MAX, |b| usize::from(u16::from_le_bytes(b))),
            ),
            OP_PUSHDATA4 => (
                4,
                tail.get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(usize::MAX, |b| {
                        usize::try_from(u32::from_le_bytes(b)).unwrap_or(usize::MAX)
                    }),
            ),
            _ => {
                self.pos = start + 1;
                return Some(Ok((
                    start,
                    if op == OP_0 {
                        Instruction::Push(&[])
                    } else {
                        Instruction::Op(op)
                    },
                )));
            }
        };
        let data = tail.get(len_bytes..).and_then(|t| t.get(..len));
        match data {
            Some(d) => {
                self.pos = start + 1 + len_bytes + len;
                Some(Ok((start, Instruction::Push(d))))
            }
            None => {
                self.done = true;
                Some(Err(BadPushError { offset: start }))
            }
        }
    }
}

/// Returns the instructions of `script` with their byte offsets.
pub fn instructions(script: &[u8]) -> Instructions<'_> {
    Instructions {
        script,
        pos: 0,
        done: false,
    }
}

/// Appends a minimal push of `data` (`CScript::operator<<(vector)`, MINIMALDATA-compliant for
/// non-numeric data).
pub fn push_slice(out: &mut Vec<u8>, data: &[u8]) {
    let n = data.len();
    #[allow(clippy::cast_possible_truncation)] // each arm's range fits its width
    match n {
        0 => out.push(OP_0),
        1..=0x4b => out.push(n as u8),
        0x4c..=0xff => {
            out.push(OP_PUSHDATA1);
            out.push(n as u8);
        }
        0x100..=0xffff => {
            out.push(OP_PUSHDATA2);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        _ => {
            out.push(OP_PUSHDATA4);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
    }
    out.extend_from_slice(data);
}

/// Encodes an integer as the node's `CScript() << int64` does: 0 → `OP_0`, 1..=16 → `OP_1..OP_16`,
/// −1 → `OP_1NEGATE`, otherwise a minimal script-number push (BIP34 heights use this).
pub fn push_int(out: &mut Vec<u8>, n: i64) {
    match n {
        0 => out.push(OP_0),
        -1 => out.push(OP_1NEGATE),
        1..=16 => out.push(OP_1 - 1 + u8::try_from(n).unwrap_or(0)),
        _ => push_slice(out, &script_num(n)),
    }
}

/// Serialises a script number (`CScriptNum::serialize`): little-endian, sign bit in the last byte.
pub fn script_num(n: i64) -> Vec<u8> {
    let mut out = Vec::new();
    if n == 0 {
        return out;
    }
    let neg = n < 0;
    let mut abs = n.unsigned_abs();
    while abs > 0 {
        out.push(abs.to_le_bytes()[0]);
        abs >>= 8;
    }
    match out.last_mut() {
        Some(last) if *last & 0x80 != 0 => out.push(if neg { 0x80 } else { 0 }),
        Some(last) if neg => *last |= 0x80,
        _ => {}
    }
    out
}

/// A script builder.
#[derive(Debug, Clone, Default)]
pub struct Builder(Vec<u8>);

impl Builder {
    /// Starts an empty script.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends an opcode.
    #[must_use]
    pub fn push_opcode(mut self, op: u8) -> Self {
        self.0.push(op);
        self
    }

    /// Appends a minimal data push.
    #[must_use]
    pub fn push_slice(mut self, data: &[u8]) -> Self {
        push_slice(&mut self.0, data);
        self
    }

    /// Appends an integer as `CScript() << n`.
    #[must_use]
    pub fn push_int(mut self, n: i64) -> Self {
        push_int(&mut self.0, n);
        self
    }

    /// Finishes the script.
    pub fn into_script(self) -> ScriptBuf {
        ScriptBuf(self.0)
    }
}

/// The output types the node's `Solver` recognises, with BTQ's additions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScriptType {
    /// ECDSA pay-to-pubkey.
    P2pk,
    /// ECDSA pay-to-pubkey-hash `76a914…88ac`.
    P2pkh,
    /// Lithium pay-to-pubkey-hash `76a914…88bb`.
    P2pkhLithium,
    /// Bare Lithium pay-to-pubkey `4d2005<pk>bb`.
    P2pkLithium,
    /// Pay-to-script-hash (the node labels every P2SH `dilithium_scripthash`).
    P2sh,
    /// Witness v0 key hash: ECDSA P2WPKH or P2WPKH-Lithium (indistinguishable on chain).
    P2wpkh,
    /// Witness v0 script hash.
    P2wsh,
    /// Witness v1 Taproot (not consensus-enforced on BTQ).
    P2tr,
    /// Witness v2 P2MR (BIP360 merkle root).
    P2mr,
    /// Another witness version or length.
    WitnessUnknown,
    /// Bare ECDSA multisig.
    Multisig,
    /// Bare Lithium multisig.
    MultisigLithium,
    /// `OP_RETURN` data carrier.
    NullData,
    /// Anything else.
    NonStandard,
}

impl ScriptType {
    /// Returns the node's RPC `type` string for this output type.
    pub const fn rpc_name(self) -> &'static str {
        match self {
            Self::P2pk => "pubkey",
            Self::P2pkh => "pubkeyhash",
            Self::P2pkhLithium => "dilithium_pubkeyhash",
            Self::P2pkLithium => "dilithium_pubkey",
            Self::P2sh => "dilithium_scripthash",
            Self::P2wpkh => "witness_v0_keyhash",
            Self::P2wsh => "witness_v0_scripthash",
            Self::P2tr => "witness_v1_taproot",
            Self::P2mr => "witness_v2_p2mr",
            Self::WitnessUnknown => "witness_unknown",
            Self::Multisig => "multisig",
            Self::MultisigLithium => "dilithium_multisig",
            Self::NullData => "nulldata",
            Self::NonStandard => "nonstandard",
        }
    }
}

fn decode_small_int(op: u8) -> Option<u8> {
    match op {
        OP_0 => Some(0),
        OP_1..=OP_16 => Some(op - OP_1 + 1),
        _ => None,
    }
}

fn is_ecdsa_pubkey(k: &[u8]) -> bool {
    match k.first() {
        Some(0x02 | 0x03) => k.len() == 33,
        Some(0x04 | 0x06 | 0x07) => k.len() == 65,
        _ => false,
    }
}

impl ScriptBuf {
    /// Creates an empty script.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Creates a script from bytes.
    pub const fn from_bytes(v: Vec<u8>) -> Self {
        Self(v)
    }

    /// Parses a script from hex of at most [`MAX_SCRIPT_SIZE`] bytes.
    ///
    /// # Errors
    /// Invalid hex or too long.
    pub fn from_hex(s: &str) -> Result<Self, hex::HexError> {
        hex::decode_bounded(s, MAX_SCRIPT_SIZE).map(Self)
    }

    /// Borrows the bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Returns the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Returns the length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Returns true for the empty script.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Builds `00 14 <hash160(pk)>`: P2WPKH, the recommended Lithium output (P2WPKH-Lithium).
    pub fn new_p2wpkh(pubkey_hash: &[u8; 20]) -> Self {
        Builder::new()
            .push_opcode(OP_0)
            .push_slice(pubkey_hash)
            .into_script()
    }

    /// Builds `76 a9 14 <h160> 88 ac`: ECDSA P2PKH.
    pub fn new_p2pkh(pubkey_hash: &[u8; 20]) -> Self {
        Builder::new()
            .push_opcode(OP_DUP)
            .push_opcode(OP_HASH160)
            .push_slice(pubkey_hash)
            .push_opcode(OP_EQUALVERIFY)
            .push_opcode(OP_CHECKSIG)
            .into_script()
    }

    /// Builds `76 a9 14 <h160> 88 bb`: P2PKH-Lithium. This is also the BIP143 scriptCode of a
    /// P2WPKH-Lithium spend.
    pub fn new_p2pkh_lithium(pubkey_hash: &[u8; 20]) -> Self {
        Builder::new()
            .push_opcode(OP_DUP)
            .push_opcode(OP_HASH160)
            .push_slice(pubkey_hash)
            .push_opcode(OP_EQUALVERIFY)
            .push_opcode(OP_CHECKSIGDILITHIUM)
            .into_script()
    }

    /// Builds `<pk> OP_CHECKSIGDILITHIUM`: bare P2PK-Lithium, also the usual P2MR leaf and P2WSH
    /// witness script.
    pub fn new_p2pk_lithium(pubkey: &[u8]) -> Self {
        Builder::new()
            .push_slice(pubkey)
            .push_opcode(OP_CHECKSIGDILITHIUM)
            .into_script()
    }

    /// Builds `a9 14 <h160(redeem)> 87`: P2SH.
    pub fn new_p2sh(script_hash: &[u8; 20]) -> Self {
        Builder::new()
            .push_opcode(OP_HASH160)
            .push_slice(script_hash)
            .push_opcode(OP_EQUAL)
            .into_script()
    }

    /// Builds the P2SH output for a redeem script.
    pub fn new_p2sh_for(redeem: &[u8]) -> Self {
        Self::new_p2sh(&hash160(redeem))
    }

    /// Builds `00 20 <sha256(ws)>`: P2WSH for a witness script.
    pub fn new_p2wsh_for(witness_script: &[u8]) -> Self {
        Self::new_witness_program(0, &sha256(witness_script))
    }

    /// Builds `52 20 <root>`: P2MR (witness v2) committing to a script-tree merkle root.
    pub fn new_p2mr(merkle_root: &[u8; 32]) -> Self {
        Self::new_witness_program(2, merkle_root)
    }

    /// Builds a witness program `OP_v <program>`. `version` must be 0..=16.
    pub fn new_witness_program(version: u8, program: &[u8]) -> Self {
        let op = if version == 0 {
            OP_0
        } else {
            OP_1 - 1 + version.min(16)
        };
        Builder::new()
            .push_opcode(op)
            .push_slice(program)
            .into_script()
    }

    /// Builds an `OP_RETURN <data>` output.
    pub fn new_op_return(data: &[u8]) -> Self {
        Builder::new()
            .push_opcode(OP_RETURN)
            .push_slice(data)
            .into_script()
    }

    /// Returns `(version, program)` if this is a witness program (`CScript::IsWitnessProgram`).
    pub fn witness_program(&self) -> Option<(u8, &[u8])> {
        witness_program(&self.0)
    }

    /// Returns true for P2SH.
    pub fn is_p2sh(&self) -> bool {
        matches!(self.0.as_slice(), [OP_HASH160, 0x14, .., OP_EQUAL] if self.0.len() == 23)
    }

    /// Returns true if the script is push-only (`IsPushOnly`).
    pub fn is_push_only(&self) -> bool {
        instructions(&self.0).all(|i| match i {
            Ok((_, Instruction::Push(_))) => true,
            Ok((_, Instruction::Op(op))) => op <= OP_16 && op != 0x50,
            Err(_) => false,
        })
    }

    /// Classifies the script as the node's `Solver` does.
    pub fn script_type(&self) -> ScriptType {
        classify(&self.0)
    }

    /// Returns the script with every `OP_CODESEPARATOR` removed (legacy sighash scriptCode).
    pub fn without_codeseparators(&self) -> Self {
        let mut out = Vec::with_capacity(self.0.len());
        let mut last = 0;
        for ins in instructions(&self.0) {
            match ins {
                Ok((off, Instruction::Op(OP_CODESEPARATOR))) => {
                    out.extend_from_slice(self.0.get(last..off).unwrap_or_default());
                    last = off + 1;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        out.extend_from_slice(self.0.get(last..).unwrap_or_default());
        Self(out)
    }
}

/// Returns `(version, program)` if `s` is a witness program.
pub fn witness_program(s: &[u8]) -> Option<(u8, &[u8])> {
    if s.len() < 4 || s.len() > 42 {
        return None;
    }
    let (&v, rest) = s.split_first()?;
    let version = match v {
        OP_0 => 0,
        OP_1..=OP_16 => v - OP_1 + 1,
        _ => return None,
    };
    let (&len, prog) = rest.split_first()?;
    (usize::from(len) == prog.len()).then_some((version, prog))
}

fn classify(s: &[u8]) -> ScriptType {
    // P2SH (the node matches it before anything else and labels it dilithium_scripthash).
    if s.len() == 23
        && s.first() == Some(&OP_HASH160)
        && s.get(1) == Some(&0x14)
        && s.get(22) == Some(&OP_EQUAL)
    {
        return ScriptType::P2sh;
    }
    if let Some((v, prog)) = witness_program(s) {
        return match (v, prog.len()) {
            (0, 20) => ScriptType::P2wpkh,
            (0, 32) => ScriptType::P2wsh,
            (1, 32) => ScriptType::P2tr,
            (2, 32) => ScriptType::P2mr,
            (0, _) => ScriptType::NonStandard,
            _ => ScriptType::WitnessUnknown,
        };
    }
    if s.first() == Some(&OP_RETURN)
        && ScriptBuf(s.get(1..).unwrap_or_default().to_vec()).is_push_only()
    {
        return ScriptType::NullData;
    }
    if let [OP_DUP, OP_HASH160, 0x14, .., OP_EQUALVERIFY, last] = s
        && s.len() == 25
    {
        match *last {
            OP_CHECKSIG => return ScriptType::P2pkh,
            OP_CHECKSIGDILITHIUM => return ScriptType::P2pkhLithium,
            _ => {}
        }
    }
    let ins: Vec<Instruction<'_>> = match instructions(s).map(|r| r.map(|(_, i)| i)).collect() {
        Ok(v) => v,
        Err(_) => return ScriptType::NonStandard,
    };
    match ins.as_slice() {
        [Instruction::Push(k), Instruction::Op(OP_CHECKSIG)] if is_ecdsa_pubkey(k) => {
            ScriptType::P2pk
        }
        [Instruction::Push(k), Instruction::Op(OP_CHECKSIGDILITHIUM)]
            if k.len() == LITHIUM_PUBKEY_LEN =>
        {
            ScriptType::P2pkLithium
        }
        [
            Instruction::Op(m),
            keys @ ..,
            Instruction::Op(n),
            Instruction::Op(check),
        ] if *check == OP_CHECKMULTISIG || *check == OP_CHECKMULTISIGDILITHIUM => {
            let lithium = *check == OP_CHECKMULTISIGDILITHIUM;
            let (Some(m), Some(n)) = (decode_small_int(*m), decode_small_int(*n)) else {
                return ScriptType::NonStandard;
            };
            let ok_keys = keys.iter().all(|k| match k {
                Instruction::Push(k) if lithium => k.len() == LITHIUM_PUBKEY_LEN,
                Instruction::Push(k) => is_ecdsa_pubkey(k),
                Instruction::Op(_) => false,
            });
            if ok_keys && m >= 1 && n >= m && usize::from(n) == keys.len() {
                if lithium {
                    ScriptType::MultisigLithium
                } else {
                    ScriptType::Multisig
                }
            } else {
                ScriptType::NonStandard
            }
        }
        _ => ScriptType::NonStandard,
    }
}

/// Computes a P2MR (and BIP341) leaf hash: `TaggedHash("TapLeaf", version ‖ compact(len) ‖ script)`.
pub fn p2mr_leaf_hash(leaf_version: u8, script: &[u8]) -> [u8; 32] {
    let mut len = Vec::with_capacity(9);
    crate::encoding::write_compact_size(&mut len, script.len() as u64);
    tagged_hash("TapLeaf", &[&[leaf_version], &len, script])
}

/// Computes a P2MR branch hash: `TaggedHash("TapBranch", min(a,b) ‖ max(a,b))`.
pub fn p2mr_branch_hash(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    tagged_hash("TapBranch", &[lo, hi])
}

/// A P2MR script tree: leaves paired left to right, level by level (an odd last node is carried
/// up unchanged), so every leaf has a path of at most ⌈log2 n⌉ siblings.
#[derive(Debug, Clone)]
pub struct P2mrTree {
    leaves: Vec<(u8, ScriptBuf)>,
    levels: Vec<Vec<[u8; 32]>>,
}

/// An error building a P2MR tree or control block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum P2mrError {
    /// The tree has no leaves.
    #[error("a P2MR tree needs at least one leaf")]
    Empty,
    /// The leaf index is out of range.
    #[error("leaf index {index} out of range ({count} leaves)")]
    NoSuchLeaf {
        /// The index asked for.
        index: usize,
        /// The number of leaves.
        count: usize,
    },
    /// The control block is malformed.
    #[error("control block of {len} bytes is not 1 + 32·m with m ≤ 128")]
    BadControlBlock {
        /// Its length.
        len: usize,
    },
    /// The control block's parity bit is not set.
    #[error("control block byte 0 must have its low bit set (got {0:#04x})")]
    ParityBitUnset(u8),
}

impl P2mrTree {
    /// Builds a tree from `(leaf_version, script)` leaves.
    ///
    /// # Errors
    /// [`P2mrError::Empty`] without leaves.
    pub fn new(leaves: Vec<(u8, ScriptBuf)>) -> Result<Self, P2mrError> {
        if leaves.is_empty() {
            return Err(P2mrError::Empty);
        }
        let mut levels = vec![
            leaves
                .iter()
                .map(|(v, s)| p2mr_leaf_hash(*v, s.as_bytes()))
                .collect::<Vec<_>>(),
        ];
        while let Some(level) = levels.last() {
            if level.len() <= 1 {
                break;
            }
            let next = level
                .chunks(2)
                .map(|c| match c {
                    [a, b] => p2mr_branch_hash(a, b),
                    [a] => *a,
                    _ => [0; 32],
                })
                .collect();
            levels.push(next);
        }
        Ok(Self { leaves, levels })
    }

    /// Builds the single-leaf tree `<pk> OP_CHECKSIGDILITHIUM` at leaf version 0xc0.
    pub fn single_lithium_leaf(pubkey: &[u8]) -> Self {
        let leaf = ScriptBuf::new_p2pk_lithium(pubkey);
        let hash = p2mr_leaf_hash(P2MR_LEAF_VERSION, leaf.as_bytes());
        Self {
            leaves: vec![(P2MR_LEAF_VERSION, leaf)],
            levels: vec![vec![hash]],
        }
    }

    /// Returns the merkle root (the witness program).
    pub fn merkle_root(&self) -> [u8; 32] {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or([0; 32])
    }

    /// Returns the P2MR scriptPubKey.
    pub fn script_pubkey(&self) -> ScriptBuf {
        ScriptBuf::new_p2mr(&self.merkle_root())
    }

    /// Returns the leaf script at `index`.
    pub fn leaf(&self, index: usize) -> Option<&(u8, ScriptBuf)> {
        self.leaves.get(index)
    }

    /// Returns the control block for the leaf at `index`: `leaf_version | 1` then the sibling
    /// hashes from the leaf up.
    ///
    /// # Errors
    /// [`P2mrError::NoSuchLeaf`].
    pub fn control_block(&self, index: usize) -> Result<Vec<u8>, P2mrError> {
        let (version, _) = self.leaves.get(index).ok_or(P2mrError::NoSuchLeaf {
            index,
            count: self.leaves.len(),
        })?;
        let mut out = vec![*version | 1];
        let mut i = index;
        for level in &self.levels {
            if level.len() <= 1 {
                break;
            }
            let sibling = i ^ 1;
            if let Some(h) = level.get(sibling) {
                out.extend_from_slice(h);
            }
            i /= 2;
        }
        Ok(out)
    }
}

/// Computes the P2MR root a leaf and control block commit to (`ComputeTaprootMerkleRoot`
/// without a key), as the node verifies a script-path spend.
///
/// # Errors
/// A malformed control block or unset parity bit.
pub fn p2mr_root_from_control(control: &[u8], leaf_script: &[u8]) -> Result<[u8; 32], P2mrError> {
    let bad = P2mrError::BadControlBlock { len: control.len() };
    let (&first, path) = control.split_first().ok_or(bad)?;
    if path.len() % 32 != 0 || path.len() / 32 > P2MR_MAX_DEPTH {
        return Err(bad);
    }
    if first & 1 == 0 {
        return Err(P2mrError::ParityBitUnset(first));
    }
    let mut h = p2mr_leaf_hash(first & 0xfe, leaf_script);
    for node in path.chunks_exact(32) {
        let mut n = [0u8; 32];
        n.copy_from_slice(node);
        h = p2mr_branch_hash(&h, &n);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_int_bip34() {
        let enc = |n| {
            let mut v = Vec::new();
            push_int(&mut v, n);
            v
        };
        assert_eq!(enc(1), vec![0x51]);
        assert_eq!(enc(16), vec![0x60]);
        assert_eq!(enc(17), vec![0x01, 0x11]);
        assert_eq!(enc(127), vec![0x01, 0x7f]);
        assert_eq!(enc(128), vec![0x02, 0x80, 0x00]);
        assert_eq!(enc(314), vec![0x02, 0x3a, 0x01]);
        assert_eq!(enc(-1), vec![0x4f]);
        assert_eq!(enc(-5), vec![0x01, 0x85]);
    }

    #[test]
    fn pushes_are_minimal() {
        let mut v = Vec::new();
        push_slice(&mut v, &[7u8; 1312]);
        assert_eq!(&v[..3], &[0x4d, 0x20, 0x05]);
        let mut v = Vec::new();
        push_slice(&mut v, &[7u8; 76]);
        assert_eq!(&v[..2], &[0x4c, 76]);
    }

    #[test]
    fn classify_types() {
        let h = [0x11; 20];
        assert_eq!(ScriptBuf::new_p2wpkh(&h).script_type(), ScriptType::P2wpkh);
        assert_eq!(ScriptBuf::new_p2pkh(&h).script_type(), ScriptType::P2pkh);
        assert_eq!(
            ScriptBuf::new_p2pkh_lithium(&h).script_type(),
            ScriptType::P2pkhLithium
        );
        assert_eq!(ScriptBuf::new_p2sh(&h).script_type(), ScriptType::P2sh);
        assert_eq!(
            ScriptBuf::new_p2wsh_for(b"x").script_type(),
            ScriptType::P2wsh
        );
        assert_eq!(
            ScriptBuf::new_p2mr(&[3; 32]).script_type(),
            ScriptType::P2mr
        );
        assert_eq!(
            ScriptBuf::new_witness_program(1, &[3; 32]).script_type(),
            ScriptType::P2tr
        );
        assert_eq!(
            ScriptBuf::new_witness_program(3, &[3; 20]).script_type(),
            ScriptType::WitnessUnknown
        );
        assert_eq!(
            ScriptBuf::new_p2pk_lithium(&[5; 1312]).script_type(),
            ScriptType::P2pkLithium
        );
        assert_eq!(
            ScriptBuf::new_op_return(b"hi").script_type(),
            ScriptType::NullData
        );
        let mut pk = vec![0x02];
        pk.extend([1; 32]);
        let p2pk = Builder::new()
            .push_slice(&pk)
            .push_opcode(OP_CHECKSIG)
            .into_script();
        assert_eq!(p2pk.script_type(), ScriptType::P2pk);
        let ms = Builder::new()
            .push_int(1)
            .push_slice(&[9; 1312])
            .push_slice(&[8; 1312])
            .push_int(2)
            .push_opcode(OP_CHECKMULTISIGDILITHIUM)
            .into_script();
        assert_eq!(ms.script_type(), ScriptType::MultisigLithium);
        assert_eq!(
            ScriptBuf::from_bytes(vec![0x4d, 0xff]).script_type(),
            ScriptType::NonStandard
        );
    }

    #[test]
    fn p2mr_tree_paths_verify() {
        for n in 1..=9usize {
            let leaves: Vec<_> = (0..n)
                .map(|i| {
                    (
                        P2MR_LEAF_VERSION,
                        ScriptBuf::new_p2pk_lithium(&[u8::try_from(i).unwrap() + 1; 1312]),
                    )
                })
                .collect();
            let tree = P2mrTree::new(leaves.clone()).unwrap();
            for (i, (_, s)) in leaves.iter().enumerate() {
                let cb = tree.control_block(i).unwrap();
                assert_eq!(
                    p2mr_root_from_control(&cb, s.as_bytes()).unwrap(),
                    tree.merkle_root()
                );
            }
        }
        assert_eq!(
            p2mr_root_from_control(&[0xc0], b"x"),
            Err(P2mrError::ParityBitUnset(0xc0))
        );
    }

    #[test]
    fn codeseparators_removed() {
        let s = ScriptBuf::from_bytes(vec![0xab, 0x51, 0x01, 0xab, 0xab, 0x52]);
        assert_eq!(
            s.without_codeseparators().as_bytes(),
            &[0x51, 0x01, 0xab, 0x52]
        );
    }
}
