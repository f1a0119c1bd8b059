//! P2WPKH-Lithium signing with PQClean's ML-DSA-44 (AVX2 when the CPU has it), behind the
//! `fast-signer` feature. Signatures are hedged (randomized, FIPS 204 §3.4), which the node
//! accepts; the first signature of each transaction is checked with btq-core's verifier.

use btq_core::lithium::{self, Keypair, SIGNATURE_LEN};
use btq_core::sighash::{SIGHASH_ALL, SighashCache};
use btq_core::signer::{Prevout, SpendError};
use btq_core::{ScriptBuf, Transaction, Witness};
use pqcrypto_mldsa::mldsa44;
use pqcrypto_traits::sign::{DetachedSignature as _, SecretKey as _};

/// Signs every input of `tx` (all P2WPKH outputs of `keypair`) with the PQClean signer.
pub(crate) fn sign_p2wpkh(
    tx: &mut Transaction,
    prevouts: &[Prevout],
    keypair: &Keypair,
) -> Result<(), SpendError> {
    if prevouts.len() != tx.input.len() {
        return Err(SpendError::PrevoutCount {
            prevouts: prevouts.len(),
            inputs: tx.input.len(),
        });
    }
    let pk = keypair.public_key();
    let h160 = pk.hash160();
    let ours = ScriptBuf::new_p2wpkh(&h160);
    let sk = mldsa44::SecretKey::from_bytes(&keypair.secret_key_bytes()).map_err(|_| {
        SpendError::Malformed {
            index: 0,
            reason: "secret key does not load into the PQClean signer",
        }
    })?;
    let mut digests = Vec::with_capacity(prevouts.len());
    {
        let cache = SighashCache::new(tx);
        for (index, p) in prevouts.iter().enumerate() {
            if p.script_pubkey != ours {
                return Err(SpendError::KeyMismatch {
                    index,
                    kind: p.script_pubkey.script_type().rpc_name(),
                    script: p.script_pubkey.to_string(),
                });
            }
            let d = cache
                .p2wpkh_lithium_sighash(index, &h160, p.value, SIGHASH_ALL)
                .map_err(|_| SpendError::NoSuchInput(index))?;
            digests.push(d.to_byte_array());
        }
    }
    let sign_one = |(index, d): (usize, &[u8; 32])| -> Result<Vec<u8>, SpendError> {
        let sig = mldsa44::detached_sign(d, &sk);
        let bytes = sig.as_bytes();
        // The first input of each transaction is verified with btq-core's verifier, which
        // catches a key that PQClean loaded differently; the tests verify every signature.
        if bytes.len() != SIGNATURE_LEN || (index == 0 && !lithium::verify(pk.as_bytes(), d, bytes))
        {
            return Err(SpendError::BadSignature { index });
        }
        let mut item = Vec::with_capacity(SIGNATURE_LEN.saturating_add(1));
        item.extend_from_slice(bytes);
        item.push(0x01); // SIGHASH_ALL
        Ok(item)
    };
    #[cfg(feature = "parallel")]
    let items: Result<Vec<Vec<u8>>, SpendError> = {
        use rayon::prelude::*;
        digests.par_iter().enumerate().map(sign_one).collect()
    };
    #[cfg(not(feature = "parallel"))]
    let items: Result<Vec<Vec<u8>>, SpendError> =
        digests.iter().enumerate().map(sign_one).collect();
    let pkv = pk.to_vec();
    for (input, item) in tx.input.iter_mut().zip(items?) {
        input.script_sig = ScriptBuf::new();
        input.witness = Witness::from_items(vec![item, pkv.clone()]);
    }
    Ok(())
}
