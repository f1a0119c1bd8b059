//! `tx`, `block`, `address` and `key` commands.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use btq_core::address::{self, Address};
use btq_core::block::{Block, MAX_BLOCK_SERIALIZED_SIZE};
use btq_core::encoding;
use btq_core::hex;
use btq_core::lithium::Keypair;
use btq_core::params::{NETWORKS, Network};
use btq_core::script::{P2mrTree, ScriptBuf};
use btq_core::tx::Transaction;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// The most hex characters read from an argument or stdin: a maximal block, plus whitespace.
const MAX_HEX_INPUT: usize = 2 * MAX_BLOCK_SERIALIZED_SIZE + 4096;

#[derive(Debug, Args)]
pub(crate) struct NetworkArg {
    /// Network: main, test, signet or regtest.
    #[arg(long, short = 'n', default_value = "main")]
    network: Network,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TxCommand {
    /// Decodes a raw transaction (hex argument, or `-` for stdin) to JSON.
    Decode {
        #[command(flatten)]
        net: NetworkArg,
        /// The transaction hex, or `-` to read stdin.
        hex: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum BlockCommand {
    /// Decodes a raw block (hex argument, or `-` for stdin) to JSON.
    Decode {
        #[command(flatten)]
        net: NetworkArg,
        /// The block hex, or `-` to read stdin.
        hex: String,
    },
    /// Prints a network's built-in genesis block as hex.
    Genesis {
        #[command(flatten)]
        net: NetworkArg,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AddressCommand {
    /// Decodes an address of any network: network(s), scriptPubKey and type.
    Decode {
        /// The address.
        address: String,
    },
    /// Renders a scriptPubKey (hex) as the node's chain RPCs do.
    Encode {
        #[command(flatten)]
        net: NetworkArg,
        /// The scriptPubKey hex.
        script_hex: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Generates a Lithium key from a 32-byte seed (or from the OS RNG) and prints its public key
    /// and addresses on every network. Secret material goes only to `--secret-out`.
    Generate {
        /// A 32-byte seed as hex (ML-DSA-44 KeyGen_internal(ξ)).
        #[arg(long)]
        seed: Option<String>,
        /// Where to write the secret key file (created with owner-only permissions; refuses to
        /// overwrite).
        #[arg(long)]
        secret_out: Option<PathBuf>,
    },
    /// Prints the public key and addresses of a secret key file.
    Show {
        /// The secret key file written by `key generate`.
        #[arg(long)]
        key: PathBuf,
    },
}

fn read_hex_input(arg: &str) -> Result<Vec<u8>> {
    let text = if arg == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .take(MAX_HEX_INPUT as u64 + 1)
            .read_to_string(&mut buf)
            .context("reading stdin")?;
        if buf.len() > MAX_HEX_INPUT {
            bail!("input exceeds {MAX_HEX_INPUT} characters");
        }
        buf
    } else {
        arg.to_string()
    };
    let trimmed: String = text.split_whitespace().collect();
    Ok(hex::decode_bounded(&trimmed, MAX_BLOCK_SERIALIZED_SIZE)?)
}

fn print_json(v: &Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Renders a transaction as JSON, with the true vsize (the node's `decoderawtransaction` puts
/// the weight in `vsize`).
pub(crate) fn tx_json(tx: &Transaction, network: Network) -> Value {
    let inputs: Vec<Value> = tx
        .input
        .iter()
        .map(|i| {
            let mut v = json!({
                "script_sig": i.script_sig.to_string(),
                "witness": i.witness.items().iter().map(|w| hex::encode(w)).collect::<Vec<_>>(),
                "sequence": i.sequence,
            });
            if let Some(o) = v.as_object_mut() {
                if tx.is_coinbase() {
                    o.insert("coinbase".into(), json!(true));
                } else {
                    o.insert(
                        "prevout".into(),
                        json!({"txid": i.previous_output.txid.to_string(), "vout": i.previous_output.vout}),
                    );
                }
            }
            v
        })
        .collect();
    let outputs: Vec<Value> = tx
        .output
        .iter()
        .enumerate()
        .map(|(n, o)| {
            let ty = o.script_pubkey.script_type();
            json!({
                "n": n,
                "value": o.value,
                "script_pubkey": o.script_pubkey.to_string(),
                "type": ty.rpc_name(),
                "address": Address::from_script(&o.script_pubkey, network).ok().map(|a| a.to_string()),
            })
        })
        .collect();
    json!({
        "txid": tx.txid().to_string(),
        "wtxid": tx.wtxid().to_string(),
        "size": tx.total_size(),
        "stripped_size": tx.stripped_size(),
        "weight": tx.weight().to_wu(),
        "vsize": tx.vsize(),
        "version": tx.version,
        "locktime": tx.lock_time,
        "inputs": inputs,
        "outputs": outputs,
    })
}

pub(crate) fn tx(cmd: TxCommand) -> Result<()> {
    match cmd {
        TxCommand::Decode { net, hex } => {
            let bytes = read_hex_input(&hex)?;
            let tx: Transaction =
                encoding::decode_from_slice(&bytes).context("invalid transaction")?;
            print_json(&tx_json(&tx, net.network))
        }
    }
}

pub(crate) fn block(cmd: BlockCommand) -> Result<()> {
    match cmd {
        BlockCommand::Decode { net, hex } => {
            let bytes = read_hex_input(&hex)?;
            let block: Block = encoding::decode_from_slice(&bytes).context("invalid block")?;
            let params = net.network.params();
            let h = &block.header;
            print_json(&json!({
                "hash": block.block_hash().to_string(),
                "version": h.version,
                "version_hex": format!("{:08x}", h.version),
                "previousblockhash": h.prev_blockhash.to_string(),
                "merkleroot": h.merkle_root.to_string(),
                "time": h.time,
                "bits": h.bits.to_string(),
                "nonce": h.nonce,
                "difficulty": h.difficulty(),
                "chainwork_of_block": h.target().map(|t| t.to_work().to_string()).ok(),
                "pow_valid": h.check_pow(params.pow_limit),
                "size": block.total_size(),
                "strippedsize": block.stripped_size(),
                "weight": block.weight().to_wu(),
                "height_bip34": if h.prev_blockhash == btq_core::BlockHash::ZERO { None } else { block.bip34_height() },
                "merkle_root_valid": block.check_merkle_root(),
                "witness_commitment_valid": block.check_witness_commitment(),
                "is_genesis": block.block_hash() == params.genesis_hash(),
                "nTx": block.txdata.len(),
                "tx": block.txdata.iter().map(|t| t.txid().to_string()).collect::<Vec<_>>(),
            }))
        }
        BlockCommand::Genesis { net } => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{}",
                hex::encode(&encoding::encode_to_vec(
                    net.network.params().genesis_block()
                ))
            )?;
            Ok(())
        }
    }
}

pub(crate) fn address(cmd: AddressCommand) -> Result<()> {
    match cmd {
        AddressCommand::Decode { address } => {
            let d = address::decode_any(address.trim())?;
            let ty = d.script.script_type();
            let canonical = d
                .networks
                .first()
                .and_then(|n| Address::from_script(&d.script, *n).ok())
                .map(|a| a.to_string());
            print_json(&json!({
                "networks": d.networks.iter().map(|n| n.chain_name()).collect::<Vec<_>>(),
                "network": d.networks.first().map(|n| n.chain_name()),
                "script_pubkey": d.script.to_string(),
                "type": ty.rpc_name(),
                "form": format!("{:?}", d.form),
                "as_node_renders": canonical,
            }))
        }
        AddressCommand::Encode { net, script_hex } => {
            let script = ScriptBuf::from_hex(script_hex.trim())?;
            let a = Address::from_script(&script, net.network)?;
            print_json(&json!({
                "address": a.to_string(),
                "lithium_wallet_form": a.to_lithium_wallet_string(),
                "type": script.script_type().rpc_name(),
                "network": net.network.chain_name(),
            }))
        }
    }
}

/// The secret key file: a one-line JSON object with the node's 3,872-byte sk‖pk as hex.
fn write_secret_file(path: &Path, kp: &Keypair) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    let body = json!({
        "format": "btq-lithium-keypair-v1",
        "note": "ML-DSA-44 secret key (2560 B) followed by public key (1312 B), the node's CDilithiumKey layout",
        "node_keypair_hex": hex::encode(&kp.to_node_keypair_bytes()),
    });
    writeln!(f, "{body}")?;
    Ok(())
}

/// Reads a key file written by `key generate` (or a bare hex sk‖pk).
pub(crate) fn read_key_file(path: &Path) -> Result<Keypair> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > 64 * 1024 {
        bail!("key file {} is larger than 64 KiB", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let hex_str = match serde_json::from_str::<Value>(&text) {
        Ok(v) => v
            .get("node_keypair_hex")
            .and_then(Value::as_str)
            .map(str::to_string)
            .context("key file has no node_keypair_hex")?,
        Err(_) => text.trim().to_string(),
    };
    let bytes = hex::decode_bounded(&hex_str, 8192)?;
    Ok(Keypair::from_node_keypair(&bytes)?)
}

fn key_json(kp: &Keypair) -> Value {
    let pk = kp.public_key();
    let h160 = pk.hash160();
    let p2wpkh = ScriptBuf::new_p2wpkh(&h160);
    let p2pkh = ScriptBuf::new_p2pkh_lithium(&h160);
    let p2mr = P2mrTree::single_lithium_leaf(pk.as_bytes()).script_pubkey();
    let mut addrs = serde_json::Map::new();
    for n in NETWORKS {
        let render = |s: &ScriptBuf| Address::from_script(s, n).ok().map(|a| a.to_string());
        addrs.insert(
            n.chain_name().into(),
            json!({
                "p2wpkh_lithium": render(&p2wpkh),
                "p2wpkh_lithium_wallet_form": Address::from_script(&p2wpkh, n).ok().and_then(|a| a.to_lithium_wallet_string()),
                "p2pkh_lithium": render(&p2pkh),
                "p2mr_single_leaf": render(&p2mr),
            }),
        );
    }
    json!({
        "public_key": hex::encode(pk.as_bytes()),
        "hash160": hex::encode(&h160),
        "script_pubkeys": {
            "p2wpkh_lithium": p2wpkh.to_string(),
            "p2pkh_lithium": p2pkh.to_string(),
            "p2mr_single_leaf": p2mr.to_string(),
        },
        "addresses": addrs,
    })
}

fn os_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    f.read_exact(&mut seed).context("reading /dev/urandom")?;
    Ok(seed)
}

pub(crate) fn key(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Generate { seed, secret_out } => {
            let seed: [u8; 32] = match seed {
                Some(s) => hex::decode_array(s.trim()).context("--seed must be 32 bytes of hex")?,
                None => os_seed()?,
            };
            let kp = Keypair::from_seed(&seed);
            if let Some(path) = &secret_out {
                write_secret_file(path, &kp)?;
            }
            let mut v = key_json(&kp);
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "secret_written_to".into(),
                    json!(secret_out.map(|p| p.display().to_string())),
                );
            }
            print_json(&v)
        }
        KeyCommand::Show { key } => print_json(&key_json(&read_key_file(&key)?)),
    }
}
