//! Splits a byte stream arriving in arbitrary pieces into numbered lines, with a bound on line length.

/// What the splitter found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line without its `\n` (a `\r` before it is kept for the caller to judge).
    Text { number: u64, bytes: &'a [u8] },
    /// A line longer than the limit; its bytes were dropped as they arrived.
    TooLong { number: u64, len: u64 },
}

/// Incremental line splitter: feed pieces, get lines; memory stays under `max_line` bytes.
pub struct LineSplitter {
    max_line: usize,
    carry: Vec<u8>,
    /// Length of the line being dropped because it is too long, if any.
    overflow: Option<u64>,
    number: u64,
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        Self { max_line, carry: Vec::new(), overflow: None, number: 0 }
    }

    /// Feeds the next piece of the stream, calling `f` for every line it completes.
    pub fn feed<E>(
        &mut self,
        mut data: &[u8],
        f: &mut impl FnMut(Line<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        while !data.is_empty() {
            match memchr(b'\n', data) {
                Some(pos) => {
                    let (head, rest) = (&data[..pos], &data[pos + 1..]);
                    data = rest;
                    self.number += 1;
                    if let Some(len) = self.overflow.take() {
                        f(Line::TooLong { number: self.number, len: len + head.len() as u64 })?;
                    } else if self.carry.is_empty() {
                        self.emit(head, f)?;
                    } else if self.carry.len() + head.len() > self.max_line {
                        let len = (self.carry.len() + head.len()) as u64;
                        self.carry.clear();
                        f(Line::TooLong { number: self.number, len })?;
                    } else {
                        let mut line = std::mem::take(&mut self.carry);
                        line.extend_from_slice(head);
                        self.emit(&line, f)?;
                        line.clear();
                        self.carry = line;
                    }
                }
                None => {
                    if let Some(len) = self.overflow.as_mut() {
                        *len += data.len() as u64;
                    } else if self.carry.len() + data.len() > self.max_line {
                        self.overflow = Some((self.carry.len() + data.len()) as u64);
                        self.carry.clear();
                    } else {
                        self.carry.extend_from_slice(data);
                    }
                    data = &[];
                }
            }
        }
        Ok(())
    }

    /// Ends the stream: a last line without a trailing newline is still a line.
    pub fn finish<E>(&mut self, f: &mut impl FnMut(Line<'_>) -> Result<(), E>) -> Result<(), E> {
        if let Some(len) = self.overflow.take() {
            self.number += 1;
            return f(Line::TooLong { number: self.number, len });
        }
        if !self.carry.is_empty() {
            self.number += 1;
            let line = std::mem::take(&mut self.carry);
            self.emit(&line, f)?;
        }
        Ok(())
    }

    fn emit<E>(
        &self,
        bytes: &[u8],
        f: &mut impl FnMut(Line<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if bytes.len() > self.max_line {
            f(Line::TooLong { number: self.number, len: bytes.len() as u64 })
        } else {
            f(Line::Text { number: self.number, bytes })
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pieces: &[&[u8]], max: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut s = LineSplitter::new(max);
        let mut f = |l: Line<'_>| -> Result<(), ()> {
            out.push(match l {
                Line::Text { number, bytes } => {
                    format!("{number}:{}", String::from_utf8_lossy(bytes))
                }
                Line::TooLong { number, len } => format!("{number}:too long {len}"),
            });
            Ok(())
        };
        for p in pieces {
            s.feed(p, &mut f).unwrap();
        }
        s.finish(&mut f).unwrap();
        out
    }

    #[test]
    fn lines_split_across_pieces_are_joined_and_numbered() {
        assert_eq!(split(&[b"ab", b"c\nd", b"e\n\nf"], 10), ["1:abc", "2:de", "3:", "4:f"]);
    }

    #[test]
    fn trailing_newline_adds_no_line() {
        assert_eq!(split(&[b"a\nb\n"], 10), ["1:a", "2:b"]);
    }

    #[test]
    fn overlong_lines_are_reported_with_their_length_and_dropped() {
        assert_eq!(
            split(&[b"0123", b"456789", b"ab\nok\n0123456789ab"], 5),
            ["1:too long 12", "2:ok", "3:too long 12"]
        );
        assert_eq!(split(&[b"123456\nx"], 5), ["1:too long 6", "2:x"]);
    }
}
