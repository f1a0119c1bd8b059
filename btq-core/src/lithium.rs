//! Lithium signatures: ML-DSA-44 exactly as the BTQ node uses them.
//!
//! BTQ's post-quantum signature scheme is ML-DSA-44 from FIPS 204 (final), which the node's
//! source calls "Dilithium2" and the network's announcements call "Lithium". Everything here is
//! byte-compatible with the node (`btq-protocol.md` §3):
//!
//! - **Pure mode with an empty context string**: the signed message is
//!   `M' = 0x00 ‖ 0x00 ‖ msg`. For transactions `msg` is the raw 32-byte sighash (the sha256d
//!   output as-is, not the byte-reversed display hex).
//! - **Sizes**: public key [`PUBLIC_KEY_LEN`] (1,312 B), expanded secret key [`SECRET_KEY_LEN`]
//!   (2,560 B), signature [`SIGNATURE_LEN`] (2,420 B). The node stores a key as
//!   `sk ‖ pk` ([`NODE_KEYPAIR_LEN`], 3,872 B).
//! - **Verification** ([`verify`]) applies exactly the node's consensus checks: the public key is
//!   1,312 bytes and not all zero (the node has no deeper public-key check), the signature is
//!   exactly 2,420 bytes, and ML-DSA-44 verification with an empty context succeeds.
//! - **Keys** come from a 32-byte seed ξ through FIPS 204 `ML-DSA.KeyGen_internal(ξ)`
//!   ([`Keypair::from_seed`]). The node itself has no usable seed or HD derivation, so this is
//!   btq-kit's choice; the resulting keys and signatures are plain ML-DSA-44 and the node accepts
//!   them. Node-format secret keys can be imported with [`Keypair::from_node_secret_key`] and
//!   [`Keypair::from_node_keypair`].
//! - **Signing** is deterministic by default ([`Keypair::sign`], `rnd = 0³²`), so the same key and
//!   sighash always give the same signature. The node itself signs hedged (random `rnd`); both
//!   kinds verify identically. [`Keypair::sign_hedged`] takes an explicit `rnd`, because nothing
//!   in `btq-core` draws randomness.
//!
//! The arithmetic is RustCrypto's pure-Rust `ml-dsa` crate (pinned to 0.1.2), which reproduces
//! the node's vendored pq-crystals code bit for bit (`tests/lithium_vectors.rs`). Round-3
//! "Dilithium2" implementations such as `pqcrypto-dilithium` are **not** compatible.
//!
//! # Secret material
//!
//! A [`Keypair`]'s secret key is held by `ml-dsa`'s `ExpandedSigningKey`, which erases itself on
//! drop only when `ml-dsa`'s `zeroize` feature is enabled somewhere in the dependency graph.
//! Byte copies handed out by [`Keypair::secret_key_bytes`] and
//! [`Keypair::to_node_keypair_bytes`] are ordinary `Vec`s that the caller must erase. `Debug`
//! output never contains secret bytes.
//!
//! # Examples
//!
//! ```
//! use btq_core::lithium::{self, Keypair};
//!
//! let keypair = Keypair::from_seed(&[7u8; 32]);
//! let sighash = [0x42u8; 32];
//! let sig = keypair.sign(&sighash);
//! keypair.public_key().verify(&sighash, &sig)?;
//! assert!(lithium::verify(keypair.public_key().as_bytes(), &sighash, sig.as_bytes()));
//! # Ok::<_, lithium::LithiumError>(())
//! ```
#![doc(alias("dilithium", "ml-dsa", "mldsa", "dilithium2"))]

use core::fmt;

use ml_dsa::{
    B32, EncodedSignature, EncodedVerifyingKey, ExpandedSigningKey, ExpandedSigningKeyBytes,
    MlDsa44, VerifyingKey,
};

/// Length in bytes of an encoded Lithium (ML-DSA-44) public key.
pub const PUBLIC_KEY_LEN: usize = 1312;
/// Length in bytes of an expanded Lithium (ML-DSA-44) secret key, as the node stores it.
pub const SECRET_KEY_LEN: usize = 2560;
/// Length in bytes of a Lithium (ML-DSA-44) signature; the node requires exactly this length.
pub const SIGNATURE_LEN: usize = 2420;
/// Length in bytes of the node's key storage format `sk ‖ pk` (`CDilithiumKey`).
pub const NODE_KEYPAIR_LEN: usize = SECRET_KEY_LEN + PUBLIC_KEY_LEN;
/// Length in bytes of the seed ξ from which [`Keypair::from_seed`] derives a key.
pub const SEED_LEN: usize = 32;

/// Byte range of the encoded `s1 ‖ s2` vectors inside an expanded secret key
/// (after `rho` (32) ‖ `K` (32) ‖ `tr` (64); each is 4 polynomials × 96 bytes).
const SK_S1_S2_START: usize = 32 + 32 + 64;
const SK_S1_S2_END: usize = SK_S1_S2_START + 2 * 4 * 96;

/// The fixed message signed and verified when importing a node secret key, to prove that the
/// key's `tr` and `t0` agree with its public key.
const IMPORT_SELF_TEST_MSG: &[u8] = b"btq-kit lithium import self-test";

/// Number of leading public-key bytes shown by `Debug`.
const DEBUG_PREFIX_LEN: usize = 8;

/// An error from parsing Lithium keys or signatures, or from verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LithiumError {
    /// A public key did not have [`PUBLIC_KEY_LEN`] bytes.
    #[error("invalid lithium public key length: expected {expected} bytes, got {got}")]
    InvalidPublicKeyLength {
        /// The required length ([`PUBLIC_KEY_LEN`]).
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A secret key did not have [`SECRET_KEY_LEN`] bytes.
    #[error("invalid lithium secret key length: expected {expected} bytes, got {got}")]
    InvalidSecretKeyLength {
        /// The required length ([`SECRET_KEY_LEN`]).
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A node keypair (`sk ‖ pk`) did not have [`NODE_KEYPAIR_LEN`] bytes.
    #[error("invalid lithium node keypair length: expected {expected} bytes, got {got}")]
    InvalidKeypairLength {
        /// The required length ([`NODE_KEYPAIR_LEN`]).
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A signature did not have [`SIGNATURE_LEN`] bytes.
    #[error("invalid lithium signature length: expected {expected} bytes, got {got}")]
    InvalidSignatureLength {
        /// The required length ([`SIGNATURE_LEN`]).
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The public key is all zero bytes, which the node rejects.
    #[error("lithium public key is all zero")]
    AllZeroPublicKey,
    /// The public key of a node keypair is not the one its secret key belongs to.
    #[error("lithium public key does not match the secret key")]
    KeyMismatch,
    /// The secret key is malformed: a coefficient is out of range, or a test signature made with
    /// it does not verify under the public key it implies.
    #[error("malformed lithium secret key")]
    InvalidSecretKey,
    /// The signature does not verify (or is not a well-formed ML-DSA-44 signature).
    #[error("lithium signature verification failed")]
    InvalidSignature,
}

/// Writes the first [`DEBUG_PREFIX_LEN`] bytes of `bytes` in hex, followed by `…`.
fn write_hex_prefix(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes.iter().take(DEBUG_PREFIX_LEN) {
        write!(f, "{b:02x}")?;
    }
    f.write_str("…")
}

/// A Lithium (ML-DSA-44) public key: 1,312 bytes, never all zero.
///
/// Constructing one applies the node's only public-key validity checks (length and not all
/// zero); whether the bytes are a "real" ML-DSA key is not checkable and not checked, exactly as
/// in the node.
#[doc(alias("dilithium", "ml-dsa"))]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey(Box<[u8; PUBLIC_KEY_LEN]>);

impl PublicKey {
    /// Parses a public key, applying the node's checks.
    ///
    /// # Errors
    ///
    /// [`LithiumError::InvalidPublicKeyLength`] unless `bytes` has exactly [`PUBLIC_KEY_LEN`]
    /// bytes, and [`LithiumError::AllZeroPublicKey`] if every byte is zero.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, LithiumError> {
        let array: [u8; PUBLIC_KEY_LEN] =
            bytes
                .try_into()
                .map_err(|_| LithiumError::InvalidPublicKeyLength {
                    expected: PUBLIC_KEY_LEN,
                    got: bytes.len(),
                })?;
        if array.iter().all(|&b| b == 0) {
            return Err(LithiumError::AllZeroPublicKey);
        }
        Ok(Self(Box::new(array)))
    }

    /// Returns the encoded public key.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// Returns a copy of the encoded public key.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    /// Returns `RIPEMD160(SHA256(pk))`, the 20-byte key hash used by P2WPKH-Lithium and
    /// P2PKH-Lithium scripts.
    #[must_use]
    pub fn hash160(&self) -> [u8; 20] {
        bitcoin_hashes::hash160::Hash::hash(self.0.as_slice()).to_byte_array()
    }

    /// Verifies `sig` over `msg` (for transactions: the raw 32-byte sighash) with an empty
    /// context, as the node does.
    ///
    /// # Errors
    ///
    /// [`LithiumError::InvalidSignature`] if the signature is malformed or does not verify.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), LithiumError> {
        let vk = VerifyingKey::<MlDsa44>::decode(&EncodedVerifyingKey::<MlDsa44>::from(*self.0));
        let sig = ml_dsa::Signature::<MlDsa44>::decode(&EncodedSignature::<MlDsa44>::from(*sig.0))
            .ok_or(LithiumError::InvalidSignature)?;
        if vk.verify_with_context(msg, &[], &sig) {
            Ok(())
        } else {
            Err(LithiumError::InvalidSignature)
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        write_hex_prefix(f, self.0.as_slice())?;
        f.write_str(")")
    }
}

impl AsRef<[u8]> for PublicKey {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl TryFrom<&[u8]> for PublicKey {
    type Error = LithiumError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        Self::from_slice(bytes)
    }
}

/// A Lithium (ML-DSA-44) signature: 2,420 bytes.
///
/// In a transaction the node expects these bytes followed by one sighash-type byte; that byte
/// is not part of this type.
#[doc(alias("dilithium", "ml-dsa"))]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature(Box<[u8; SIGNATURE_LEN]>);

impl Signature {
    /// Parses a signature. Only the length is checked here (as the node does before
    /// verifying); a malformed encoding simply fails verification.
    ///
    /// # Errors
    ///
    /// [`LithiumError::InvalidSignatureLength`] unless `bytes` has exactly [`SIGNATURE_LEN`]
    /// bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, LithiumError> {
        let array: [u8; SIGNATURE_LEN] =
            bytes
                .try_into()
                .map_err(|_| LithiumError::InvalidSignatureLength {
                    expected: SIGNATURE_LEN,
                    got: bytes.len(),
                })?;
        Ok(Self(Box::new(array)))
    }

    /// Returns the encoded signature.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }

    /// Returns a copy of the encoded signature.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    fn from_ml_dsa(sig: &ml_dsa::Signature<MlDsa44>) -> Self {
        Self(Box::new(sig.encode().into()))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        write_hex_prefix(f, self.0.as_slice())?;
        f.write_str(")")
    }
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl TryFrom<&[u8]> for Signature {
    type Error = LithiumError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        Self::from_slice(bytes)
    }
}

/// A Lithium (ML-DSA-44) secret key with its public key.
///
/// `Debug` shows only the public key. See the [module docs](self) for how secret material is
/// handled.
#[doc(alias("dilithium", "ml-dsa"))]
#[derive(Clone)]
pub struct Keypair {
    secret: Box<ExpandedSigningKey<MlDsa44>>,
    public: PublicKey,
}

impl Keypair {
    /// Derives a keypair from a 32-byte seed ξ with FIPS 204 `ML-DSA.KeyGen_internal(ξ)`
    /// (Algorithm 6), the same computation as the node's vendored `crypto_sign_keypair` after it
    /// draws ξ.
    #[must_use]
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let secret = Box::new(ExpandedSigningKey::<MlDsa44>::from_seed(&B32::from(*seed)));
        let public = PublicKey(Box::new(secret.verifying_key().encode().into()));
        Self { secret, public }
    }

    /// Imports a node-format expanded secret key (2,560 bytes) and recomputes its public key
    /// from it (`t1` from `rho`, `s1`, `s2`).
    ///
    /// The key is checked before use: every `s1`/`s2` coefficient must be in range, the implied
    /// public key must not be all zero, and a deterministic test signature must verify under
    /// that public key (which proves the stored `tr = H(pk)` belongs to it and catches a
    /// corrupted `t0`). The test signature costs about a millisecond.
    ///
    /// # Errors
    ///
    /// [`LithiumError::InvalidSecretKeyLength`] for a wrong length,
    /// [`LithiumError::AllZeroPublicKey`] if the implied public key is all zero, and
    /// [`LithiumError::InvalidSecretKey`] if a check above fails.
    pub fn from_node_secret_key(sk: &[u8]) -> Result<Self, LithiumError> {
        let keypair = Self::import_unchecked_tr(sk)?;
        keypair.self_test()?;
        Ok(keypair)
    }

    /// Imports the node's key storage format `sk (2,560) ‖ pk (1,312)` (`CDilithiumKey`).
    ///
    /// Performs the checks of [`Keypair::from_node_secret_key`] and also requires the stored
    /// public key to equal the one recomputed from the secret key.
    ///
    /// # Errors
    ///
    /// [`LithiumError::InvalidKeypairLength`] for a wrong length,
    /// [`LithiumError::AllZeroPublicKey`] if the stored public key is all zero,
    /// [`LithiumError::KeyMismatch`] if the stored public key is not the secret key's, and
    /// [`LithiumError::InvalidSecretKey`] if the secret key is malformed.
    pub fn from_node_keypair(bytes: &[u8]) -> Result<Self, LithiumError> {
        if bytes.len() != NODE_KEYPAIR_LEN {
            return Err(LithiumError::InvalidKeypairLength {
                expected: NODE_KEYPAIR_LEN,
                got: bytes.len(),
            });
        }
        let (sk, pk) =
            bytes
                .split_at_checked(SECRET_KEY_LEN)
                .ok_or(LithiumError::InvalidKeypairLength {
                    expected: NODE_KEYPAIR_LEN,
                    got: bytes.len(),
                })?;
        let stored_public = PublicKey::from_slice(pk)?;
        let keypair = Self::import_unchecked_tr(sk)?;
        if keypair.public != stored_public {
            return Err(LithiumError::KeyMismatch);
        }
        keypair.self_test()?;
        Ok(keypair)
    }

    /// Decodes an expanded secret key after checking its length and coefficient ranges, and
    /// derives its public key. `tr` and `t0` are not yet checked (see [`Self::self_test`]).
    fn import_unchecked_tr(sk: &[u8]) -> Result<Self, LithiumError> {
        let encoded = ExpandedSigningKeyBytes::<MlDsa44>::try_from(sk).map_err(|_| {
            LithiumError::InvalidSecretKeyLength {
                expected: SECRET_KEY_LEN,
                got: sk.len(),
            }
        })?;
        // `ml-dsa`'s decoder asserts (panics) on out-of-range `s1`/`s2` coefficients, so they are
        // checked first. Every 13-bit `t0` encoding is in range, and `rho`, `K`, `tr` are free.
        let s1_s2 = sk
            .get(SK_S1_S2_START..SK_S1_S2_END)
            .ok_or(LithiumError::InvalidSecretKey)?;
        if !eta2_encoding_in_range(s1_s2) {
            return Err(LithiumError::InvalidSecretKey);
        }
        // `from_expanded` is deprecated in ml-dsa 0.1 only to steer users towards 32-byte seeds
        // (it can panic on malformed keys, which the range check above rules out). The node
        // stores no seed, only this 2,560-byte form, so importing it is the whole point here.
        #[allow(deprecated)]
        let secret = Box::new(ExpandedSigningKey::<MlDsa44>::from_expanded(&encoded));
        let public = PublicKey::from_slice(secret.verifying_key().encode().as_slice())?;
        Ok(Self { secret, public })
    }

    /// Signs and verifies a fixed message, proving that `tr` inside the secret key is the hash
    /// of the public key and that `t0` is consistent enough to produce valid signatures.
    ///
    /// Uses the fallible deterministic signer so that a pathological key whose rejection
    /// sampling never succeeds yields an error rather than a panic.
    fn self_test(&self) -> Result<(), LithiumError> {
        let sig = self
            .secret
            .sign_deterministic(IMPORT_SELF_TEST_MSG, &[])
            .map_err(|_| LithiumError::InvalidSecretKey)?;
        self.public
            .verify(IMPORT_SELF_TEST_MSG, &Signature::from_ml_dsa(&sig))
            .map_err(|_| LithiumError::InvalidSecretKey)
    }

    /// Returns the node's key storage format `sk (2,560) ‖ pk (1,312)`.
    ///
    /// The result contains the secret key; erase it when done.
    #[must_use]
    pub fn to_node_keypair_bytes(&self) -> Vec<u8> {
        let mut out = self.secret_key_bytes();
        out.extend_from_slice(self.public.0.as_slice());
        out
    }

    /// Returns the expanded secret key in the node's 2,560-byte encoding
    /// (`rho ‖ K ‖ tr ‖ s1 ‖ s2 ‖ t0`).
    ///
    /// The result is secret; erase it when done.
    #[must_use]
    pub fn secret_key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(NODE_KEYPAIR_LEN);
        // Deprecated in ml-dsa 0.1 only to steer users towards seeds; the node's format is the
        // expanded key, so it is what we must export. Cannot panic: every key held here was
        // produced by keygen or passed the coefficient range checks on import.
        #[allow(deprecated)]
        out.extend_from_slice(self.secret.to_expanded().as_slice());
        out
    }

    /// Returns the public key.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `msg` deterministically (`rnd = 0³²`, FIPS 204 "deterministic variant") with an
    /// empty context. For a transaction input pass the raw 32-byte sighash.
    ///
    /// The same key and message always give the same signature, which the node accepts like its
    /// own hedged signatures.
    #[must_use]
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.sign_hedged(msg, &[0u8; 32])
    }

    /// Signs `msg` with the given 32-byte `rnd` (FIPS 204 hedged signing) and an empty
    /// context, as the node's `DILITHIUM_RANDOMIZED_SIGNING` build does with `rnd` from the
    /// OS. The caller supplies `rnd`; an all-zero `rnd` is [`Keypair::sign`].
    #[must_use]
    pub fn sign_hedged(&self, msg: &[u8], rnd: &[u8; 32]) -> Signature {
        // `M' = 0x00 (pure mode) ‖ 0x00 (context length) ‖ msg`. ml-dsa's `sign_internal`
        // aborts only if rejection sampling fails 16,384 times in a row, which for a key made by
        // keygen or one that passed the import checks has negligible probability
        // (each attempt succeeds with probability about 1/4).
        let sig = self.secret.sign_internal(&[&[0, 0], msg], &B32::from(*rnd));
        Signature::from_ml_dsa(&sig)
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public_key", &self.public)
            .finish_non_exhaustive()
    }
}

/// Returns whether every 3-bit field of `bytes` (the packed `s1 ‖ s2` vectors, η = 2) is at most
/// `2η = 4`, i.e. encodes a coefficient in `[-2, 2]`.
fn eta2_encoding_in_range(bytes: &[u8]) -> bool {
    bytes.chunks_exact(3).all(|chunk| {
        let word = chunk
            .iter()
            .rev()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        (0..8).all(|i| (word >> (3 * i)) & 0b111 <= 4)
    })
}

/// Verifies a Lithium signature with exactly the node's consensus checks: `pubkey` has
/// [`PUBLIC_KEY_LEN`] bytes and is not all zero, `sig` has [`SIGNATURE_LEN`] bytes, and
/// ML-DSA-44 verification of `msg` with an empty context succeeds.
///
/// For transactions `msg` is the raw 32-byte sighash and `sig` excludes the trailing
/// sighash-type byte. Never panics, whatever the input.
#[doc(alias("dilithium", "ml-dsa"))]
#[must_use]
pub fn verify(pubkey: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(pubkey), Ok(sig)) = (PublicKey::from_slice(pubkey), Signature::from_slice(sig)) else {
        return false;
    };
    pubkey.verify(msg, &sig).is_ok()
}

/// Signs many 32-byte messages (sighashes), each with its keypair, deterministically; the
/// result is in input order.
///
/// With the crate feature `parallel` the signatures are made on rayon's thread pool; without
/// it, sequentially. The output is identical either way.
#[must_use]
pub fn sign_many(keypair_for_each: &[(&Keypair, [u8; 32])]) -> Vec<Signature> {
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        keypair_for_each
            .par_iter()
            .map(|(keypair, msg)| keypair.sign(msg))
            .collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        keypair_for_each
            .iter()
            .map(|(keypair, msg)| keypair.sign(msg))
            .collect()
    }
}
