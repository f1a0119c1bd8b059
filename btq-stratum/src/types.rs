//! Small identifier newtypes shared by the codec and the server.

use core::fmt;
use core::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

use thiserror::Error;

/// The largest extranonce size in bytes this crate supports (for both extranonce1 and 2).
pub const MAX_EXTRANONCE_SIZE: usize = 8;

mod encapsulate {
    /// A generational session handle: a slot index plus the generation of the slot.
    ///
    /// A slot's generation is bumped when its session closes, so an id kept after its session
    /// closed can never address a newer session that reuses the slot.
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct SessionId {
        index: u32,
        generation: u32,
    }

    impl SessionId {
        /// Creates an id from its parts (only the server hands out live ids).
        pub const fn from_parts(index: u32, generation: u32) -> Self {
            Self { index, generation }
        }

        /// Returns the slot index.
        pub const fn index(self) -> u32 {
            self.index
        }

        /// Returns the slot generation.
        pub const fn generation(self) -> u32 {
            self.generation
        }
    }

    /// A job identifier chosen by the pool, sent on the wire as lower-case hex.
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
    pub struct JobId(u64);

    impl JobId {
        /// Creates a job id.
        pub const fn from_u64(id: u64) -> Self {
            Self(id)
        }

        /// Returns the numeric value.
        pub const fn to_u64(self) -> u64 {
            self.0
        }
    }

    /// Bytes of an extranonce (1 to 8 bytes), stored inline.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ExtranonceBytes {
        len: u8,
        bytes: [u8; super::MAX_EXTRANONCE_SIZE],
    }

    impl ExtranonceBytes {
        /// Creates an extranonce from at most 8 bytes.
        ///
        /// # Errors
        /// [`super::ExtranonceLengthError`] if `bytes` is longer than 8.
        pub fn from_slice(bytes: &[u8]) -> Result<Self, super::ExtranonceLengthError> {
            let mut out = [0u8; super::MAX_EXTRANONCE_SIZE];
            let dst = out
                .get_mut(..bytes.len())
                .ok_or(super::ExtranonceLengthError { len: bytes.len() })?;
            dst.copy_from_slice(bytes);
            // The length fits: it is at most MAX_EXTRANONCE_SIZE.
            let len = u8::try_from(bytes.len())
                .map_err(|_| super::ExtranonceLengthError { len: bytes.len() })?;
            Ok(Self { len, bytes: out })
        }

        /// Returns the bytes.
        pub fn as_bytes(&self) -> &[u8] {
            self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
        }
    }
}

pub use encapsulate::{ExtranonceBytes, JobId, SessionId};

/// Extranonce1: the per-session prefix of the coinbase's nonce space, assigned by the server.
pub type Extranonce1 = ExtranonceBytes;
/// Extranonce2: the miner-chosen part of the coinbase's nonce space, sent in `mining.submit`.
pub type Extranonce2 = ExtranonceBytes;

/// An extranonce longer than [`MAX_EXTRANONCE_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("extranonce of {len} bytes exceeds the maximum of 8")]
pub struct ExtranonceLengthError {
    /// The rejected length.
    pub len: usize,
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}v{})", self.index(), self.generation())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}v{}", self.index(), self.generation())
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({:x})", self.to_u64())
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.to_u64())
    }
}

impl JobId {
    /// Parses the hex form sent back by miners (1 to 16 hex digits).
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(Self::from_u64)
    }
}

impl fmt::Debug for ExtranonceBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extranonce({})", btq_core::hex::encode(self.as_bytes()))
    }
}

impl fmt::Display for ExtranonceBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&btq_core::hex::encode(self.as_bytes()))
    }
}

impl ExtranonceBytes {
    /// Returns the length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Returns true if the extranonce has no bytes.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

/// The address prefix that admission control and bans count by: the /32 of an IPv4 address
/// (IPv4-mapped IPv6 addresses count as IPv4) or the /64 of an IPv6 address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prefix {
    /// An IPv4 address.
    V4([u8; 4]),
    /// The upper 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl Prefix {
    /// Returns the prefix an address belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.octets()),
                None => {
                    let seg = v6.octets();
                    let mut p = [0u8; 8];
                    for (d, s) in p.iter_mut().zip(seg.iter()) {
                        *d = *s;
                    }
                    Self::V6(p)
                }
            },
        }
    }

    fn key(self) -> u64 {
        match self {
            Self::V4(b) => u64::from(u32::from_be_bytes(b)),
            Self::V6(b) => u64::from_be_bytes(b),
        }
    }
}

impl Hash for Prefix {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(match self {
            Self::V4(_) => 4,
            Self::V6(_) => 6,
        });
        state.write_u64(self.key());
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prefix({self})")
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(b) => write!(f, "{}/32", std::net::Ipv4Addr::from(*b)),
            Self::V6(b) => {
                let mut full = [0u8; 16];
                for (d, s) in full.iter_mut().zip(b.iter()) {
                    *d = *s;
                }
                write!(f, "{}/64", std::net::Ipv6Addr::from(full))
            }
        }
    }
}

/// A keyed SipHash-1-3 hasher for tables indexed by attacker-chosen keys (address prefixes).
///
/// The key comes from [`crate::Config::hash_seed`], so the core draws no randomness itself.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SipBuildHasher {
    k0: u64,
    k1: u64,
}

impl SipBuildHasher {
    pub(crate) const fn new(seed: [u64; 2]) -> Self {
        Self {
            k0: seed[0],
            k1: seed[1],
        }
    }
}

impl BuildHasher for SipBuildHasher {
    type Hasher = Sip13;

    fn build_hasher(&self) -> Sip13 {
        Sip13 {
            v0: self.k0 ^ 0x736f_6d65_7073_6575,
            v1: self.k1 ^ 0x646f_7261_6e64_6f6d,
            v2: self.k0 ^ 0x6c79_6765_6e65_7261,
            v3: self.k1 ^ 0x7465_6462_7974_6573,
            tail: 0,
            ntail: 0,
            length: 0,
        }
    }
}

/// SipHash-1-3 state.
#[derive(Debug)]
pub(crate) struct Sip13 {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
    tail: u64,
    ntail: u32,
    length: u64,
}

impl Sip13 {
    #[inline]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    #[inline]
    fn compress(&mut self, m: u64) {
        self.v3 ^= m;
        self.round();
        self.v0 ^= m;
    }
}

impl Hasher for Sip13 {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.tail |= u64::from(b) << (8 * self.ntail);
            self.ntail = self.ntail.wrapping_add(1);
            self.length = self.length.wrapping_add(1);
            if self.ntail == 8 {
                let m = self.tail;
                self.compress(m);
                self.tail = 0;
                self.ntail = 0;
            }
        }
    }

    fn write_u64(&mut self, n: u64) {
        if self.ntail == 0 {
            self.length = self.length.wrapping_add(8);
            self.compress(n);
        } else {
            self.write(&n.to_le_bytes());
        }
    }

    fn finish(&self) -> u64 {
        let mut s = Self { ..*self };
        let b = ((s.length & 0xff) << 56) | s.tail;
        s.compress(b);
        s.v2 ^= 0xff;
        s.round();
        s.round();
        s.round();
        s.v0 ^ s.v1 ^ s.v2 ^ s.v3
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn prefixes() {
        let a = Prefix::of(IpAddr::V6(
            "2001:db8:1:2:aaaa::1".parse::<Ipv6Addr>().unwrap(),
        ));
        let b = Prefix::of(IpAddr::V6(
            "2001:db8:1:2:bbbb::9".parse::<Ipv6Addr>().unwrap(),
        ));
        let c = Prefix::of(IpAddr::V6("2001:db8:1:3::1".parse::<Ipv6Addr>().unwrap()));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let m = Prefix::of(IpAddr::V6(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped()));
        assert_eq!(m, Prefix::of(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))));
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(m.to_string(), "1.2.3.4/32");
    }

    #[test]
    fn job_id_hex() {
        assert_eq!(JobId::from_hex("1f"), Some(JobId::from_u64(0x1f)));
        assert_eq!(JobId::from_hex(""), None);
        assert_eq!(JobId::from_hex("10000000000000000"), None);
        assert_eq!(JobId::from_hex("xyz"), None);
        assert_eq!(JobId::from_u64(0xabc).to_string(), "abc");
    }

    #[test]
    fn keyed_hash_differs_by_key() {
        let p = Prefix::V4([1, 2, 3, 4]);
        let h1 = SipBuildHasher::new([1, 2]).hash_one(p);
        let h2 = SipBuildHasher::new([3, 4]).hash_one(p);
        assert_ne!(h1, h2);
        assert_eq!(h1, SipBuildHasher::new([1, 2]).hash_one(p));
    }
}
