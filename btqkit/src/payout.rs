//! `btqkit consolidate` and `btqkit payout`: plan, sign and print pool transactions (hex, one
//! per line) from the node's `listunspent`/`scantxoutset` JSON. Nothing is printed unless every
//! transaction was built: problems are listed per input (or per payee) on stderr instead.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use btq_core::params::Network;
use btq_core::{ScriptBuf, Transaction, encoding, hex};
use btq_payout::plan::{
    ConsolidationConfig, DEFAULT_MAX_FEERATE, MempoolState, PayoutConfig, PlannedTx,
    plan_consolidation, plan_payouts,
};
use btq_payout::utxo::{MAX_UTXO_JSON_LEN, parse_payees, parse_utxos};
use clap::Args;

/// Arguments of `btqkit consolidate`.
#[derive(Debug, Args)]
pub(crate) struct ConsolidateArgs {
    /// The node's `listunspent` (or `scantxoutset`) JSON.
    #[arg(long)]
    utxos: PathBuf,
    /// Key file: JSON {"node_keypair_hex": …} or the hex itself.
    #[arg(long)]
    key: PathBuf,
    /// Destination: a pool P2WPKH-Lithium address.
    #[arg(long)]
    to: String,
    /// Fee rate in sat/vB (vsize = ceil(weight / 16)).
    #[arg(long)]
    feerate: u64,
    /// Refuse fee rates above this (sat/vB).
    #[arg(long, default_value_t = DEFAULT_MAX_FEERATE)]
    max_feerate: u64,
    /// Network: main, test, signet or regtest.
    #[arg(long, short = 'n', default_value = "main")]
    network: Network,
    /// Plan the whole backlog instead of one block's worth (~1,800 inputs).
    #[arg(long)]
    all: bool,
    /// Leave out ineligible inputs (immature, foreign, uneconomic) with a warning instead of
    /// failing.
    #[arg(long)]
    skip_ineligible: bool,
}

/// Arguments of `btqkit payout`.
#[derive(Debug, Args)]
pub(crate) struct PayoutArgs {
    /// Balances to pay: `[{"account"?, "address", "amount"}]` or `{"<address>": amount}`, in
    /// decimal BTQ.
    #[arg(long)]
    balances: PathBuf,
    /// The node's `listunspent` (or `scantxoutset`) JSON.
    #[arg(long)]
    utxos: PathBuf,
    /// Key file: JSON {"node_keypair_hex": …} or the hex itself.
    #[arg(long)]
    key: PathBuf,
    /// Change: a pool P2WPKH-Lithium address.
    #[arg(long)]
    change: String,
    /// Fee rate in sat/vB.
    #[arg(long)]
    feerate: u64,
    /// Refuse fee rates above this (sat/vB).
    #[arg(long, default_value_t = DEFAULT_MAX_FEERATE)]
    max_feerate: u64,
    /// The minimum payout in BTQ; smaller balances wait.
    #[arg(long, default_value = "0.001")]
    min_payout: String,
    /// Network: main, test, signet or regtest.
    #[arg(long, short = 'n', default_value = "main")]
    network: Network,
    /// Leave out ineligible inputs with a warning instead of failing.
    #[arg(long)]
    skip_ineligible: bool,
}

fn read_limited(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > MAX_UTXO_JSON_LEN as u64 {
        bail!(
            "{} is larger than {} bytes",
            path.display(),
            MAX_UTXO_JSON_LEN
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn pool_script(addr: &str, network: Network, what: &str) -> Result<ScriptBuf> {
    let a = btq_core::Address::parse(addr, network).with_context(|| format!("{what} address"))?;
    if a.script_type() != btq_core::script::ScriptType::P2wpkh {
        bail!("{what} address {addr} is not a P2WPKH-Lithium address");
    }
    Ok(a.script_pubkey().clone())
}

fn report_inputs(rejected: &[btq_payout::plan::RejectedInput], skip: bool) -> Result<()> {
    if rejected.is_empty() {
        return Ok(());
    }
    let mut err = std::io::stderr().lock();
    for r in rejected {
        writeln!(err, "input {}: {}", r.outpoint, r.issue)?;
    }
    if !skip {
        bail!(
            "{} input(s) cannot be spent (listed above); nothing written (use --skip-ineligible to leave them out)",
            rejected.len()
        );
    }
    Ok(())
}

fn sign_and_print(planned: &[PlannedTx], key: &btq_core::lithium::Keypair) -> Result<()> {
    let txs: Vec<Transaction> = match btq_payout::sign_all(planned, key) {
        Ok(t) => t,
        Err(errs) => {
            let mut err = std::io::stderr().lock();
            for e in &errs {
                writeln!(err, "{e}")?;
            }
            bail!("{} transaction(s) failed; nothing written", errs.len());
        }
    };
    let mut out = String::new();
    for t in &txs {
        out.push_str(&hex::encode(&encoding::encode_to_vec(t)));
        out.push('\n');
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

/// Runs `btqkit consolidate`.
///
/// # Errors
/// Unreadable files, a bad address or fee rate, ineligible inputs, or a signing failure.
pub(crate) fn consolidate(args: ConsolidateArgs) -> Result<()> {
    let utxos = parse_utxos(&read_limited(&args.utxos)?)?;
    let key = crate::cmd_core::read_key_file(&args.key)?;
    let dest = pool_script(&args.to, args.network, "destination")?;
    let cfg = ConsolidationConfig {
        feerate: args.feerate,
        max_feerate: args.max_feerate,
        weight_budget: if args.all {
            u64::MAX
        } else {
            ConsolidationConfig::default().weight_budget
        },
        ..ConsolidationConfig::default()
    };
    let h = key.public_key().hash160();
    let plan = plan_consolidation(&utxos, &h, &dest, &MempoolState::default(), &cfg)?;
    report_inputs(&plan.rejected, args.skip_ineligible)?;
    if plan.deferred > 0 {
        eprintln!(
            "{} eligible input(s) left for a later run (one block's worth per run; --all plans everything)",
            plan.deferred
        );
    }
    sign_and_print(&plan.txs, &key)
}

/// Runs `btqkit payout`.
///
/// # Errors
/// Unreadable files, a bad address or fee rate, refused payees (Taproot, invalid, dust),
/// ineligible inputs, or a signing failure.
pub(crate) fn payout(args: PayoutArgs) -> Result<()> {
    let payees = parse_payees(&read_limited(&args.balances)?)?;
    let utxos = parse_utxos(&read_limited(&args.utxos)?)?;
    let key = crate::cmd_core::read_key_file(&args.key)?;
    let change = pool_script(&args.change, args.network, "change")?;
    let cfg = PayoutConfig {
        network: args.network,
        feerate: args.feerate,
        max_feerate: args.max_feerate,
        min_payout: btq_core::Amount::from_btq_str(&args.min_payout).context("--min-payout")?,
        ..PayoutConfig::default()
    };
    let h = key.public_key().hash160();
    let plan = plan_payouts(&payees, &utxos, &h, &change, &MempoolState::default(), &cfg)?;
    if !plan.refused.is_empty() {
        let mut err = std::io::stderr().lock();
        for e in &plan.refused {
            writeln!(err, "{e}")?;
        }
        bail!(
            "{} payee(s) refused (listed above); nothing written",
            plan.refused.len()
        );
    }
    report_inputs(&plan.rejected_inputs, args.skip_ineligible)?;
    for (account, why) in &plan.deferred {
        eprintln!("{account}: not paid this time ({why:?})");
    }
    let planned: Vec<PlannedTx> = plan.txs.iter().map(|p| p.tx.clone()).collect();
    sign_and_print(&planned, &key)
}
