//! `Transfer-Encoding: chunked` decoding (RFC 9112 §7.1), byte by byte, without buffering.
//!
//! Owns the chunk framing only: sizes, extensions (skipped), the CRLF after each chunk and the
//! trailer section (skipped). It does not own the body buffer or know about heads; the
//! [`Call`](super::Call) hands it the input and the body `Vec` to append to.
//!
//! Every byte of input is consumed as it arrives, so a size line or trailer split across reads
//! needs no buffer: the state carries the partial size and a few counters. Line ends must be
//! CRLF; a bare LF is refused, as Go does since the fix for CVE-2025-22871.

use super::error::{Error, MAX_CHUNK_LINE_BYTES};

/// Where the decoder is inside the chunked framing. Each state is named for what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dechunker {
    /// Hex digits of a chunk size. `digits` counts them (at most 16, so `size` cannot
    /// overflow); `line` counts the bytes of this size line so far.
    Size { size: u64, digits: u8, line: usize },
    /// Spaces or tabs after the size, before `;` or CR.
    SizeSpace { size: u64, line: usize },
    /// A chunk extension (`;name=value`), skipped up to CR.
    Extension { size: u64, line: usize },
    /// The LF that ends the size line.
    SizeLf { size: u64 },
    /// Chunk data; `remaining > 0`.
    Data { remaining: u64 },
    /// The CR after chunk data.
    DataCr,
    /// The LF after chunk data.
    DataLf,
    /// A trailer line (skipped), or the empty line that ends the body. `bytes` counts all
    /// bytes after the last-chunk line so far, the final CRLF included; `line_empty` is true
    /// while the current line has no bytes.
    Trailer { bytes: usize, line_empty: bool },
    /// The LF that ends a trailer line, or the body when `line_empty`.
    TrailerLf { bytes: usize, line_empty: bool },
    /// The empty line after the trailers has been read; the body is complete.
    Done,
}

/// Bounds the decoder enforces, copied from the call's `Limits`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkLimits {
    /// The body (sum of chunk data) may be at most this long.
    pub max_body_bytes: usize,
    /// The trailer section may be at most this long.
    pub max_trailer_bytes: usize,
}

impl Dechunker {
    /// A decoder waiting for the first chunk size.
    pub(crate) fn new() -> Dechunker {
        Dechunker::Size {
            size: 0,
            digits: 0,
            line: 0,
        }
    }

    /// True once the last chunk and the trailers have been read.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Dechunker::Done)
    }

    /// Decodes `src`, appending chunk data to `dst`. Returns how many bytes of `src` were used:
    /// all of them, unless the body ends inside `src` (then the bytes after it are left).
    ///
    /// Fails as soon as `dst` would grow past `limits.max_body_bytes`: at a chunk size that
    /// announces too much, before any of its data is copied.
    pub(crate) fn parse_input(
        &mut self,
        src: &[u8],
        dst: &mut Vec<u8>,
        limits: ChunkLimits,
    ) -> Result<usize, Error> {
        let mut used = 0;
        while used < src.len() {
            if self.is_done() {
                break;
            }
            if let Dechunker::Data { remaining } = *self {
                // The one copy of the body: a run of chunk data straight into `dst`.
                let rest = src.get(used..).unwrap_or_default();
                let take = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                dst.extend_from_slice(rest.get(..take).unwrap_or_default());
                used += take;
                let remaining = remaining - take as u64;
                *self = if remaining == 0 {
                    Dechunker::DataCr
                } else {
                    Dechunker::Data { remaining }
                };
                continue;
            }
            let Some(&b) = src.get(used) else { break };
            used += 1;
            self.handle_byte(b, dst, limits)?;
        }
        Ok(used)
    }

    /// Advances over one byte. `parse_input` copies runs of chunk data itself; the `Data` arm
    /// here only keeps this function total.
    fn handle_byte(&mut self, b: u8, dst: &mut Vec<u8>, limits: ChunkLimits) -> Result<(), Error> {
        *self = match *self {
            Dechunker::Size { size, digits, line } => {
                let line = grow_line(line, b)?;
                match (hex_value(b), b) {
                    (Some(v), _) => {
                        // 16 hex digits fill a u64; Go refuses more as "too large".
                        if digits == 16 {
                            return Err(Error::InvalidChunkSize);
                        }
                        Dechunker::Size {
                            size: size << 4 | u64::from(v),
                            digits: digits + 1,
                            line,
                        }
                    }
                    _ if digits == 0 => return Err(Error::InvalidChunkSize),
                    (None, b' ' | b'\t') => Dechunker::SizeSpace { size, line },
                    (None, b';') => Dechunker::Extension { size, line },
                    (None, b'\r') => Dechunker::SizeLf { size },
                    (None, _) => return Err(Error::InvalidChunkSize),
                }
            }
            Dechunker::SizeSpace { size, line } => {
                let line = grow_line(line, b)?;
                match b {
                    b' ' | b'\t' => Dechunker::SizeSpace { size, line },
                    b';' => Dechunker::Extension { size, line },
                    b'\r' => Dechunker::SizeLf { size },
                    _ => return Err(Error::InvalidChunkSize),
                }
            }
            Dechunker::Extension { size, line } => {
                let line = grow_line(line, b)?;
                match b {
                    b'\r' => Dechunker::SizeLf { size },
                    b'\n' => return Err(Error::InvalidChunkSize),
                    _ => Dechunker::Extension { size, line },
                }
            }
            Dechunker::SizeLf { size } => {
                if b != b'\n' {
                    return Err(Error::InvalidChunkSize);
                }
                if size == 0 {
                    Dechunker::Trailer {
                        bytes: 0,
                        line_empty: true,
                    }
                } else {
                    // Fail at the size line: the chunk alone would pass the limit.
                    let room = limits.max_body_bytes.saturating_sub(dst.len());
                    if size > room as u64 {
                        return Err(Error::BodyTooLarge {
                            limit: limits.max_body_bytes,
                        });
                    }
                    Dechunker::Data { remaining: size }
                }
            }
            Dechunker::Data { remaining } => {
                dst.push(b);
                match remaining {
                    0 | 1 => Dechunker::DataCr,
                    r => Dechunker::Data { remaining: r - 1 },
                }
            }
            Dechunker::DataCr => match b {
                b'\r' => Dechunker::DataLf,
                _ => return Err(Error::MalformedChunkedEncoding),
            },
            Dechunker::DataLf => match b {
                b'\n' => Dechunker::new(),
                _ => return Err(Error::MalformedChunkedEncoding),
            },
            Dechunker::Trailer { bytes, line_empty } => {
                let bytes = bytes + 1;
                if bytes > limits.max_trailer_bytes {
                    return Err(Error::TrailersTooLarge {
                        limit: limits.max_trailer_bytes,
                    });
                }
                match b {
                    b'\r' => Dechunker::TrailerLf { bytes, line_empty },
                    b'\n' => return Err(Error::MalformedChunkedEncoding),
                    _ => Dechunker::Trailer {
                        bytes,
                        line_empty: false,
                    },
                }
            }
            Dechunker::TrailerLf { bytes, line_empty } => {
                let bytes = bytes + 1;
                if bytes > limits.max_trailer_bytes {
                    return Err(Error::TrailersTooLarge {
                        limit: limits.max_trailer_bytes,
                    });
                }
                match (b, line_empty) {
                    (b'\n', true) => Dechunker::Done,
                    (b'\n', false) => Dechunker::Trailer {
                        bytes,
                        line_empty: true,
                    },
                    _ => return Err(Error::MalformedChunkedEncoding),
                }
            }
            Dechunker::Done => Dechunker::Done,
        };
        Ok(())
    }
}

/// Counts byte `b` of a size line, refusing lines past Go's bound. The CR that ends the line
/// does not count: the bound is on the size and its extensions.
fn grow_line(line: usize, b: u8) -> Result<usize, Error> {
    if b == b'\r' {
        return Ok(line);
    }
    let line = line + 1;
    if line > MAX_CHUNK_LINE_BYTES {
        return Err(Error::ChunkLineTooLong);
    }
    Ok(line)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ChunkLimits = ChunkLimits {
        max_body_bytes: 1 << 20,
        max_trailer_bytes: 1024,
    };

    /// Decodes `src` in one go; returns (used, body, done).
    fn decode(src: &[u8]) -> Result<(usize, Vec<u8>, bool), Error> {
        decode_with(src, LIMITS)
    }

    fn decode_with(src: &[u8], limits: ChunkLimits) -> Result<(usize, Vec<u8>, bool), Error> {
        let mut d = Dechunker::new();
        let mut body = Vec::new();
        let used = d.parse_input(src, &mut body, limits)?;
        Ok((used, body, d.is_done()))
    }

    /// Decodes `src` one byte at a time.
    fn decode_bytewise(src: &[u8]) -> Result<(usize, Vec<u8>, bool), Error> {
        let mut d = Dechunker::new();
        let mut body = Vec::new();
        let mut used = 0;
        for i in 0..src.len() {
            used += d.parse_input(&src[i..i + 1], &mut body, LIMITS)?;
            if d.is_done() {
                break;
            }
        }
        Ok((used, body, d.is_done()))
    }

    #[test]
    fn simple_body() {
        let src = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        assert_eq!(
            decode(src).unwrap(),
            (src.len(), b"hello world".to_vec(), true)
        );
        assert_eq!(
            decode_bytewise(src).unwrap(),
            (src.len(), b"hello world".to_vec(), true)
        );
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let src = b"1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
        assert_eq!(decode(src).unwrap(), (11, b"a".to_vec(), true));
    }

    #[test]
    fn hex_sizes_either_case() {
        let data = vec![b'x'; 0xab];
        let mut src = b"aB\r\n".to_vec();
        src.extend_from_slice(&data);
        src.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(decode(&src).unwrap().1, data);
    }

    #[test]
    fn leading_zeros_and_sixteen_digits() {
        let src = b"0000000000000001\r\nz\r\n0\r\n\r\n";
        assert_eq!(decode(src).unwrap().1, b"z");
        assert_eq!(
            decode(b"00000000000000001\r\n"),
            Err(Error::InvalidChunkSize)
        );
    }

    #[test]
    fn extensions_and_spaces_are_skipped() {
        let src = b"3 \t;name=\"va;l\"\r\nabc\r\n0;last\r\n\r\n";
        assert_eq!(decode(src).unwrap(), (src.len(), b"abc".to_vec(), true));
    }

    #[test]
    fn trailers_are_skipped() {
        let src = b"2\r\nok\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n";
        assert_eq!(decode(src).unwrap(), (src.len(), b"ok".to_vec(), true));
        assert_eq!(
            decode_bytewise(src).unwrap(),
            (src.len(), b"ok".to_vec(), true)
        );
    }

    #[test]
    fn partial_input_is_not_an_error() {
        for src in [
            &b"5\r\nhel"[..],
            b"5",
            b"5\r",
            b"5;ext",
            b"0\r\n",
            b"0\r\nX: y\r",
        ] {
            let (used, _, done) = decode(src).unwrap();
            assert_eq!(used, src.len());
            assert!(!done);
        }
    }

    #[test]
    fn bad_sizes() {
        for src in [
            &b"\r\n"[..],
            b"x\r\n",
            b"-1\r\n",
            b" 1\r\n",
            b"1 2\r\n",
            b"0x10\r\n",
            b"1\n",
            b"1\rX",
            b";ext\r\n",
            b"1;ext\n",
        ] {
            assert_eq!(decode(src), Err(Error::InvalidChunkSize), "{src:?}");
        }
    }

    #[test]
    fn missing_crlf_after_data() {
        assert_eq!(decode(b"1\r\nab\r\n"), Err(Error::MalformedChunkedEncoding));
        assert_eq!(decode(b"1\r\na\rX"), Err(Error::MalformedChunkedEncoding));
        assert_eq!(
            decode(b"1\r\na\n0\r\n\r\n"),
            Err(Error::MalformedChunkedEncoding)
        );
    }

    #[test]
    fn bare_lf_in_trailers() {
        assert_eq!(
            decode(b"0\r\nX: y\n\r\n"),
            Err(Error::MalformedChunkedEncoding)
        );
        assert_eq!(decode(b"0\r\n\n"), Err(Error::MalformedChunkedEncoding));
        assert_eq!(decode(b"0\r\n\rX"), Err(Error::MalformedChunkedEncoding));
    }

    #[test]
    fn size_line_bound() {
        let mut src = b"1;".to_vec();
        src.resize(MAX_CHUNK_LINE_BYTES, b'e');
        src.extend_from_slice(b"\r\na\r\n0\r\n\r\n");
        assert_eq!(decode(&src).unwrap().1, b"a");

        let mut src = b"1;".to_vec();
        src.resize(MAX_CHUNK_LINE_BYTES + 1, b'e');
        assert_eq!(decode(&src), Err(Error::ChunkLineTooLong));
    }

    #[test]
    fn trailer_bound() {
        let limits = ChunkLimits {
            max_body_bytes: 100,
            max_trailer_bytes: 10,
        };
        // The trailer section "X: 123\r\n\r\n" is 10 bytes.
        assert!(decode_with(b"0\r\nX: 123\r\n\r\n", limits).unwrap().2);
        assert_eq!(
            decode_with(b"0\r\nX: 1234\r\n\r\n", limits),
            Err(Error::TrailersTooLarge { limit: 10 })
        );
    }

    #[test]
    fn body_limit_is_checked_at_each_size_line() {
        let limits = ChunkLimits {
            max_body_bytes: 4,
            max_trailer_bytes: 10,
        };
        let exact = b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
        assert_eq!(decode_with(exact, limits).unwrap().1, b"abcd");
        let over = b"2\r\nab\r\n3\r\n";
        assert_eq!(
            decode_with(over, limits),
            Err(Error::BodyTooLarge { limit: 4 })
        );
        let huge = b"ffffffffffffffff\r\n";
        assert_eq!(
            decode_with(huge, limits),
            Err(Error::BodyTooLarge { limit: 4 })
        );
    }
}
