//! Bounded hex decoding and encoding for untrusted input.

use thiserror::Error;

/// An error decoding hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HexError {
    /// The string has an odd number of characters.
    #[error("hex string has an odd length ({len})")]
    OddLength {
        /// The length of the string.
        len: usize,
    },
    /// A character is not a hex digit.
    #[error("invalid hex character {ch:?} at position {pos}")]
    InvalidChar {
        /// The character.
        ch: char,
        /// Its byte position.
        pos: usize,
    },
    /// The decoded length is not the expected one.
    #[error("hex decodes to {got} bytes, expected {expected}")]
    WrongLength {
        /// The expected byte length.
        expected: usize,
        /// The byte length found.
        got: usize,
    },
    /// The decoded length exceeds the caller's limit.
    #[error("hex decodes to {got} bytes, more than the limit of {limit}")]
    TooLong {
        /// The limit in bytes.
        limit: usize,
        /// The byte length found.
        got: usize,
    },
}

const fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn decode_into(s: &str, out: &mut [u8]) -> Result<(), HexError> {
    let bytes = s.as_bytes();
    for (i, (pair, slot)) in bytes.chunks_exact(2).zip(out.iter_mut()).enumerate() {
        let (hi, lo) = match pair {
            [a, b] => (*a, *b),
            _ => return Err(HexError::OddLength { len: bytes.len() }),
        };
        let h = nibble(hi).ok_or_else(|| bad_char(s, 2 * i))?;
        let l = nibble(lo).ok_or_else(|| bad_char(s, 2 * i + 1))?;
        *slot = (h << 4) | l;
    }
    Ok(())
}

fn bad_char(s: &str, pos: usize) -> HexError {
    let ch = s.get(pos..).and_then(|r| r.chars().next()).unwrap_or('?');
    HexError::InvalidChar { ch, pos }
}

/// Decodes hex of at most `limit` bytes into a vector.
///
/// # Errors
/// Odd length, a non-hex character, or more than `limit` bytes.
pub fn decode_bounded(s: &str, limit: usize) -> Result<Vec<u8>, HexError> {
    let len = s.len();
    if !len.is_multiple_of(2) {
        return Err(HexError::OddLength { len });
    }
    if len / 2 > limit {
        return Err(HexError::TooLong {
            limit,
            got: len / 2,
        });
    }
    let mut out = vec![0u8; len / 2];
    decode_into(s, &mut out)?;
    Ok(out)
}

/// Decodes hex into a fixed-size array.
///
/// # Errors
/// Odd length, a non-hex character, or a length other than `N` bytes.
pub fn decode_array<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let len = s.len();
    if !len.is_multiple_of(2) {
        return Err(HexError::OddLength { len });
    }
    if len / 2 != N {
        return Err(HexError::WrongLength {
            expected: N,
            got: len / 2,
        });
    }
    let mut out = [0u8; N];
    decode_into(s, &mut out)?;
    Ok(out)
}

/// Encodes bytes as lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        for n in [b >> 4, b & 0x0f] {
            s.push(char::from(
                DIGITS.get(usize::from(n)).copied().unwrap_or(b'0'),
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        assert_eq!(decode_bounded("00ffAb", 3).unwrap(), vec![0, 0xff, 0xab]);
        assert_eq!(encode(&[0, 0xff, 0xab]), "00ffab");
        assert_eq!(
            decode_bounded("abc", 10),
            Err(HexError::OddLength { len: 3 })
        );
        assert_eq!(
            decode_bounded("zz", 10),
            Err(HexError::InvalidChar { ch: 'z', pos: 0 })
        );
        assert_eq!(
            decode_bounded("0011", 1),
            Err(HexError::TooLong { limit: 1, got: 2 })
        );
        assert_eq!(
            decode_array::<2>("001122"),
            Err(HexError::WrongLength {
                expected: 2,
                got: 3
            })
        );
        assert!(decode_bounded("é0", 10).is_err());
    }
}
