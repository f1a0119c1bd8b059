//! Ledger properties and the store conformance suite, run against every backend: in memory,
//! redb, and PostgreSQL (`backend-postgres`, when `BTQ_TEST_POSTGRES_URL` is set).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    reason = "test code"
)]

use std::collections::BTreeMap;

use btq_core::{Amount, BlockHash, OutPoint, ScriptBuf, Transaction, TxIn, TxOut, Txid};
use btq_payout::ledger::{ChangeSet, Ledger, LedgerError, PayoutStatus};
use btq_payout::store::{MemoryStore, Store, StoreError};
use proptest::prelude::*;

fn bh(i: u32) -> BlockHash {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    BlockHash::from_byte_array(b)
}

fn amt(s: u64) -> Amount {
    Amount::from_sat(s).unwrap()
}

fn credits(v: &[(&str, u64)]) -> BTreeMap<String, Amount> {
    v.iter().map(|(k, s)| ((*k).to_string(), amt(*s))).collect()
}

fn payout_tx(tag: u32, pays: &BTreeMap<String, Amount>) -> Transaction {
    let mut t = [0x55u8; 32];
    t[..4].copy_from_slice(&tag.to_le_bytes());
    Transaction {
        version: 2,
        input: vec![TxIn::new(OutPoint::new(Txid::from_byte_array(t), 0))],
        output: pays
            .values()
            .map(|a| TxOut::new(*a, ScriptBuf::new_p2wpkh(&[3; 20])))
            .collect(),
        lock_time: 0,
    }
}

/// Commits through the store, then applies in memory (the persist-then-apply order).
fn commit<S: Store>(store: &mut S, ledger: &mut Ledger, cs: &ChangeSet) -> Result<(), StoreError> {
    store.commit(cs)?;
    ledger.apply(cs)?;
    Ok(())
}

/// The conformance suite every backend must pass. `fresh` returns an empty store; `reopen`
/// returns the same store re-opened (a restart).
fn conformance<S: Store>(mut fresh: impl FnMut() -> S, mut reopen: impl FnMut(S) -> S) {
    // 1. Round trip, balances, idempotent commit.
    let mut s = fresh();
    let mut l = Ledger::new();
    let cs = l.credit_block(
        bh(1),
        10,
        credits(&[("a", 700), ("b", 300)]),
        credits(&[("c", 50)]),
    );
    commit(&mut s, &mut l, &cs).unwrap();
    commit(&mut s, &mut l, &cs).unwrap();
    assert_eq!(s.load().unwrap(), *l.state());
    assert_eq!(l.balance("a").unwrap().immature, amt(700));
    assert_eq!(l.balance("c").unwrap().immature, amt(50));
    let m = l.mature_block(bh(1)).unwrap();
    commit(&mut s, &mut l, &m).unwrap();
    assert_eq!(l.balance("a").unwrap().mature, amt(700));
    assert_eq!(l.balance("c").unwrap().paid, amt(50));
    // An older status committed later does not move the record back.
    commit(&mut s, &mut l, &cs).unwrap();
    assert_eq!(l.balance("a").unwrap().mature, amt(700));

    // 2. Payout recorded before broadcast; crash; restart; re-broadcast the same bytes.
    let pays = credits(&[("a", 600)]);
    let tx = payout_tx(1, &pays);
    let rec = l.record_payout(&tx, &pays, amt(400)).unwrap();
    commit(&mut s, &mut l, &rec).unwrap();
    // Crash here: memory is lost.
    let mut s = reopen(s);
    let mut l2 = Ledger::from_changeset(&s.load().unwrap()).unwrap();
    assert_eq!(l2.balances().unwrap(), l.balances().unwrap());
    let ub = l2.unbroadcast();
    assert_eq!(ub.len(), 1);
    assert_eq!(ub[0].0, tx.txid());
    assert_eq!(ub[0].1, btq_core::encoding::encode_to_vec(&tx).as_slice());
    assert_eq!(l2.balance("a").unwrap().pending, amt(600));
    assert_eq!(l2.balance("a").unwrap().mature, amt(100));
    // A second payout of the same balance is refused.
    let tx2 = payout_tx(2, &pays);
    assert!(matches!(
        l2.record_payout(&tx2, &pays, amt(400)),
        Err(LedgerError::InsufficientBalance { .. })
    ));
    // Recording the same tx again is a no-op.
    let again = l2.record_payout(&tx, &pays, amt(400)).unwrap();
    commit(&mut s, &mut l2, &again).unwrap();
    assert_eq!(l2.balance("a").unwrap().pending, amt(600));
    let b = l2.mark_broadcast(tx.txid()).unwrap();
    commit(&mut s, &mut l2, &b).unwrap();
    assert!(l2.unbroadcast().is_empty());
    let c = l2.confirm_payout(tx.txid()).unwrap();
    commit(&mut s, &mut l2, &c).unwrap();
    assert_eq!(l2.balance("a").unwrap().paid, amt(600));
    assert_eq!(l2.balance("a").unwrap().pending, amt(0));

    // 3. A conflicting changeset is refused atomically: nothing of it is committed.
    let before = s.load().unwrap();
    let mut bad = l2.credit_block(bh(2), 11, credits(&[("z", 1)]), BTreeMap::new());
    bad.blocks.insert(
        bh(1),
        l2.credit_block(bh(1), 10, credits(&[("a", 701)]), BTreeMap::new())
            .blocks
            .remove(&bh(1))
            .unwrap(),
    );
    assert!(matches!(s.commit(&bad), Err(StoreError::Conflict(_))));
    assert_eq!(s.load().unwrap(), before);
    assert!(l2.apply(&bad).is_err());
    assert_eq!(*l2.state(), before);

    // 4. Orphan reverses exactly.
    let snapshot = l2.balances().unwrap();
    let cs = l2.credit_block(bh(3), 12, credits(&[("a", 5), ("q", 9)]), BTreeMap::new());
    commit(&mut s, &mut l2, &cs).unwrap();
    let o = l2.orphan_block(bh(3)).unwrap();
    commit(&mut s, &mut l2, &o).unwrap();
    let after: BTreeMap<_, _> = l2
        .balances()
        .unwrap()
        .into_iter()
        .filter(|(_, b)| b.total() != Some(Amount::ZERO))
        .collect();
    assert_eq!(after, snapshot);
    assert!(l2.mature_block(bh(3)).is_err());
    let mut s = reopen(s);
    assert_eq!(s.load().unwrap(), *l2.state());
    assert_eq!(l2.recompute_balances().unwrap(), l2.balances().unwrap());

    // 5. Abandoned payout returns the balance; a later confirmation wins.
    let pays = credits(&[("b", 300)]);
    let tx3 = payout_tx(3, &pays);
    let r = l2.record_payout(&tx3, &pays, amt(1)).unwrap();
    commit(&mut s, &mut l2, &r).unwrap();
    let a = l2.abandon_payout(tx3.txid()).unwrap();
    commit(&mut s, &mut l2, &a).unwrap();
    assert_eq!(l2.balance("b").unwrap().mature, amt(300));
    assert_eq!(
        l2.state().payouts[&tx3.txid()].status,
        PayoutStatus::Abandoned
    );
}

#[test]
fn conformance_memory() {
    conformance(MemoryStore::new, |s| s);
}

#[cfg(feature = "backend-redb")]
#[test]
fn conformance_redb() {
    use btq_payout::store::RedbStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let p2 = path.clone();
    conformance(
        || RedbStore::open(&path).unwrap(),
        move |s| {
            drop(s);
            RedbStore::open(&p2).unwrap()
        },
    );
}

#[cfg(feature = "backend-postgres")]
#[test]
fn conformance_postgres() {
    use btq_payout::store::PostgresStore;
    let Ok(url) = std::env::var("BTQ_TEST_POSTGRES_URL") else {
        eprintln!("skipping conformance_postgres: BTQ_TEST_POSTGRES_URL is not set");
        return;
    };
    let prefix = format!("btq_payout_test_{}", std::process::id());
    {
        let mut s = PostgresStore::connect(&url, &prefix).unwrap();
        s.drop_tables().unwrap();
    }
    let u2 = url.clone();
    let p2 = prefix.clone();
    conformance(
        || PostgresStore::connect(&url, &prefix).unwrap(),
        move |s| {
            drop(s);
            PostgresStore::connect(&u2, &p2).unwrap()
        },
    );
    PostgresStore::connect(&url, &prefix)
        .unwrap()
        .drop_tables()
        .unwrap();
}

#[derive(Debug, Clone)]
enum Op {
    Credit(u32, Vec<(u8, u64)>),
    Mature(u32),
    Orphan(u32),
    /// Pay up to this much from account `u8`, crashing after record with probability.
    Pay(u8, u64, bool),
    Confirm(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0u32..12,
            prop::collection::vec((0u8..4, 1u64..1_000_000), 1..4)
        )
            .prop_map(|(b, c)| Op::Credit(b, c)),
        (0u32..12).prop_map(Op::Mature),
        (0u32..12).prop_map(Op::Orphan),
        (0u8..4, 1u64..2_000_000, any::<bool>()).prop_map(|(a, x, c)| Op::Pay(a, x, c)),
        (0usize..8).prop_map(Op::Confirm),
    ]
}

proptest! {
    /// Any history, with crashes between "recorded" and "broadcast": applying any changeset
    /// twice changes nothing, balances equal a recomputation, money is conserved, and nothing
    /// is ever paid twice (sum paid + pending ≤ sum matured credits, per account).
    #[test]
    fn ledger_laws(ops in prop::collection::vec(op(), 1..60)) {
        let mut store = MemoryStore::new();
        let mut l = Ledger::new();
        let mut broadcast: BTreeMap<Txid, u32> = BTreeMap::new();
        let mut txids: Vec<Txid> = Vec::new();
        for (step, op) in ops.into_iter().enumerate() {
            let cs = match op {
                Op::Credit(b, c) => {
                    if l.state().blocks.contains_key(&bh(b)) { continue; }
                    let mut m = BTreeMap::new();
                    for (a, x) in c { *m.entry(format!("m{a}")).or_insert(Amount::ZERO) = amt(x); }
                    l.credit_block(bh(b), b, m, BTreeMap::new())
                }
                Op::Mature(b) => match l.mature_block(bh(b)) { Ok(c) => c, Err(_) => continue },
                Op::Orphan(b) => match l.orphan_block(bh(b)) { Ok(c) => c, Err(_) => continue },
                Op::Pay(a, x, crash) => {
                    let acct = format!("m{a}");
                    let avail = l.balance(&acct).unwrap().mature.to_sat();
                    let x = x.min(avail);
                    if x == 0 { continue; }
                    let pays = credits(&[(acct.as_str(), x)]);
                    let tx = payout_tx(step as u32, &pays);
                    let rec = l.record_payout(&tx, &pays, amt(1)).unwrap();
                    store.commit(&rec).unwrap();
                    if crash {
                        // Crash after the record, before the broadcast: restart from the store.
                        l = Ledger::from_changeset(&store.load().unwrap()).unwrap();
                        // Recovery re-broadcasts exactly the recorded transactions.
                        for (t, raw) in l.unbroadcast() {
                            let tx: Transaction = btq_core::encoding::decode_from_slice(raw).unwrap();
                            prop_assert_eq!(tx.txid(), t);
                            *broadcast.entry(t).or_default() += 1;
                        }
                    } else {
                        l.apply(&rec).unwrap();
                        *broadcast.entry(tx.txid()).or_default() += 1;
                    }
                    txids.push(tx.txid());
                    l.mark_broadcast(tx.txid()).unwrap()
                }
                Op::Confirm(i) => match txids.get(i) { Some(t) => l.confirm_payout(*t).unwrap(), None => continue },
            };
            store.commit(&cs).unwrap();
            let before = l.balances().unwrap();
            l.apply(&cs).unwrap();
            let once = l.balances().unwrap();
            // Applying the same changeset again changes nothing.
            l.apply(&cs).unwrap();
            store.commit(&cs).unwrap();
            prop_assert_eq!(&l.balances().unwrap(), &once);
            prop_assert_eq!(store.load().unwrap(), l.state().clone());
            // Incremental equals from-scratch.
            prop_assert_eq!(l.recompute_balances().unwrap(), once.clone());
            let _ = before;
        }
        // Conservation: balances sum to the credits of blocks not orphaned.
        let credited: u64 = l.state().blocks.values()
            .filter(|b| b.status != btq_payout::ledger::BlockStatus::Orphaned)
            .flat_map(|b| b.credits.values())
            .map(|a| a.to_sat()).sum();
        let total: u64 = l.balances().unwrap().values().map(|b| b.total().unwrap().to_sat()).sum();
        prop_assert_eq!(total, credited);
        // Each transaction is broadcast at most once per record; each record pays once.
        for (t, n) in &broadcast {
            prop_assert_eq!(*n, 1, "tx {} broadcast {} times", t, n);
            prop_assert!(l.state().payouts.contains_key(t));
        }
    }

    /// Orphaning a block reverses its credits exactly, whatever else happened.
    #[test]
    fn orphan_reverses_exactly(c in prop::collection::vec((0u8..5, 1u64..1_000_000_000), 1..6), other in 0u64..1000) {
        let mut l = Ledger::new();
        let base = l.credit_block(bh(100), 1, credits(&[("m0", other + 1)]), BTreeMap::new());
        l.apply(&base).unwrap();
        let before = l.balances().unwrap();
        let mut m = BTreeMap::new();
        for (a, x) in c { m.insert(format!("m{a}"), amt(x)); }
        let cs = l.credit_block(bh(1), 2, m, BTreeMap::new());
        l.apply(&cs).unwrap();
        let o = l.orphan_block(bh(1)).unwrap();
        l.apply(&o).unwrap();
        l.apply(&cs).unwrap(); // a late replay of the credit does not resurrect it
        let after: BTreeMap<_, _> = l.balances().unwrap().into_iter()
            .filter(|(_, b)| b.total() != Some(Amount::ZERO)).collect();
        prop_assert_eq!(after, before);
    }

    /// Merge is commutative and idempotent.
    #[test]
    fn merge_laws(a in 0u8..3, b in 0u8..3) {
        let l = Ledger::new();
        let base = l.credit_block(bh(1), 1, credits(&[("x", 10)]), BTreeMap::new());
        let mut la = Ledger::from_changeset(&base).unwrap();
        let sa = match a { 0 => base.clone(), 1 => la.mature_block(bh(1)).unwrap(), _ => la.orphan_block(bh(1)).unwrap() };
        let sb = match b { 0 => base, 1 => la.mature_block(bh(1)).unwrap(), _ => la.orphan_block(bh(1)).unwrap() };
        let mut ab = sa.clone(); ab.merge(&sb).unwrap();
        let mut ba = sb.clone(); ba.merge(&sa).unwrap();
        prop_assert_eq!(&ab, &ba);
        let mut abb = ab.clone(); abb.merge(&sb).unwrap();
        prop_assert_eq!(&abb, &ab);
        la.apply(&ab).unwrap();
    }
}
