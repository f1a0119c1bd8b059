//! Deterministic synthetic chains for tests and benchmarks: every output type the node knows,
//! random spends, forks, and Lithium-signed spends built with `btq_core::signer`.
//!
//! Blocks are well-formed (merkle roots, BIP34 heights, chained hashes) but not mined: the
//! indexer trusts the node for proof of work and script validity.

use btq_core::block::{Block, BlockHeader};
use btq_core::hash::{BlockHash, TxMerkleNode};
use btq_core::lithium::Keypair;
use btq_core::pow::CompactTarget;
use btq_core::script::{Builder, P2mrTree, ScriptBuf, opcodes};
use btq_core::signer::{Prevout, SpendError, sign_transaction};
use btq_core::tx::{OutPoint, Transaction, TxIn, TxOut, Witness};

/// splitmix64: a tiny deterministic generator (no global randomness in this crate).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Returns the next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Returns a value in `0..n` (0 if `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    /// Returns `n` pseudo-random bytes.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        for chunk in b.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            let n = chunk.len();
            if let Some(src) = v.get(..n) {
                chunk.copy_from_slice(src);
            }
        }
        b
    }
}

/// Number of distinct output shapes [`script_of_kind`] makes.
pub const SCRIPT_KINDS: u64 = 13;

/// Returns a scriptPubKey of shape `kind % SCRIPT_KINDS`, derived from `seed`: ECDSA P2PKH,
/// P2WPKH, Lithium P2PKH, P2SH, P2WSH, P2TR, P2MR, bare Lithium P2PK (1,312-byte key), ECDSA
/// P2PK, bare multisig, an unknown witness version, a non-standard script and `OP_RETURN`.
pub fn script_of_kind(kind: u64, seed: u64) -> ScriptBuf {
    let mut r = Rng::new(seed);
    let h20: [u8; 20] = r.bytes();
    let h32: [u8; 32] = r.bytes();
    let mut key33 = [0u8; 33];
    key33[0] = 0x02;
    if let Some(rest) = key33.get_mut(1..) {
        rest.copy_from_slice(&h32);
    }
    match kind % SCRIPT_KINDS {
        0 => ScriptBuf::new_p2pkh(&h20),
        1 => ScriptBuf::new_p2wpkh(&h20),
        2 => ScriptBuf::new_p2pkh_lithium(&h20),
        3 => ScriptBuf::new_p2sh(&h20),
        4 => ScriptBuf::new_p2wsh_for(&h32),
        5 => ScriptBuf::new_witness_program(1, &h32),
        6 => ScriptBuf::new_p2mr(&h32),
        7 => {
            let mut pk = vec![0u8; btq_core::lithium::PUBLIC_KEY_LEN];
            for (i, b) in pk.iter_mut().enumerate() {
                *b = h32.get(i % 32).copied().unwrap_or(1) ^ u8::try_from(i % 256).unwrap_or(0);
            }
            ScriptBuf::new_p2pk_lithium(&pk)
        }
        8 => Builder::new()
            .push_slice(&key33)
            .push_opcode(opcodes::OP_CHECKSIG)
            .into_script(),
        9 => Builder::new()
            .push_opcode(opcodes::OP_1)
            .push_slice(&key33)
            .push_slice(&key33)
            .push_opcode(opcodes::OP_2)
            .push_opcode(opcodes::OP_CHECKMULTISIG)
            .into_script(),
        10 => ScriptBuf::new_witness_program(3, &h20),
        11 => ScriptBuf::from_bytes(vec![opcodes::OP_1, 0x75, h20[0]]),
        _ => ScriptBuf::new_op_return(&h20),
    }
}

/// Builds a block on `prev` with a coinbase for `height` and the given other transactions.
pub fn make_block(
    prev: BlockHash,
    height: u32,
    time: u32,
    coinbase_outputs: Vec<TxOut>,
    tag: &[u8],
    mut txs: Vec<Transaction>,
) -> Block {
    let mut sig = Builder::new()
        .push_int(i64::from(height))
        .into_script()
        .into_bytes();
    sig.extend_from_slice(tag);
    let mut cb_in = TxIn::new(OutPoint::NULL);
    cb_in.script_sig = ScriptBuf::from_bytes(sig);
    let coinbase = Transaction {
        version: 2,
        input: vec![cb_in],
        output: coinbase_outputs,
        lock_time: 0,
    };
    txs.insert(0, coinbase);
    let mut block = Block {
        header: BlockHeader {
            version: 0x2000_0000,
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::from_byte_array([0; 32]),
            time,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: height,
        },
        txdata: txs,
    };
    if let Some(root) = block.compute_merkle_root() {
        block.header.merkle_root = root;
    }
    block
}

#[derive(Debug, Clone)]
struct Coin {
    outpoint: OutPoint,
    value: u64,
}

/// A random chain of unsigned transactions over every output type; can fork at any height.
#[derive(Debug, Clone)]
pub struct ChainBuilder {
    blocks: Vec<Block>,
    coins: Vec<Coin>,
    rng: Rng,
    scripts: u64,
    start_time: u32,
    witness: Vec<Vec<u8>>,
    base: u32,
    last_hash: BlockHash,
}

impl ChainBuilder {
    /// Creates an empty chain; outputs pay to `scripts` distinct scripts (reused, so histories
    /// grow).
    pub fn new(seed: u64, scripts: u64) -> Self {
        Self {
            blocks: Vec::new(),
            coins: Vec::new(),
            rng: Rng::new(seed),
            scripts: scripts.max(1),
            start_time: 1_771_804_800,
            witness: vec![vec![0x30; 72], vec![0x02; 33]],
            base: 0,
            last_hash: BlockHash::from_byte_array([0; 32]),
        }
    }

    /// Gives every input a Lithium-sized witness (a 2,421-byte signature item and a 1,312-byte
    /// key, unsigned) instead of an ECDSA-sized one: block bytes as on a Lithium-heavy chain.
    pub fn with_lithium_witnesses(mut self) -> Self {
        self.witness = vec![
            vec![0x5a; btq_core::lithium::SIGNATURE_LEN + 1],
            vec![0x11; btq_core::lithium::PUBLIC_KEY_LEN],
        ];
        self
    }

    /// Returns the blocks, genesis first (after [`ChainBuilder::forget_blocks`]: the blocks
    /// built since).
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Returns the height the next block gets.
    pub fn next_height(&self) -> u32 {
        self.base
            .saturating_add(u32::try_from(self.blocks.len()).unwrap_or(u32::MAX))
    }

    /// Drops the stored blocks (keeping the spendable outputs and the tip), to build long
    /// chains in constant memory; [`ChainBuilder::blocks`] then starts after them.
    pub fn forget_blocks(&mut self) {
        if let Some(b) = self.blocks.last() {
            self.last_hash = b.block_hash();
        }
        self.base = self.next_height();
        self.blocks.clear();
    }

    fn script(&mut self) -> ScriptBuf {
        let s = self.rng.below(self.scripts);
        script_of_kind(s, s.wrapping_mul(7919))
    }

    /// Appends a block with `txs` random transactions (1–3 inputs, 1–4 outputs each).
    pub fn push_block(&mut self, txs: usize) -> &Block {
        let height = self.next_height();
        let prev = self.blocks.last().map_or(self.last_hash, Block::block_hash);
        let mut body = Vec::new();
        for _ in 0..txs {
            if self.coins.is_empty() {
                break;
            }
            let n_in = 1 + self.rng.below(3);
            let mut input = Vec::new();
            let mut sum: u64 = 0;
            for _ in 0..n_in {
                if self.coins.is_empty() {
                    break;
                }
                let i = usize::try_from(self.rng.below(self.coins.len() as u64)).unwrap_or(0);
                let c = self
                    .coins
                    .swap_remove(i.min(self.coins.len().saturating_sub(1)));
                sum = sum.saturating_add(c.value);
                let mut ti = TxIn::new(c.outpoint);
                ti.witness = Witness::from_items(self.witness.clone());
                input.push(ti);
            }
            let fee = sum.min(1000 + self.rng.below(1000));
            let mut left = sum.saturating_sub(fee);
            let n_out = 1 + self.rng.below(4);
            let mut output = Vec::new();
            for k in 0..n_out {
                let v = if k + 1 == n_out {
                    left
                } else {
                    self.rng.below(left / 2 + 1)
                };
                left = left.saturating_sub(v);
                output.push(TxOut {
                    value: v,
                    script_pubkey: self.script(),
                });
            }
            let tx = Transaction {
                version: 2,
                input,
                output,
                lock_time: 0,
            };
            self.add_coins(&tx);
            body.push(tx);
        }
        let n_cb = 1 + self.rng.below(2);
        let cb_out: Vec<TxOut> = (0..n_cb)
            .map(|_| TxOut {
                value: 5_000_000_000 / n_cb,
                script_pubkey: self.script(),
            })
            .collect();
        let tag: &[u8] = if self.rng.below(2) == 0 {
            b"/PoolA/"
        } else {
            b"/solo/"
        };
        let time = self.start_time.saturating_add(height.saturating_mul(60));
        let block = make_block(prev, height, time, cb_out, tag, body);
        if let Some(cb) = block.txdata.first() {
            self.add_coins(cb);
        }
        self.blocks.push(block);
        self.blocks.last().unwrap_or_else(|| unreachable_block())
    }

    fn add_coins(&mut self, tx: &Transaction) {
        let txid = tx.txid();
        for (vout, o) in tx.output.iter().enumerate() {
            if crate::indexer::is_unspendable(&o.script_pubkey) {
                continue;
            }
            self.coins.push(Coin {
                outpoint: OutPoint::new(txid, u32::try_from(vout).unwrap_or(0)),
                value: o.value,
            });
        }
    }

    /// Returns a builder holding the first `height + 1` blocks, with its own random stream
    /// (`seed`): its next blocks fork from this chain at `height`.
    pub fn fork_at(&self, height: u32, seed: u64) -> Self {
        let mut b = Self::new(seed, self.scripts);
        b.witness = self.witness.clone();
        for blk in self
            .blocks
            .iter()
            .take(usize::try_from(height).unwrap_or(0).saturating_add(1))
        {
            for tx in &blk.txdata {
                if !tx.is_coinbase() {
                    for i in &tx.input {
                        b.coins.retain(|c| c.outpoint != i.previous_output);
                    }
                }
                b.add_coins(tx);
            }
            b.blocks.push(blk.clone());
        }
        b
    }
}

fn unreachable_block() -> &'static Block {
    btq_core::params::Network::Regtest.params().genesis_block()
}

/// A Lithium wallet building signed spends of P2WPKH-Lithium, P2PKH-Lithium and P2MR outputs.
#[derive(Debug)]
pub struct LithiumWallet {
    keypair: Keypair,
    coins: Vec<(OutPoint, Prevout)>,
}

impl LithiumWallet {
    /// Derives the key from `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            keypair: Keypair::from_seed(&seed),
            coins: Vec::new(),
        }
    }

    /// Returns the wallet's three scripts: P2WPKH, P2PKH-Lithium and single-leaf P2MR.
    pub fn scripts(&self) -> [ScriptBuf; 3] {
        let pk = self.keypair.public_key();
        let h = pk.hash160();
        [
            ScriptBuf::new_p2wpkh(&h),
            ScriptBuf::new_p2pkh_lithium(&h),
            P2mrTree::single_lithium_leaf(pk.as_bytes()).script_pubkey(),
        ]
    }

    /// Records the outputs of `tx` paying to the wallet.
    pub fn receive(&mut self, tx: &Transaction) {
        let mine = self.scripts();
        let txid = tx.txid();
        for (vout, o) in tx.output.iter().enumerate() {
            if mine.contains(&o.script_pubkey) {
                self.coins.push((
                    OutPoint::new(txid, u32::try_from(vout).unwrap_or(0)),
                    Prevout {
                        value: o.value,
                        script_pubkey: o.script_pubkey.clone(),
                    },
                ));
            }
        }
    }

    /// Returns the number of spendable coins.
    pub fn coin_count(&self) -> usize {
        self.coins.len()
    }

    /// Builds and signs a transaction spending up to `inputs` coins to `outputs` (values are
    /// split evenly after a fee); returns `None` without coins.
    ///
    /// # Errors
    /// A signing failure.
    pub fn spend(
        &mut self,
        inputs: usize,
        outputs: &[ScriptBuf],
        fee: u64,
    ) -> Result<Option<Transaction>, SpendError> {
        let take = inputs.min(self.coins.len());
        if take == 0 || outputs.is_empty() {
            return Ok(None);
        }
        let spent: Vec<(OutPoint, Prevout)> = self.coins.drain(..take).collect();
        let sum: u64 = spent.iter().map(|(_, p)| p.value).sum();
        let each = sum.saturating_sub(fee) / outputs.len() as u64;
        let mut tx = Transaction {
            version: 2,
            input: spent.iter().map(|(o, _)| TxIn::new(*o)).collect(),
            output: outputs
                .iter()
                .map(|s| TxOut {
                    value: each,
                    script_pubkey: s.clone(),
                })
                .collect(),
            lock_time: 0,
        };
        let prevouts: Vec<Prevout> = spent.into_iter().map(|(_, p)| p).collect();
        sign_transaction(&mut tx, &prevouts, &self.keypair)?;
        self.receive(&tx);
        Ok(Some(tx))
    }
}
