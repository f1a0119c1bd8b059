//! The balances ledger: block and payout records, from which every balance is derived.
//!
//! The persistent state is a [`ChangeSet`]: block records (credits per account, with a status
//! Immature → Mature, or Orphaned) and payout records (payments per account, the txid and the
//! raw transaction, with a status Recorded → Broadcast → Confirmed, or Abandoned). Merging two
//! changesets keeps, per record, the later status (statuses only move forward), so merge is
//! idempotent, commutative and associative: applying any changeset twice, or replaying a
//! committed one after a crash, changes nothing. Balances are a function of the records:
//!
//! | balance | sum over |
//! |---|---|
//! | immature | credits and coinbase payments of Immature blocks |
//! | mature | credits of Mature blocks − pending − paid by payout |
//! | pending | payments of Recorded and Broadcast payouts |
//! | paid | payments of Confirmed payouts + coinbase payments of Mature blocks |
//!
//! Orphaned blocks and Abandoned payouts count for nothing, so an orphan reverses its credits
//! exactly. The payout protocol is: [`Ledger::record_payout`] → commit → broadcast →
//! [`Ledger::mark_broadcast`] → commit; after a crash, [`Ledger::unbroadcast`] lists the payouts
//! to re-broadcast (the same raw transaction, never a new one). A payout may only be abandoned
//! once its transaction can no longer confirm (an input was spent by another transaction).

use std::collections::BTreeMap;

use btq_core::{Amount, BlockHash, Transaction, Txid, encoding};
use thiserror::Error;

/// An error applying or building a ledger change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Two records for the same block disagree on its credits or height.
    #[error("conflicting records for block {0}")]
    ConflictingBlock(BlockHash),
    /// Two records for the same payout disagree on its payments or transaction.
    #[error("conflicting records for payout {0}")]
    ConflictingPayout(Txid),
    /// The block is not in the ledger.
    #[error("unknown block {0}")]
    UnknownBlock(BlockHash),
    /// The payout is not in the ledger.
    #[error("unknown payout {0}")]
    UnknownPayout(Txid),
    /// A payout would pay an account more than its mature balance.
    #[error(
        "account {account}: payout of {amount} sat exceeds the mature balance of {available} sat"
    )]
    InsufficientBalance {
        /// The account.
        account: String,
        /// The payment.
        amount: u64,
        /// The mature balance.
        available: u64,
    },
    /// A payout that pays nothing.
    #[error("payout {0} pays nobody")]
    EmptyPayout(Txid),
    /// A status change the record's current status does not allow.
    #[error("{what}: cannot move from {from:?} to {to}")]
    BadTransition {
        /// The record.
        what: String,
        /// Its status.
        from: String,
        /// The status asked for.
        to: &'static str,
    },
    /// A balance sum out of range (a corrupt store).
    #[error("balance overflow for account {0}")]
    Overflow(String),
}

/// A block's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockStatus {
    /// Found, coinbase not yet spendable.
    Immature = 0,
    /// Coinbase matured: credits are payable.
    Mature = 1,
    /// Left the best chain: credits reversed.
    Orphaned = 2,
}

/// A payout's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PayoutStatus {
    /// Recorded (the balance is pending); not yet known to be broadcast.
    Recorded = 0,
    /// Accepted by the node.
    Broadcast = 1,
    /// Can no longer confirm (its inputs were spent elsewhere): the balance is returned.
    Abandoned = 2,
    /// Confirmed: paid.
    Confirmed = 3,
}

/// A found block's credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRecord {
    /// The block height.
    pub height: u32,
    /// Credits to ledger accounts (miners, fee recipients, the remainder account).
    pub credits: BTreeMap<String, Amount>,
    /// Amounts paid directly in the coinbase (paid when the block matures).
    pub coinbase_paid: BTreeMap<String, Amount>,
    /// The status.
    pub status: BlockStatus,
}

/// A payout transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRecord {
    /// Payments per account.
    pub payments: BTreeMap<String, Amount>,
    /// The network fee (paid by the pool).
    pub fee: Amount,
    /// The signed transaction, to re-broadcast identically after a crash.
    pub raw_tx: Vec<u8>,
    /// The status.
    pub status: PayoutStatus,
}

/// A set of record changes: the unit of atomic commit. Merge keeps the later status per record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeSet {
    /// Block records by hash.
    pub blocks: BTreeMap<BlockHash, BlockRecord>,
    /// Payout records by txid.
    pub payouts: BTreeMap<Txid, PayoutRecord>,
}

impl ChangeSet {
    /// Returns true if there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.payouts.is_empty()
    }

    /// Merges `other` into `self` (per record, the later status wins).
    ///
    /// # Errors
    /// Records for the same block or payout with different contents; `self` is unchanged then.
    pub fn merge(&mut self, other: &Self) -> Result<(), LedgerError> {
        for (h, b) in &other.blocks {
            if let Some(mine) = self.blocks.get(h) {
                merge_block(*h, mine, b)?;
            }
        }
        for (t, p) in &other.payouts {
            if let Some(mine) = self.payouts.get(t) {
                merge_payout(*t, mine, p)?;
            }
        }
        for (h, b) in &other.blocks {
            let merged = match self.blocks.get(h) {
                Some(mine) => merge_block(*h, mine, b)?,
                None => b.clone(),
            };
            self.blocks.insert(*h, merged);
        }
        for (t, p) in &other.payouts {
            let merged = match self.payouts.get(t) {
                Some(mine) => merge_payout(*t, mine, p)?,
                None => p.clone(),
            };
            self.payouts.insert(*t, merged);
        }
        Ok(())
    }
}

/// Merges two records of one block.
///
/// # Errors
/// [`LedgerError::ConflictingBlock`] if their contents differ.
pub fn merge_block(
    hash: BlockHash,
    a: &BlockRecord,
    b: &BlockRecord,
) -> Result<BlockRecord, LedgerError> {
    if a.height != b.height || a.credits != b.credits || a.coinbase_paid != b.coinbase_paid {
        return Err(LedgerError::ConflictingBlock(hash));
    }
    let mut r = a.clone();
    r.status = a.status.max(b.status);
    Ok(r)
}

/// Merges two records of one payout.
///
/// # Errors
/// [`LedgerError::ConflictingPayout`] if their contents differ.
pub fn merge_payout(
    txid: Txid,
    a: &PayoutRecord,
    b: &PayoutRecord,
) -> Result<PayoutRecord, LedgerError> {
    if a.payments != b.payments || a.fee != b.fee || a.raw_tx != b.raw_tx {
        return Err(LedgerError::ConflictingPayout(txid));
    }
    let mut r = a.clone();
    r.status = a.status.max(b.status);
    Ok(r)
}

/// An account's balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    /// Credited in blocks not yet mature (including coinbase payments).
    pub immature: Amount,
    /// Payable now.
    pub mature: Amount,
    /// In payouts recorded or broadcast, not yet confirmed.
    pub pending: Amount,
    /// Paid (confirmed payouts and matured coinbase payments).
    pub paid: Amount,
}

impl Balance {
    /// Returns the sum of all four.
    pub fn total(&self) -> Option<Amount> {
        Amount::checked_sum([self.immature, self.mature, self.pending, self.paid])
    }
}

/// Per-account accumulators (all non-negative sums).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Acc {
    credit_immature: u64,
    credit_mature: u64,
    cb_immature: u64,
    cb_mature: u64,
    pending: u64,
    paid: u64,
}

#[derive(Clone, Copy)]
enum Field {
    CreditImmature,
    CreditMature,
    CbImmature,
    CbMature,
    Pending,
    Paid,
}

impl Acc {
    fn slot(&mut self, f: Field) -> &mut u64 {
        match f {
            Field::CreditImmature => &mut self.credit_immature,
            Field::CreditMature => &mut self.credit_mature,
            Field::CbImmature => &mut self.cb_immature,
            Field::CbMature => &mut self.cb_mature,
            Field::Pending => &mut self.pending,
            Field::Paid => &mut self.paid,
        }
    }

    fn balance(&self) -> Option<Balance> {
        let mature = self
            .credit_mature
            .checked_sub(self.pending)?
            .checked_sub(self.paid)?;
        Some(Balance {
            immature: Amount::from_sat(self.credit_immature.checked_add(self.cb_immature)?).ok()?,
            mature: Amount::from_sat(mature).ok()?,
            pending: Amount::from_sat(self.pending).ok()?,
            paid: Amount::from_sat(self.paid.checked_add(self.cb_mature)?).ok()?,
        })
    }
}

fn block_contrib(b: &BlockRecord) -> Vec<(&str, Field, u64)> {
    let (cf, pf) = match b.status {
        BlockStatus::Immature => (Some(Field::CreditImmature), Some(Field::CbImmature)),
        BlockStatus::Mature => (Some(Field::CreditMature), Some(Field::CbMature)),
        BlockStatus::Orphaned => (None, None),
    };
    let mut v = Vec::new();
    if let Some(f) = cf {
        v.extend(b.credits.iter().map(|(a, x)| (a.as_str(), f, x.to_sat())));
    }
    if let Some(f) = pf {
        v.extend(
            b.coinbase_paid
                .iter()
                .map(|(a, x)| (a.as_str(), f, x.to_sat())),
        );
    }
    v
}

fn payout_contrib(p: &PayoutRecord) -> Vec<(&str, Field, u64)> {
    let f = match p.status {
        PayoutStatus::Recorded | PayoutStatus::Broadcast => Field::Pending,
        PayoutStatus::Confirmed => Field::Paid,
        PayoutStatus::Abandoned => return Vec::new(),
    };
    p.payments
        .iter()
        .map(|(a, x)| (a.as_str(), f, x.to_sat()))
        .collect()
}

/// The ledger: the merged records and the balances derived from them.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    state: ChangeSet,
    acc: BTreeMap<String, Acc>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// A ledger from a store's contents.
    ///
    /// # Errors
    /// As [`Ledger::apply`].
    pub fn from_changeset(cs: &ChangeSet) -> Result<Self, LedgerError> {
        let mut l = Self::new();
        l.apply(cs)?;
        Ok(l)
    }

    /// Returns all records.
    pub fn state(&self) -> &ChangeSet {
        &self.state
    }

    fn add(&mut self, contrib: &[(&str, Field, u64)], sub: bool) -> Result<(), LedgerError> {
        for (a, f, x) in contrib {
            let acc = self.acc.entry((*a).to_string()).or_default();
            let slot = acc.slot(*f);
            *slot = if sub {
                slot.checked_sub(*x)
            } else {
                slot.checked_add(*x)
            }
            .ok_or_else(|| LedgerError::Overflow((*a).to_string()))?;
        }
        Ok(())
    }

    /// Applies a changeset (already committed to the store). Idempotent: applying the same
    /// changeset again, or one with older statuses, changes nothing.
    ///
    /// # Errors
    /// Conflicting records; the ledger is unchanged then.
    pub fn apply(&mut self, cs: &ChangeSet) -> Result<(), LedgerError> {
        // Validate everything before touching state, so a failure leaves the ledger as it was.
        let mut merged_blocks = Vec::with_capacity(cs.blocks.len());
        for (h, b) in &cs.blocks {
            let old = self.state.blocks.get(h);
            let new = match old {
                Some(o) => merge_block(*h, o, b)?,
                None => b.clone(),
            };
            merged_blocks.push((*h, old.cloned(), new));
        }
        let mut merged_payouts = Vec::with_capacity(cs.payouts.len());
        for (t, p) in &cs.payouts {
            let old = self.state.payouts.get(t);
            let new = match old {
                Some(o) => merge_payout(*t, o, p)?,
                None => p.clone(),
            };
            merged_payouts.push((*t, old.cloned(), new));
        }
        let backup = self.acc.clone();
        let r = (|| {
            for (_, old, new) in &merged_blocks {
                if let Some(o) = old {
                    self.add(&block_contrib(o), true)?;
                }
                self.add(&block_contrib(new), false)?;
            }
            for (_, old, new) in &merged_payouts {
                if let Some(o) = old {
                    self.add(&payout_contrib(o), true)?;
                }
                self.add(&payout_contrib(new), false)?;
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.acc = backup;
            return Err(e);
        }
        for (h, _, new) in merged_blocks {
            self.state.blocks.insert(h, new);
        }
        for (t, _, new) in merged_payouts {
            self.state.payouts.insert(t, new);
        }
        Ok(())
    }

    /// Returns an account's balances (zero for an unknown account).
    ///
    /// # Errors
    /// [`LedgerError::Overflow`] for an inconsistent state (more paid than credited).
    pub fn balance(&self, account: &str) -> Result<Balance, LedgerError> {
        match self.acc.get(account) {
            None => Ok(Balance::default()),
            Some(a) => a
                .balance()
                .ok_or_else(|| LedgerError::Overflow(account.to_string())),
        }
    }

    /// Returns the balances of every account with a non-zero record.
    ///
    /// # Errors
    /// As [`Ledger::balance`].
    pub fn balances(&self) -> Result<BTreeMap<String, Balance>, LedgerError> {
        self.acc
            .iter()
            .filter(|(_, a)| **a != Acc::default())
            .map(|(k, a)| {
                a.balance()
                    .map(|b| (k.clone(), b))
                    .ok_or_else(|| LedgerError::Overflow(k.clone()))
            })
            .collect()
    }

    /// Recomputes every balance from the records alone (for audits and tests; the result
    /// equals [`Ledger::balances`]).
    ///
    /// # Errors
    /// As [`Ledger::balance`].
    pub fn recompute_balances(&self) -> Result<BTreeMap<String, Balance>, LedgerError> {
        let fresh = Self::from_changeset(&self.state)?;
        fresh.balances()
    }

    /// Records a found block's credits (from [`crate::Distribution::account_totals`]) and any
    /// coinbase payments, as immature.
    pub fn credit_block(
        &self,
        hash: BlockHash,
        height: u32,
        credits: BTreeMap<String, Amount>,
        coinbase_paid: BTreeMap<String, Amount>,
    ) -> ChangeSet {
        let mut cs = ChangeSet::default();
        cs.blocks.insert(
            hash,
            BlockRecord {
                height,
                credits,
                coinbase_paid,
                status: BlockStatus::Immature,
            },
        );
        cs
    }

    fn block_status(&self, hash: BlockHash, status: BlockStatus) -> Result<ChangeSet, LedgerError> {
        let b = self
            .state
            .blocks
            .get(&hash)
            .ok_or(LedgerError::UnknownBlock(hash))?;
        if b.status == BlockStatus::Orphaned && status != BlockStatus::Orphaned {
            return Err(LedgerError::BadTransition {
                what: format!("block {hash}"),
                from: format!("{:?}", b.status),
                to: "mature",
            });
        }
        // A matured coinbase is 100 blocks deep: its credits may already be paid out, and a
        // reorg that deep needs an operator, not an automatic reversal.
        if b.status == BlockStatus::Mature && status == BlockStatus::Orphaned {
            return Err(LedgerError::BadTransition {
                what: format!("block {hash}"),
                from: format!("{:?}", b.status),
                to: "orphaned",
            });
        }
        let mut r = b.clone();
        r.status = r.status.max(status);
        let mut cs = ChangeSet::default();
        cs.blocks.insert(hash, r);
        Ok(cs)
    }

    /// Marks a block's coinbase mature: its credits become payable.
    ///
    /// # Errors
    /// An unknown or orphaned block.
    pub fn mature_block(&self, hash: BlockHash) -> Result<ChangeSet, LedgerError> {
        self.block_status(hash, BlockStatus::Mature)
    }

    /// Marks an immature block orphaned: its credits are reversed exactly.
    ///
    /// # Errors
    /// An unknown block, or one already mature (a reorg deeper than coinbase maturity is left
    /// to the operator).
    pub fn orphan_block(&self, hash: BlockHash) -> Result<ChangeSet, LedgerError> {
        self.block_status(hash, BlockStatus::Orphaned)
    }

    /// Records a signed payout transaction before it is broadcast: its payments move from
    /// mature to pending. Commit the changeset, then broadcast `tx`.
    ///
    /// # Errors
    /// A payment above an account's mature balance, an empty payout, or a different payout
    /// already recorded under the same txid.
    pub fn record_payout(
        &self,
        tx: &Transaction,
        payments: &BTreeMap<String, Amount>,
        fee: Amount,
    ) -> Result<ChangeSet, LedgerError> {
        let txid = tx.txid();
        let rec = PayoutRecord {
            payments: payments.clone(),
            fee,
            raw_tx: encoding::encode_to_vec(tx),
            status: PayoutStatus::Recorded,
        };
        if let Some(existing) = self.state.payouts.get(&txid) {
            merge_payout(txid, existing, &rec)?;
            let mut cs = ChangeSet::default();
            cs.payouts.insert(txid, existing.clone());
            return Ok(cs);
        }
        if payments.values().all(|a| a.to_sat() == 0) {
            return Err(LedgerError::EmptyPayout(txid));
        }
        for (account, amt) in payments {
            let available = self.balance(account)?.mature;
            if *amt > available {
                return Err(LedgerError::InsufficientBalance {
                    account: account.clone(),
                    amount: amt.to_sat(),
                    available: available.to_sat(),
                });
            }
        }
        let mut cs = ChangeSet::default();
        cs.payouts.insert(txid, rec);
        Ok(cs)
    }

    fn payout_status(&self, txid: Txid, status: PayoutStatus) -> Result<ChangeSet, LedgerError> {
        let p = self
            .state
            .payouts
            .get(&txid)
            .ok_or(LedgerError::UnknownPayout(txid))?;
        let mut r = p.clone();
        r.status = r.status.max(status);
        let mut cs = ChangeSet::default();
        cs.payouts.insert(txid, r);
        Ok(cs)
    }

    /// Marks a recorded payout broadcast.
    ///
    /// # Errors
    /// An unknown payout.
    pub fn mark_broadcast(&self, txid: Txid) -> Result<ChangeSet, LedgerError> {
        self.payout_status(txid, PayoutStatus::Broadcast)
    }

    /// Marks a payout confirmed: pending becomes paid.
    ///
    /// # Errors
    /// An unknown payout.
    pub fn confirm_payout(&self, txid: Txid) -> Result<ChangeSet, LedgerError> {
        self.payout_status(txid, PayoutStatus::Confirmed)
    }

    /// Marks a payout abandoned (its transaction can never confirm): pending returns to
    /// mature.
    ///
    /// # Errors
    /// An unknown payout, or one already confirmed.
    pub fn abandon_payout(&self, txid: Txid) -> Result<ChangeSet, LedgerError> {
        if let Some(p) = self.state.payouts.get(&txid)
            && p.status == PayoutStatus::Confirmed
        {
            return Err(LedgerError::BadTransition {
                what: format!("payout {txid}"),
                from: "Confirmed".into(),
                to: "abandoned",
            });
        }
        self.payout_status(txid, PayoutStatus::Abandoned)
    }

    /// Returns the payouts recorded but not known to be broadcast: after a restart,
    /// re-broadcast exactly these raw transactions (never build new ones for them).
    pub fn unbroadcast(&self) -> Vec<(Txid, &[u8])> {
        self.state
            .payouts
            .iter()
            .filter(|(_, p)| p.status == PayoutStatus::Recorded)
            .map(|(t, p)| (*t, p.raw_tx.as_slice()))
            .collect()
    }

    /// Returns the accounts whose mature balance is at least `min`, with that balance.
    ///
    /// # Errors
    /// As [`Ledger::balances`].
    pub fn payable(&self, min: Amount) -> Result<Vec<(String, Amount)>, LedgerError> {
        Ok(self
            .balances()?
            .into_iter()
            .filter(|(_, b)| b.mature >= min && b.mature.to_sat() > 0)
            .map(|(a, b)| (a, b.mature))
            .collect())
    }
}
