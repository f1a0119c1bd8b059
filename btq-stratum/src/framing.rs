//! Line framing with a hard length cap, checked before any parsing (`stratum-v1.md` §5.10).

use thiserror::Error;

/// A line longer than the cap (counted without its `\n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("line exceeds {limit} bytes")]
pub struct LineTooLongError {
    /// The cap in bytes.
    pub limit: usize,
}

/// Splits a byte stream into `\n`-terminated lines of at most `max_line` bytes.
///
/// Complete lines found in the input are handed out without copying; only an unterminated
/// tail is buffered, and the buffer never holds more than `max_line` bytes. A trailing `\r`
/// is stripped from each line.
#[derive(Debug, Clone)]
pub struct LineFramer {
    buf: Vec<u8>,
    max_line: usize,
}

impl LineFramer {
    /// Creates a framer with a cap of `max_line` bytes per line.
    pub const fn new(max_line: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_line,
        }
    }

    /// Returns the cap.
    pub const fn max_line(&self) -> usize {
        self.max_line
    }

    /// Returns the bytes buffered of an unterminated line.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the heap bytes held.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Frees the buffer.
    pub fn clear(&mut self) {
        self.buf = Vec::new();
    }

    /// Feeds `input`, calling `on_line` for every complete line; stops early when `on_line`
    /// returns `false`, and returns the number of input bytes consumed.
    ///
    /// # Errors
    /// [`LineTooLongError`] when a line (complete or not) exceeds the cap; the framer's buffer
    /// is cleared and the connection should be closed.
    pub fn push(
        &mut self,
        mut input: &[u8],
        mut on_line: impl FnMut(&[u8]) -> bool,
    ) -> Result<usize, LineTooLongError> {
        let total = input.len();
        while !input.is_empty() {
            let Some(pos) = input.iter().position(|&b| b == b'\n') else {
                if self.buf.len().saturating_add(input.len()) > self.max_line {
                    self.clear();
                    return Err(LineTooLongError {
                        limit: self.max_line,
                    });
                }
                self.buf.extend_from_slice(input);
                return Ok(total);
            };
            let (head, rest) = input.split_at(pos);
            let rest = rest.get(1..).unwrap_or(&[]);
            if self.buf.len().saturating_add(head.len()) > self.max_line {
                self.clear();
                return Err(LineTooLongError {
                    limit: self.max_line,
                });
            }
            let keep_going = if self.buf.is_empty() {
                on_line(strip_cr(head))
            } else {
                self.buf.extend_from_slice(head);
                let line = std::mem::take(&mut self.buf);
                let go = on_line(strip_cr(&line));
                // Keep the allocation for the next partial line.
                self.buf = line;
                self.buf.clear();
                go
            };
            input = rest;
            if !keep_going {
                return Ok(total.saturating_sub(input.len()));
            }
        }
        Ok(total)
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(f: &mut LineFramer, input: &[u8]) -> Result<Vec<Vec<u8>>, LineTooLongError> {
        let mut v = Vec::new();
        f.push(input, |l| {
            v.push(l.to_vec());
            true
        })?;
        Ok(v)
    }

    #[test]
    fn splits_and_buffers() {
        let mut f = LineFramer::new(10);
        assert_eq!(lines(&mut f, b"ab\r\ncd").unwrap(), vec![b"ab".to_vec()]);
        assert_eq!(f.buffered(), 2);
        assert_eq!(
            lines(&mut f, b"e\n\nx").unwrap(),
            vec![b"cde".to_vec(), Vec::new()]
        );
        assert_eq!(f.buffered(), 1);
    }

    #[test]
    fn cap_is_enforced_before_newline() {
        let mut f = LineFramer::new(4);
        assert!(lines(&mut f, b"1234\n").is_ok());
        assert_eq!(lines(&mut f, b"12345"), Err(LineTooLongError { limit: 4 }));
        assert_eq!(f.buffered(), 0);
        assert!(lines(&mut f, b"12").is_ok());
        assert_eq!(lines(&mut f, b"345\n"), Err(LineTooLongError { limit: 4 }));
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let input = b"{\"a\":1}\n{\"b\":2}\r\nxyz\n";
        let mut whole = LineFramer::new(64);
        let w = lines(&mut whole, input).unwrap();
        let mut each = LineFramer::new(64);
        let mut e = Vec::new();
        for b in input {
            e.extend(lines(&mut each, std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(w, e);
    }

    #[test]
    fn stop_early_reports_consumed() {
        let mut f = LineFramer::new(64);
        let n = f.push(b"a\nb\nc\n", |l| l != b"b").unwrap();
        assert_eq!(n, 4);
    }
}
