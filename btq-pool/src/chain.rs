//! An embedded, in-process regtest chain (Sans-IO): validates submitted blocks, keeps a UTXO
//! set and a mempool of signed transactions, and produces `getblocktemplate` results like the
//! node does. Time enters through [`EmbeddedChain::set_time`].
//!
//! Checked on every block: previous block is the tip, nBits, proof of work, time above the
//! median time past and at most two hours ahead, merkle root (and CVE-2012-2459 mutation),
//! context-free transaction checks, exactly one coinbase first, BIP34 height, witness
//! commitment, weight ≤ 8,000,000, inputs present and unspent, coinbase maturity, input value
//! ≥ output value, Lithium signatures (through [`SignatureVerifier`]), and coinbase value ≤
//! subsidy + fees.
//!
//! Not modelled: reorganisations (a block must extend the tip; a valid block on another parent
//! is answered `inconclusive` and dropped), lock-time finality, sigop limits, and spends of
//! unconfirmed mempool parents.

use std::collections::{HashMap, HashSet};

use btq_core::address::Address;
use btq_core::block::Block;
use btq_core::hash::{BlockHash, Txid, Wtxid};
use btq_core::params::{COINBASE_MATURITY, ChainParams, Network};
use btq_core::policy;
use btq_core::pow::CompactTarget;
use btq_core::script::ScriptBuf;
use btq_core::signer::{self, Prevout, SpendError};
use btq_core::time::UnixTime;
use btq_core::tx::{OutPoint, Transaction, Weight};
use thiserror::Error;

use crate::block::SubmitOutcome;
use crate::template::{Template, witness_commitment_script};

/// `MAX_FUTURE_BLOCK_TIME` (seconds).
pub const MAX_FUTURE_BLOCK_TIME: u64 = 7200;
/// Weight the node reserves for the coinbase in its templates.
pub const COINBASE_WEIGHT_RESERVE: u64 = 4000;

/// Verifies the signatures of a transaction's inputs.
pub trait SignatureVerifier: Send + Sync {
    /// Verifies every input of `tx` against its prevouts.
    ///
    /// # Errors
    /// The first failing input.
    fn verify(&self, tx: &Transaction, prevouts: &[Prevout]) -> Result<(), SpendError>;
}

/// The node's rules: P2WPKH-Lithium, P2PKH-Lithium and single-leaf P2MR spends with ML-DSA-44
/// signatures (`btq_core::signer::verify_transaction`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LithiumVerifier;

impl SignatureVerifier for LithiumVerifier {
    fn verify(&self, tx: &Transaction, prevouts: &[Prevout]) -> Result<(), SpendError> {
        signer::verify_transaction(tx, prevouts)
    }
}

/// An unspent output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// Its value.
    pub value: u64,
    /// Its locking script.
    pub script_pubkey: ScriptBuf,
    /// The height of the block that created it.
    pub height: u32,
    /// Whether it is a coinbase output.
    pub is_coinbase: bool,
}

/// Why a transaction or block was refused; [`ChainRejectError::reason`] gives the node's
/// reject string.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChainRejectError {
    /// The previous block is not the tip.
    #[error("bad-prevblk")]
    BadPrevblk,
    /// nBits differs from the required value.
    #[error("bad-diffbits")]
    BadDiffbits,
    /// Proof of work fails.
    #[error("high-hash")]
    HighHash,
    /// Time not above the median time past.
    #[error("time-too-old")]
    TimeTooOld,
    /// Time more than two hours ahead.
    #[error("time-too-new")]
    TimeTooNew,
    /// Merkle root mismatch or mutation.
    #[error("bad-txnmrklroot")]
    BadMerkleRoot,
    /// No coinbase first.
    #[error("bad-cb-missing")]
    CoinbaseMissing,
    /// More than one coinbase.
    #[error("bad-cb-multiple")]
    CoinbaseMultiple,
    /// BIP34 height wrong.
    #[error("bad-cb-height")]
    CoinbaseHeight,
    /// Witness commitment wrong.
    #[error("bad-witness-merkle-match")]
    WitnessCommitment,
    /// Weight above 8,000,000.
    #[error("bad-blk-weight")]
    Weight,
    /// Coinbase value above subsidy + fees.
    #[error("bad-cb-amount")]
    CoinbaseAmount,
    /// A context-free transaction check failed.
    #[error("{0}")]
    TxCheck(btq_core::tx::TxCheckError),
    /// A transaction appears twice in a block.
    #[error("bad-txns-duplicate")]
    DuplicateTx,
    /// An input is missing or already spent.
    #[error("bad-txns-inputs-missingorspent")]
    MissingOrSpent,
    /// A coinbase output spent before maturity.
    #[error("bad-txns-premature-spend-of-coinbase")]
    PrematureCoinbaseSpend,
    /// Outputs exceed inputs.
    #[error("bad-txns-in-belowout")]
    InBelowOut,
    /// A signature check failed.
    #[error("mandatory-script-verify-flag-failed ({0})")]
    Script(SpendError),
    /// A coinbase sent to the mempool.
    #[error("coinbase")]
    CoinbaseInMempool,
    /// Already in the mempool.
    #[error("txn-already-in-mempool")]
    AlreadyInMempool,
    /// Conflicts with a mempool transaction.
    #[error("txn-mempool-conflict")]
    MempoolConflict,
    /// Not standard.
    #[error("{0}")]
    NonStandard(policy::NonStandardError),
    /// Fee below the minimum relay fee.
    #[error("min relay fee not met")]
    MinRelayFee,
    /// The mempool is at its cap.
    #[error("mempool full")]
    MempoolFull,
}

impl ChainRejectError {
    /// Returns the node's reject string.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// `getblockchaininfo`, the fields the pool uses.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockchainInfo {
    /// `chain`.
    pub chain: String,
    /// `blocks`: the tip height.
    pub blocks: u32,
    /// `bestblockhash`.
    pub best_block_hash: BlockHash,
    /// `difficulty`.
    pub difficulty: f64,
    /// `mediantime`.
    pub median_time: u64,
    /// `initialblockdownload`.
    pub initial_block_download: bool,
}

/// `getmininginfo`, the fields the pool uses.
#[derive(Debug, Clone, PartialEq)]
pub struct MiningInfo {
    /// `blocks`.
    pub blocks: u32,
    /// `difficulty`.
    pub difficulty: f64,
    /// `networkhashps`.
    pub network_hashps: f64,
    /// `pooledtx`.
    pub pooled_tx: u64,
    /// `chain`.
    pub chain: String,
}

/// `validateaddress`, the fields the pool uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressValidation {
    /// `isvalid`.
    pub is_valid: bool,
    /// `scriptPubKey`, when valid.
    pub script_pubkey: Option<ScriptBuf>,
}

#[derive(Debug, Clone)]
struct MempoolEntry {
    tx: Transaction,
    txid: Txid,
    wtxid: Wtxid,
    fee: u64,
    weight: u64,
}

/// Embedded chain limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainConfig {
    /// Most transactions kept in the mempool.
    pub max_mempool_txs: usize,
    /// Template weight budget (the node's default 7,600,000).
    pub block_max_weight: u64,
    /// A fixed proof-of-work target for every block instead of regtest's `0x207fffff`
    /// (about two hashes per block). Tests and demos set a harder one (at most the regtest
    /// limit) so that ordinary shares and blocks differ; `None` keeps regtest's.
    pub pow_bits: Option<CompactTarget>,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            max_mempool_txs: 10_000,
            block_max_weight: policy::DEFAULT_BLOCK_MAX_WEIGHT.to_wu(),
            pow_bits: None,
        }
    }
}

/// The embedded regtest chain.
pub struct EmbeddedChain {
    params: &'static ChainParams,
    config: ChainConfig,
    verifier: Box<dyn SignatureVerifier>,
    /// Height of `chain[0]` (0 from genesis; the snapshot height otherwise).
    base_height: u32,
    /// (hash, time) of every main-chain block from `base_height` on.
    chain: Vec<(BlockHash, u32)>,
    heights: HashMap<BlockHash, u32>,
    utxos: HashMap<OutPoint, Coin>,
    mempool: Vec<MempoolEntry>,
    mempool_spent: HashSet<OutPoint>,
    mempool_seq: u64,
    now: UnixTime,
}

impl core::fmt::Debug for EmbeddedChain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EmbeddedChain")
            .field("height", &self.height())
            .field("tip", &self.tip_hash())
            .field("utxos", &self.utxos.len())
            .field("mempool", &self.mempool.len())
            .finish_non_exhaustive()
    }
}

impl EmbeddedChain {
    /// Creates a regtest chain at its genesis block, verifying Lithium signatures.
    pub fn new_regtest(config: ChainConfig) -> Self {
        Self::with_verifier(config, Box::new(LithiumVerifier))
    }

    /// Creates a regtest chain with a custom signature verifier.
    pub fn with_verifier(config: ChainConfig, verifier: Box<dyn SignatureVerifier>) -> Self {
        let params = Network::Regtest.params();
        let g = params.genesis_block();
        let mut heights = HashMap::new();
        heights.insert(params.genesis_hash(), 0);
        Self {
            params,
            config,
            verifier,
            base_height: 0,
            chain: vec![(params.genesis_hash(), g.header.time)],
            heights,
            utxos: HashMap::new(),
            mempool: Vec::new(),
            mempool_spent: HashSet::new(),
            mempool_seq: 0,
            now: UnixTime::from_secs(u64::from(g.header.time)),
        }
    }

    /// Creates a regtest chain from a snapshot: the tip's hash and height and the times of the
    /// last blocks (oldest first, at most 11 used for the median time past). The UTXO set starts
    /// empty; seed it with [`EmbeddedChain::import_utxo`]. Blocks below the tip are unknown.
    pub fn from_snapshot(
        config: ChainConfig,
        verifier: Box<dyn SignatureVerifier>,
        tip: BlockHash,
        tip_height: u32,
        recent_times: &[u32],
    ) -> Self {
        let mut c = Self::with_verifier(config, verifier);
        let n = recent_times.len().clamp(1, 11);
        let times = recent_times
            .get(recent_times.len().saturating_sub(n)..)
            .unwrap_or(&[]);
        let count = u32::try_from(times.len()).unwrap_or(1).max(1);
        c.base_height = tip_height.saturating_add(1).saturating_sub(count);
        c.chain = times.iter().map(|t| (BlockHash::ZERO, *t)).collect();
        if c.chain.is_empty() {
            c.chain.push((tip, 0));
        }
        if let Some(last) = c.chain.last_mut() {
            last.0 = tip;
        }
        c.heights.clear();
        c.heights.insert(tip, tip_height);
        if let Some(t) = times.last() {
            c.now = UnixTime::from_secs(u64::from(*t));
        }
        c
    }

    /// Sets the chain's wall-clock time (never moves backwards).
    pub fn set_time(&mut self, now: UnixTime) {
        if now > self.now {
            self.now = now;
        }
    }

    /// Returns the chain's time.
    pub fn now(&self) -> UnixTime {
        self.now
    }

    /// Returns the chain parameters.
    pub fn params(&self) -> &'static ChainParams {
        self.params
    }

    /// Returns the `nBits` every block must carry ([`ChainConfig::pow_bits`] or regtest's).
    pub fn bits(&self) -> CompactTarget {
        self.config
            .pow_bits
            .unwrap_or(self.params.genesis_block().header.bits)
    }

    /// Returns the tip height.
    pub fn height(&self) -> u32 {
        u32::try_from(self.chain.len().saturating_sub(1))
            .unwrap_or(u32::MAX)
            .saturating_add(self.base_height)
    }

    /// Returns the tip hash.
    pub fn tip_hash(&self) -> BlockHash {
        self.chain.last().map_or(BlockHash::ZERO, |(h, _)| *h)
    }

    /// Returns the main-chain hash at `height`.
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        let i = height.checked_sub(self.base_height)?;
        self.chain
            .get(usize::try_from(i).ok()?)
            .map(|(h, _)| *h)
            .filter(|h| *h != BlockHash::ZERO)
    }

    /// Returns the median time past of the tip (median of the last 11 block times).
    pub fn median_time_past(&self) -> u32 {
        let start = self.chain.len().saturating_sub(11);
        let mut times: Vec<u32> = self
            .chain
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .map(|(_, t)| *t)
            .collect();
        times.sort_unstable();
        times.get(times.len() / 2).copied().unwrap_or(0)
    }

    /// Returns an unspent output.
    pub fn utxo(&self, outpoint: &OutPoint) -> Option<&Coin> {
        self.utxos.get(outpoint)
    }

    /// Returns the unspent outputs paying `script`.
    pub fn utxos_for(&self, script: &ScriptBuf) -> Vec<(OutPoint, Coin)> {
        self.utxos
            .iter()
            .filter(|(_, c)| &c.script_pubkey == script)
            .map(|(o, c)| (*o, c.clone()))
            .collect()
    }

    /// Returns the number of unspent outputs.
    pub fn utxo_count(&self) -> usize {
        self.utxos.len()
    }

    /// Returns the number of mempool transactions.
    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    /// Adds an unspent output directly (seeding a snapshot, e.g. prevouts from a node dump).
    pub fn import_utxo(&mut self, outpoint: OutPoint, coin: Coin) {
        self.utxos.insert(outpoint, coin);
    }

    fn prevouts_for(
        &self,
        tx: &Transaction,
        spend_height: u32,
        extra: &HashMap<OutPoint, Coin>,
        spent: &HashSet<OutPoint>,
    ) -> Result<(Vec<Prevout>, u64), ChainRejectError> {
        let mut prevouts = Vec::with_capacity(tx.input.len());
        let mut total = 0u64;
        for i in &tx.input {
            if spent.contains(&i.previous_output) {
                return Err(ChainRejectError::MissingOrSpent);
            }
            let coin = extra
                .get(&i.previous_output)
                .or_else(|| self.utxos.get(&i.previous_output))
                .ok_or(ChainRejectError::MissingOrSpent)?;
            if coin.is_coinbase && spend_height.saturating_sub(coin.height) < COINBASE_MATURITY {
                return Err(ChainRejectError::PrematureCoinbaseSpend);
            }
            total = total.saturating_add(coin.value);
            prevouts.push(Prevout {
                value: coin.value,
                script_pubkey: coin.script_pubkey.clone(),
            });
        }
        Ok((prevouts, total))
    }

    /// Accepts a signed transaction into the mempool.
    ///
    /// # Errors
    /// The node's reject reason.
    pub fn accept_transaction(&mut self, tx: Transaction) -> Result<Txid, ChainRejectError> {
        if tx.is_coinbase() {
            return Err(ChainRejectError::CoinbaseInMempool);
        }
        tx.check().map_err(ChainRejectError::TxCheck)?;
        policy::check_standard(&tx).map_err(ChainRejectError::NonStandard)?;
        let txid = tx.txid();
        if self.mempool.iter().any(|e| e.txid == txid) {
            return Err(ChainRejectError::AlreadyInMempool);
        }
        if tx
            .input
            .iter()
            .any(|i| self.mempool_spent.contains(&i.previous_output))
        {
            return Err(ChainRejectError::MempoolConflict);
        }
        if self.mempool.len() >= self.config.max_mempool_txs {
            return Err(ChainRejectError::MempoolFull);
        }
        let (prevouts, total_in) = self.prevouts_for(
            &tx,
            self.height().saturating_add(1),
            &HashMap::new(),
            &HashSet::new(),
        )?;
        let total_out = tx
            .output_value()
            .ok_or(ChainRejectError::TxCheck(
                btq_core::tx::TxCheckError::OutputTotalTooLarge,
            ))?
            .to_sat();
        let fee = total_in
            .checked_sub(total_out)
            .ok_or(ChainRejectError::InBelowOut)?;
        if fee < policy::min_relay_fee(&tx).to_sat() {
            return Err(ChainRejectError::MinRelayFee);
        }
        self.verifier
            .verify(&tx, &prevouts)
            .map_err(ChainRejectError::Script)?;
        for i in &tx.input {
            self.mempool_spent.insert(i.previous_output);
        }
        let weight = tx.weight().to_wu();
        self.mempool.push(MempoolEntry {
            wtxid: tx.wtxid(),
            tx,
            txid,
            fee,
            weight,
        });
        self.mempool_seq = self.mempool_seq.wrapping_add(1);
        Ok(txid)
    }

    /// Returns the template for the next block as the node's `getblocktemplate` JSON result.
    pub fn get_block_template_json(&self) -> serde_json::Value {
        let height = self.height().saturating_add(1);
        let mtp = self.median_time_past();
        let min_time = mtp.saturating_add(1);
        let cur_time = u32::try_from(self.now.as_secs())
            .unwrap_or(u32::MAX)
            .max(min_time);
        let mut budget = self
            .config
            .block_max_weight
            .saturating_sub(COINBASE_WEIGHT_RESERVE);
        let mut txs = Vec::new();
        let mut wtxids = Vec::new();
        let mut fees = 0u64;
        for e in &self.mempool {
            if e.weight > budget {
                continue;
            }
            budget = budget.saturating_sub(e.weight);
            fees = fees.saturating_add(e.fee);
            wtxids.push(e.wtxid);
            txs.push(serde_json::json!({
                "data": btq_core::hex::encode(&btq_core::encoding::encode_to_vec(&e.tx)),
                "txid": e.txid.to_string(),
                "hash": e.wtxid.to_string(),
                "depends": [],
                "fee": e.fee,
                "sigops": 0,
                "weight": e.weight,
            }));
        }
        let bits = self.bits();
        let target = bits.to_target().unwrap_or(self.params.pow_limit);
        let commitment = witness_commitment_script(wtxids, &[0; 32]);
        serde_json::json!({
            "capabilities": ["proposal"],
            "version": self.params.default_block_version,
            "rules": ["csv", "!segwit"],
            "vbavailable": {},
            "vbrequired": 0,
            "previousblockhash": self.tip_hash().to_string(),
            "transactions": txs,
            "coinbaseaux": {},
            "coinbasevalue": self.params.subsidy(height).to_sat().saturating_add(fees),
            "longpollid": format!("{}{}", self.tip_hash(), self.mempool_seq),
            "target": btq_core::hex::encode(&target.to_be_bytes()),
            "mintime": min_time,
            "mutable": ["time", "transactions", "prevblock"],
            "noncerange": "00000000ffffffff",
            "sigoplimit": policy::MAX_BLOCK_SIGOPS_COST,
            "sizelimit": btq_core::block::MAX_BLOCK_SERIALIZED_SIZE,
            "weightlimit": Weight::MAX_BLOCK.to_wu(),
            "curtime": cur_time,
            "bits": format!("{:08x}", bits.to_consensus()),
            "height": height,
            "default_witness_commitment": btq_core::hex::encode(commitment.as_bytes()),
        })
    }

    /// Returns the template for the next block, parsed as the pool parses the node's.
    ///
    /// # Errors
    /// A [`crate::TemplateError`] (a bug in the chain).
    pub fn get_block_template(&self) -> Result<Template, crate::TemplateError> {
        Template::from_json_value(&self.get_block_template_json())
    }

    /// Validates a block and, if valid, connects it to the tip.
    ///
    /// # Errors
    /// The node's reject reason.
    pub fn connect_block(&mut self, block: &Block) -> Result<(), ChainRejectError> {
        let hash = block.block_hash();
        let header = &block.header;
        if header.prev_blockhash != self.tip_hash() {
            return Err(ChainRejectError::BadPrevblk);
        }
        let height = self.height().saturating_add(1);
        if header.bits != self.bits() {
            return Err(ChainRejectError::BadDiffbits);
        }
        if !header.check_pow(self.params.pow_limit) {
            return Err(ChainRejectError::HighHash);
        }
        if header.time <= self.median_time_past() {
            return Err(ChainRejectError::TimeTooOld);
        }
        if u64::from(header.time) > self.now.as_secs().saturating_add(MAX_FUTURE_BLOCK_TIME) {
            return Err(ChainRejectError::TimeTooNew);
        }
        if !block.check_merkle_root() {
            return Err(ChainRejectError::BadMerkleRoot);
        }
        let Some((coinbase, rest)) = block.txdata.split_first() else {
            return Err(ChainRejectError::CoinbaseMissing);
        };
        if !coinbase.is_coinbase() {
            return Err(ChainRejectError::CoinbaseMissing);
        }
        if rest.iter().any(Transaction::is_coinbase) {
            return Err(ChainRejectError::CoinbaseMultiple);
        }
        for tx in &block.txdata {
            tx.check().map_err(ChainRejectError::TxCheck)?;
        }
        if block.bip34_height() != Some(height) {
            return Err(ChainRejectError::CoinbaseHeight);
        }
        if !block.check_witness_commitment() {
            return Err(ChainRejectError::WitnessCommitment);
        }
        if block.weight() > Weight::MAX_BLOCK {
            return Err(ChainRejectError::Weight);
        }
        // Inputs, maturity, values and signatures, with outputs created earlier in the block.
        let mut created: HashMap<OutPoint, Coin> = HashMap::new();
        let mut spent: HashSet<OutPoint> = HashSet::new();
        let mut txids = HashSet::new();
        let mut fees = 0u64;
        for tx in &block.txdata {
            let txid = tx.txid();
            if !txids.insert(txid) {
                return Err(ChainRejectError::DuplicateTx);
            }
            if !tx.is_coinbase() {
                let (prevouts, total_in) = self.prevouts_for(tx, height, &created, &spent)?;
                let total_out = tx.output_value().map_or(u64::MAX, |a| a.to_sat());
                let fee = total_in
                    .checked_sub(total_out)
                    .ok_or(ChainRejectError::InBelowOut)?;
                fees = fees.saturating_add(fee);
                self.verifier
                    .verify(tx, &prevouts)
                    .map_err(ChainRejectError::Script)?;
                for i in &tx.input {
                    spent.insert(i.previous_output);
                    created.remove(&i.previous_output);
                }
            }
            for (vout, o) in tx.output.iter().enumerate() {
                if o.script_pubkey.as_bytes().first() == Some(&0x6a) {
                    continue;
                }
                let vout = u32::try_from(vout).unwrap_or(u32::MAX);
                created.insert(
                    OutPoint::new(txid, vout),
                    Coin {
                        value: o.value,
                        script_pubkey: o.script_pubkey.clone(),
                        height,
                        is_coinbase: tx.is_coinbase(),
                    },
                );
            }
        }
        let paid = coinbase.output_value().map_or(u64::MAX, |a| a.to_sat());
        if paid > self.params.subsidy(height).to_sat().saturating_add(fees) {
            return Err(ChainRejectError::CoinbaseAmount);
        }
        // Connect.
        for o in &spent {
            self.utxos.remove(o);
        }
        self.utxos.extend(created);
        self.chain.push((hash, header.time));
        self.heights.insert(hash, height);
        let confirmed: HashSet<Txid> = txids;
        self.mempool.retain(|e| {
            !confirmed.contains(&e.txid)
                && !e
                    .tx
                    .input
                    .iter()
                    .any(|i| spent.contains(&i.previous_output))
        });
        self.mempool_spent = self
            .mempool
            .iter()
            .flat_map(|e| e.tx.input.iter().map(|i| i.previous_output))
            .collect();
        self.mempool_seq = self.mempool_seq.wrapping_add(1);
        Ok(())
    }

    /// `submitblock`: validates and connects a block, answering as the node does.
    pub fn submit_block(&mut self, block: &Block) -> SubmitOutcome {
        let hash = block.block_hash();
        if self.heights.contains_key(&hash) {
            return SubmitOutcome::Duplicate;
        }
        if block.header.prev_blockhash != self.tip_hash()
            && self.heights.contains_key(&block.header.prev_blockhash)
            && block.header.check_pow(self.params.pow_limit)
        {
            return SubmitOutcome::Inconclusive;
        }
        match self.connect_block(block) {
            Ok(()) => SubmitOutcome::Accepted,
            Err(e) => SubmitOutcome::from_node_str(&e.reason()),
        }
    }

    /// `getblockchaininfo`.
    pub fn blockchain_info(&self) -> BlockchainInfo {
        BlockchainInfo {
            chain: self.params.network.chain_name().to_owned(),
            blocks: self.height(),
            best_block_hash: self.tip_hash(),
            difficulty: self.bits().difficulty(),
            median_time: u64::from(self.median_time_past()),
            initial_block_download: false,
        }
    }

    /// `getmininginfo`.
    pub fn mining_info(&self) -> MiningInfo {
        MiningInfo {
            blocks: self.height(),
            difficulty: self.bits().difficulty(),
            network_hashps: 0.0,
            pooled_tx: self.mempool.len() as u64,
            chain: self.params.network.chain_name().to_owned(),
        }
    }

    /// `validateaddress`.
    pub fn validate_address(&self, address: &str) -> AddressValidation {
        match Address::parse(address, self.params.network) {
            Ok(a) => AddressValidation {
                is_valid: true,
                script_pubkey: Some(a.script_pubkey().clone()),
            },
            Err(_) => AddressValidation {
                is_valid: false,
                script_pubkey: None,
            },
        }
    }
}
