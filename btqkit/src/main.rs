//! `btqkit`: the btq-kit command line.
//!
//! Thin over the libraries: parsing arguments, reading input, printing JSON. Every error is one
//! line on stderr and a non-zero exit.
#![forbid(unsafe_code)]

mod cmd_core;
mod demo;
mod index;
mod payout;
mod pool;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

/// btq-kit: pool, indexer and transaction tools for the BTQ network.
#[derive(Debug, Parser)]
#[command(name = "btqkit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a whole pool on embedded defaults: an in-process regtest chain, the Stratum server
    /// on loopback and built-in CPU miners speaking Stratum over TCP.
    Demo(demo::DemoArgs),
    /// Runs the pool against real BTQ nodes.
    #[command(subcommand)]
    Pool(pool::PoolCommand),
    /// Consolidates the pool's mature P2WPKH-Lithium UTXOs (from `listunspent` JSON) into
    /// standard transactions, signed; writes one transaction hex per line.
    Consolidate(payout::ConsolidateArgs),
    /// Pays a balances file from the pool's UTXOs in batched, signed transactions.
    Payout(payout::PayoutArgs),
    /// The explorer's indexer: follow a node, serve the HTTP API.
    #[command(subcommand)]
    Index(index::IndexCommand),
    /// Transaction tools.
    #[command(subcommand)]
    Tx(cmd_core::TxCommand),
    /// Block tools.
    #[command(subcommand)]
    Block(cmd_core::BlockCommand),
    /// Address tools.
    #[command(subcommand)]
    Address(cmd_core::AddressCommand),
    /// Lithium (ML-DSA-44) key tools.
    #[command(subcommand)]
    Key(cmd_core::KeyCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{} (see --help)", first.trim_end());
            }
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Pool(c) => pool::run(c),
        Command::Consolidate(a) => payout::consolidate(a),
        Command::Payout(a) => payout::payout(a),
        Command::Index(c) => index::run(c),
        Command::Tx(c) => cmd_core::tx(c),
        Command::Block(c) => cmd_core::block(c),
        Command::Address(c) => cmd_core::address(c),
        Command::Key(c) => cmd_core::key(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {}", one_line(&e));
            }
            ExitCode::FAILURE
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        s.push_str(": ");
        s.push_str(&cause.to_string());
    }
    s.replace('\n', " ")
}
