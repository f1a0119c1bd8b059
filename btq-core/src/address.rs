//! Addresses of the four BTQ networks: bech32 (witness v0), bech32m (v1 and P2MR v2) and base58
//! with the Lithium prefixes.
//!
//! An address is a rendering of a scriptPubKey, and the same script has several renderings in
//! BTQ (`qbtc1q…` and `dbtc1q…` for one P2WPKH script; base58 prefixes 135 and 136 for one P2SH
//! script). Everything is therefore keyed by the script: [`Address`] holds the script and the
//! network, parses every form, and renders what the node's chain RPCs render
//! (`ExtractDestination` + `EncodeDestination`).

use core::fmt;

use bech32::{Fe32, Hrp};
use thiserror::Error;

use crate::params::{NETWORKS, Network};
use crate::script::{ScriptBuf, ScriptType};

/// An error parsing or rendering an address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The string is neither valid bech32/bech32m with a BTQ prefix nor valid base58check.
    #[error("invalid address {0:?}: not a BTQ bech32, bech32m or base58 address")]
    Invalid(String),
    /// A valid segwit string with an unknown human-readable part.
    #[error("unknown address prefix {0:?}")]
    UnknownHrp(String),
    /// A base58 address with an unknown version byte.
    #[error("unknown base58 address version {0}")]
    UnknownBase58Version(u8),
    /// The address belongs to another network.
    #[error("address {address:?} is for {found:?}, not {expected}")]
    WrongNetwork {
        /// The address string.
        address: String,
        /// The network(s) the address could belong to.
        found: Vec<Network>,
        /// The network asked for.
        expected: Network,
    },
    /// The Lithium HRP only renders witness v0 programs (`dbtc1z…` is rejected by the node).
    #[error("the Lithium prefix {hrp:?} only takes witness version 0, got {version}")]
    LithiumHrpVersion {
        /// The HRP.
        hrp: String,
        /// The witness version.
        version: u8,
    },
    /// The script has no address form.
    #[error("script has no address form (type {0})")]
    NoAddressForm(&'static str),
}

/// A scriptPubKey with the network it is rendered for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    script: ScriptBuf,
    network: Network,
}

/// How an address string was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressForm {
    /// bech32 or bech32m with the chain HRP (`qbtc1…`).
    Segwit,
    /// bech32 with the Lithium wallet HRP (`dbtc1q…`).
    LithiumSegwit,
    /// base58 ECDSA P2PKH.
    Base58Pubkey,
    /// base58 Lithium P2PKH.
    Base58LithiumPubkey,
    /// base58 P2SH with the ECDSA prefix.
    Base58Script,
    /// base58 P2SH with the Lithium prefix (what the node renders).
    Base58LithiumScript,
}

/// The result of decoding an address string without knowing its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedAddress {
    /// The scriptPubKey.
    pub script: ScriptBuf,
    /// The networks whose parameters accept the string (base58 strings are shared by test,
    /// signet and regtest).
    pub networks: Vec<Network>,
    /// How the string was written.
    pub form: AddressForm,
}

fn truncated(s: &str) -> String {
    s.chars().take(100).collect()
}

/// Decodes an address string of any BTQ network.
///
/// # Errors
/// [`AddressError`] for strings that are not BTQ addresses.
pub fn decode_any(s: &str) -> Result<DecodedAddress, AddressError> {
    if s.len() > 120 {
        return Err(AddressError::Invalid(truncated(s)));
    }
    if let Ok((hrp, version, program)) = bech32::segwit::decode(s) {
        let hrp_s = hrp.to_lowercase();
        let v = version.to_u8();
        let chain: Vec<Network> = NETWORKS
            .into_iter()
            .filter(|n| n.params().bech32_hrp == hrp_s)
            .collect();
        let (networks, form) = if chain.is_empty() {
            let lithium: Vec<Network> = NETWORKS
                .into_iter()
                .filter(|n| n.params().lithium_bech32_hrp == hrp_s)
                .collect();
            if lithium.is_empty() {
                return Err(AddressError::UnknownHrp(hrp_s));
            }
            if v != 0 {
                return Err(AddressError::LithiumHrpVersion {
                    hrp: hrp_s,
                    version: v,
                });
            }
            (lithium, AddressForm::LithiumSegwit)
        } else {
            (chain, AddressForm::Segwit)
        };
        return Ok(DecodedAddress {
            script: ScriptBuf::new_witness_program(v, &program),
            networks,
            form,
        });
    }
    let payload = bs58::decode(s)
        .with_check(None)
        .into_vec()
        .map_err(|_| AddressError::Invalid(truncated(s)))?;
    let (version, hash) = match payload.as_slice() {
        [v, rest @ ..] if rest.len() == 20 => {
            let mut h = [0u8; 20];
            h.copy_from_slice(rest);
            (*v, h)
        }
        _ => return Err(AddressError::Invalid(truncated(s))),
    };
    let mut networks = Vec::new();
    let mut found: Option<(ScriptBuf, AddressForm)> = None;
    for n in NETWORKS {
        let p = n.params();
        let hit = if version == p.pubkey_address_prefix {
            Some((ScriptBuf::new_p2pkh(&hash), AddressForm::Base58Pubkey))
        } else if version == p.lithium_pubkey_address_prefix {
            Some((
                ScriptBuf::new_p2pkh_lithium(&hash),
                AddressForm::Base58LithiumPubkey,
            ))
        } else if version == p.script_address_prefix {
            Some((ScriptBuf::new_p2sh(&hash), AddressForm::Base58Script))
        } else if version == p.lithium_script_address_prefix {
            Some((ScriptBuf::new_p2sh(&hash), AddressForm::Base58LithiumScript))
        } else {
            None
        };
        if let Some(h) = hit {
            networks.push(n);
            found = Some(h);
        }
    }
    match found {
        Some((script, form)) => Ok(DecodedAddress {
            script,
            networks,
            form,
        }),
        None => Err(AddressError::UnknownBase58Version(version)),
    }
}

impl Address {
    /// Parses an address for `network`, accepting every form of it (chain and Lithium HRPs, both
    /// P2SH prefixes).
    ///
    /// # Errors
    /// [`AddressError`] for invalid strings or another network's address.
    pub fn parse(s: &str, network: Network) -> Result<Self, AddressError> {
        let d = decode_any(s)?;
        if !d.networks.contains(&network) {
            return Err(AddressError::WrongNetwork {
                address: truncated(s),
                found: d.networks,
                expected: network,
            });
        }
        Ok(Self {
            script: d.script,
            network,
        })
    }

    /// Creates an address for a script that has an address form on `network`.
    ///
    /// # Errors
    /// [`AddressError::NoAddressForm`] for scripts the node renders without an address (P2PK,
    /// bare multisig, OP_RETURN, non-standard).
    pub fn from_script(script: &ScriptBuf, network: Network) -> Result<Self, AddressError> {
        let a = Self {
            script: script.clone(),
            network,
        };
        a.render()?;
        Ok(a)
    }

    /// Returns the scriptPubKey.
    pub fn script_pubkey(&self) -> &ScriptBuf {
        &self.script
    }

    /// Returns the network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// Returns the output type of the script.
    pub fn script_type(&self) -> ScriptType {
        self.script.script_type()
    }

    /// Renders the Lithium wallet form (`dbtc1q…`) of a witness v0 address, as
    /// `getnewdilithiumaddress … bech32` prints it. `None` for other scripts.
    pub fn to_lithium_wallet_string(&self) -> Option<String> {
        let (v, prog) = self.script.witness_program()?;
        if v != 0 {
            return None;
        }
        let hrp = Hrp::parse(self.network.params().lithium_bech32_hrp).ok()?;
        bech32::segwit::encode(hrp, Fe32::Q, prog).ok()
    }

    /// Renders the ECDSA-prefix base58 form of a P2SH address (what ECDSA wallets print).
    pub fn to_ecdsa_p2sh_string(&self) -> Option<String> {
        if !self.script.is_p2sh() {
            return None;
        }
        let hash = self.script.as_bytes().get(2..22)?;
        Some(base58(self.network.params().script_address_prefix, hash))
    }

    fn render(&self) -> Result<String, AddressError> {
        let p = self.network.params();
        let ty = self.script.script_type();
        let bytes = self.script.as_bytes();
        let no_form = || AddressError::NoAddressForm(ty.rpc_name());
        match ty {
            ScriptType::P2pkh => Ok(base58(
                p.pubkey_address_prefix,
                bytes.get(3..23).ok_or_else(no_form)?,
            )),
            ScriptType::P2pkhLithium => Ok(base58(
                p.lithium_pubkey_address_prefix,
                bytes.get(3..23).ok_or_else(no_form)?,
            )),
            ScriptType::P2sh => Ok(base58(
                p.lithium_script_address_prefix,
                bytes.get(2..22).ok_or_else(no_form)?,
            )),
            ScriptType::P2wpkh
            | ScriptType::P2wsh
            | ScriptType::P2tr
            | ScriptType::P2mr
            | ScriptType::WitnessUnknown => {
                let (v, prog) = self.script.witness_program().ok_or_else(no_form)?;
                let hrp = Hrp::parse(p.bech32_hrp).map_err(|_| no_form())?;
                let fe = Fe32::try_from(v).map_err(|_| no_form())?;
                bech32::segwit::encode(hrp, fe, prog).map_err(|_| no_form())
            }
            _ => Err(no_form()),
        }
    }
}

fn base58(version: u8, hash: &[u8]) -> String {
    let mut payload = Vec::with_capacity(21);
    payload.push(version);
    payload.extend_from_slice(hash);
    bs58::encode(payload).with_check().into_string()
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Construction guarantees a form; fall back to the script hex rather than panic.
        match self.render() {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "script:{}", self.script),
        }
    }
}
