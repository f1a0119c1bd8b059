//! Consensus encoding with bounded decoding of untrusted bytes.
//!
//! Decoding works on a borrowed [`Reader`] that cannot panic: every read goes through
//! `split_at_checked`, and every count or length read from the wire is checked against the bytes
//! actually remaining (and against a named limit) before anything is allocated, so a decoder
//! never allocates more than a small multiple of its input. CompactSize integers must be
//! minimally encoded and at most [`MAX_SIZE`], as in the node. [`decode_from_slice`] rejects
//! trailing bytes.

use thiserror::Error;

/// The node's sanity limit on any CompactSize value (`MAX_SIZE`, `serialize.h`).
pub const MAX_SIZE: u64 = 0x0200_0000;

/// An error decoding consensus bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("unexpected end of data: needed {needed} more bytes, {remaining} remaining")]
    UnexpectedEof {
        /// Bytes needed.
        needed: usize,
        /// Bytes remaining.
        remaining: usize,
    },
    /// A CompactSize was not in its shortest form.
    #[error("non-minimal compact size encoding of {value}")]
    NonMinimalCompactSize {
        /// The value.
        value: u64,
    },
    /// A length or count exceeds its limit.
    #[error("{what} of {got} exceeds the limit of {limit}")]
    ExceedsLimit {
        /// What was being decoded.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// The value found.
        got: u64,
    },
    /// Bytes remained after a complete value.
    #[error("{count} trailing bytes after the value")]
    TrailingBytes {
        /// Number of trailing bytes.
        count: usize,
    },
    /// A transaction carried the witness flag but no witness data.
    #[error("superfluous witness record")]
    SuperfluousWitness,
    /// A transaction carried unknown optional-data flags.
    #[error("unknown transaction optional data (flags {flags:#04x})")]
    UnknownOptionalData {
        /// The flag byte.
        flags: u8,
    },
}

/// A borrowed reader over untrusted bytes; no method panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    consumed: usize,
}

impl<'a> Reader<'a> {
    /// Creates a reader over `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, consumed: 0 }
    }

    /// Returns the number of unread bytes.
    pub const fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Returns the number of bytes read so far.
    pub const fn consumed(&self) -> usize {
        self.consumed
    }

    /// Returns the unread bytes without consuming them.
    pub const fn peek_rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Reads `n` bytes.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] if fewer than `n` remain.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self
            .buf
            .split_at_checked(n)
            .ok_or(DecodeError::UnexpectedEof {
                needed: n,
                remaining: self.buf.len(),
            })?;
        self.buf = tail;
        self.consumed = self.consumed.saturating_add(n);
        Ok(head)
    }

    /// Reads a fixed-size array.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] if fewer than `N` bytes remain.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] at the end of input.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u16`.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] at the end of input.
    pub fn u16_le(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] at the end of input.
    pub fn u32_le(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `i32`.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] at the end of input.
    pub fn i32_le(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] at the end of input.
    pub fn u64_le(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a minimally encoded CompactSize no larger than [`MAX_SIZE`].
    ///
    /// # Errors
    /// End of input, a non-minimal encoding, or a value above [`MAX_SIZE`].
    pub fn compact_size(&mut self) -> Result<u64, DecodeError> {
        let first = self.u8()?;
        let (value, min) = match first {
            0xfd => (u64::from(self.u16_le()?), 0xfd),
            0xfe => (u64::from(self.u32_le()?), 0x1_0000),
            0xff => (self.u64_le()?, 0x1_0000_0000),
            n => return Ok(u64::from(n)),
        };
        if value < min {
            return Err(DecodeError::NonMinimalCompactSize { value });
        }
        if value > MAX_SIZE {
            return Err(DecodeError::ExceedsLimit {
                what: "compact size",
                limit: MAX_SIZE,
                got: value,
            });
        }
        Ok(value)
    }

    /// Reads a count of items each at least `min_item_size` bytes long, checked against the
    /// bytes remaining and against `limit`, so that allocating `count` items is bounded by the
    /// input.
    ///
    /// # Errors
    /// As [`Reader::compact_size`], or a count that the remaining bytes cannot hold, or above
    /// `limit`.
    pub fn count(
        &mut self,
        what: &'static str,
        min_item_size: usize,
        limit: u64,
    ) -> Result<usize, DecodeError> {
        let n = self.compact_size()?;
        if n > limit {
            return Err(DecodeError::ExceedsLimit {
                what,
                limit,
                got: n,
            });
        }
        let n = usize::try_from(n).map_err(|_| DecodeError::ExceedsLimit {
            what,
            limit: u64::try_from(usize::MAX).unwrap_or(u64::MAX),
            got: n,
        })?;
        let needed = n.saturating_mul(min_item_size.max(1));
        if min_item_size > 0 && needed > self.remaining() {
            return Err(DecodeError::UnexpectedEof {
                needed,
                remaining: self.remaining(),
            });
        }
        Ok(n)
    }

    /// Reads a CompactSize-prefixed byte string of at most `limit` bytes.
    ///
    /// # Errors
    /// As [`Reader::count`], or end of input.
    pub fn var_bytes(&mut self, what: &'static str, limit: u64) -> Result<&'a [u8], DecodeError> {
        let n = self.count(what, 1, limit)?;
        self.take(n)
    }
}

/// Writes `n` as a CompactSize.
#[allow(clippy::cast_possible_truncation)] // each arm's range fits its width
pub fn write_compact_size(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Returns the encoded length of a CompactSize.
pub const fn compact_size_len(n: u64) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Writes a CompactSize-prefixed byte string.
pub fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_compact_size(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A value with a consensus encoding.
pub trait Encodable {
    /// Appends the consensus encoding of `self` to `out`.
    fn consensus_encode(&self, out: &mut Vec<u8>);

    /// Returns the length of the encoding.
    fn encoded_len(&self) -> usize {
        let mut v = Vec::new();
        self.consensus_encode(&mut v);
        v.len()
    }
}

/// A value decodable from untrusted consensus bytes.
pub trait Decodable: Sized {
    /// Decodes a value from the reader.
    ///
    /// # Errors
    /// Any [`DecodeError`]: the input is malformed or exceeds a limit.
    fn consensus_decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Encodes a value into a new vector.
pub fn encode_to_vec<T: Encodable + ?Sized>(value: &T) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.encoded_len());
    value.consensus_encode(&mut v);
    v
}

/// Decodes a value that must span the whole slice.
///
/// # Errors
/// Any [`DecodeError`], including [`DecodeError::TrailingBytes`].
pub fn decode_from_slice<T: Decodable>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = T::consensus_decode(&mut r)?;
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes {
            count: r.remaining(),
        });
    }
    Ok(v)
}

macro_rules! impl_int {
    ($t:ty, $read:ident) => {
        impl Encodable for $t {
            fn consensus_encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn encoded_len(&self) -> usize {
                core::mem::size_of::<$t>()
            }
        }
        impl Decodable for $t {
            fn consensus_decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.$read()
            }
        }
    };
}
impl_int!(u32, u32_le);
impl_int!(i32, i32_le);
impl_int!(u64, u64_le);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_size_minimal() {
        for (n, len) in [
            (0u64, 1),
            (0xfc, 1),
            (0xfd, 3),
            (0xffff, 3),
            (0x10000, 5),
            (MAX_SIZE, 5),
        ] {
            let mut v = Vec::new();
            write_compact_size(&mut v, n);
            assert_eq!(v.len(), len);
            assert_eq!(compact_size_len(n), len);
            assert_eq!(Reader::new(&v).compact_size().unwrap(), n);
        }
        assert_eq!(
            Reader::new(&[0xfd, 0xfc, 0x00]).compact_size(),
            Err(DecodeError::NonMinimalCompactSize { value: 0xfc })
        );
        assert_eq!(
            Reader::new(&[0xfe, 0xff, 0xff, 0, 0]).compact_size(),
            Err(DecodeError::NonMinimalCompactSize { value: 0xffff })
        );
        assert!(matches!(
            Reader::new(&[0xfe, 0x01, 0, 0, 0x02]).compact_size(),
            Err(DecodeError::ExceedsLimit { .. })
        ));
        assert!(matches!(
            Reader::new(&[0xfd, 0x01]).compact_size(),
            Err(DecodeError::UnexpectedEof { .. })
        ));
    }

    #[test]
    fn count_bounded_by_input() {
        // Claims 1,000,000 items of 40 bytes in 3 bytes of input: refused before allocation.
        let mut v = Vec::new();
        write_compact_size(&mut v, 1_000_000);
        assert!(matches!(
            Reader::new(&v).count("inputs", 40, u64::MAX),
            Err(DecodeError::UnexpectedEof { .. })
        ));
        assert!(matches!(
            Reader::new(&v).count("inputs", 0, 10),
            Err(DecodeError::ExceedsLimit { limit: 10, .. })
        ));
    }

    #[test]
    fn trailing_bytes_rejected() {
        assert_eq!(decode_from_slice::<u32>(&[1, 0, 0, 0]).unwrap(), 1);
        assert_eq!(
            decode_from_slice::<u32>(&[1, 0, 0, 0, 9]),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }
}
