//! The response head: parsing it with httparse into an owned [`ResponseHead`], and deciding
//! how the body that follows is framed.
//!
//! Owns the status line, the headers and the framing rules (RFC 9112 §6.3, with Go's
//! `net/http` choices where the RFC leaves room). Does not own buffering: the head is parsed
//! straight from the caller's input, and a partial head is reported, not copied.

use super::error::Error;

/// Headers parsed into a stack array up to this many; a larger `Limits::max_headers` uses a
/// heap array instead. 64 headers are 2 KiB of stack.
const STACK_HEADERS: usize = 64;

/// The HTTP version of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

/// One response header, owned. The value is bytes because HTTP allows obs-text in values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as sent (compare with `eq_ignore_ascii_case`).
    pub name: Box<str>,
    /// The value with surrounding whitespace removed.
    pub value: Box<[u8]>,
}

/// The status line and headers of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code, three digits.
    pub status: u16,
    /// The reason phrase as sent; empty when absent, or when it holds non-ASCII bytes (httparse
    /// does not return those).
    pub reason: Box<str>,
    /// The version from the status line.
    pub version: Version,
    /// The headers in the order sent.
    pub headers: Vec<Header>,
}

impl ResponseHead {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers_named(name).next()
    }

    /// The values of all headers called `name` (case-insensitive), in order.
    pub fn headers_named<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s [u8]> {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| &*h.value)
    }

    /// What Go calls `resp.Status`: the status line after the version, such as
    /// `500 Internal Server Error`, for `plugin returned non-200 status code: <Status>`
    /// (spec §7.4 step 2).
    pub fn status_string(&self) -> String {
        if self.reason.is_empty() {
            self.status.to_string()
        } else {
            format!("{} {}", self.status, self.reason)
        }
    }

    /// True for 1xx statuses.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all (204, 304, or a 101 that ends an upgrade).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the peer closes.
    UntilEof,
}

/// Parses a head from the front of `buf`. `Ok(None)` means `buf` holds only part of a head;
/// `Ok(Some((len, head)))` means the head is the first `len` bytes.
pub(crate) fn parse_head(
    buf: &[u8],
    max_headers: usize,
) -> Result<Option<(usize, ResponseHead)>, Error> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap;
    let slots: &mut [httparse::Header<'_>] = if max_headers <= STACK_HEADERS {
        stack.get_mut(..max_headers).unwrap_or_default()
    } else {
        heap = vec![httparse::EMPTY_HEADER; max_headers];
        &mut heap
    };
    let mut res = httparse::Response::new(slots);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Error::TooManyHeaders { limit: max_headers });
        }
        Err(e) => return Err(Error::InvalidHead(e)),
    };
    // httparse fills version, code and reason on a complete parse; a missing one would be a
    // malformed status line, so map it to httparse's own error rather than unwrap.
    let version = match res.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(Error::InvalidHead(httparse::Error::Version)),
    };
    let Some(status) = res.code else {
        return Err(Error::InvalidHead(httparse::Error::Status));
    };
    let headers = res
        .headers
        .iter()
        .map(|h| Header {
            name: h.name.into(),
            value: h.value.trim_ascii().into(),
        })
        .collect();
    let head = ResponseHead {
        status,
        reason: res.reason.unwrap_or_default().into(),
        version,
        headers,
    };
    Ok(Some((len, head)))
}

/// Whether a partial head `buf` is worth handing to httparse, given that `scanned` bytes of it
/// were offered last time and were not a complete head (`scanned == 0`: nothing yet).
///
/// The head is parsed from the caller's buffer, which grows by whatever each read brings. Parsing
/// it afresh on every read would cost O(n²) for a head dripped in byte by byte: up to 2 GiB of
/// scanning for a 64 KiB head, a stall of the whole loop. So a partial head is parsed again only
/// when the new bytes can end it (`\n\n` or `\n\r\n`), when its length passes a power of two
/// (so garbage and too many headers are still caught early), or when it reaches the head limit
/// (to tell a complete head from one too large). Only the new bytes are scanned: O(n) in all.
pub(crate) fn worth_parsing(buf: &[u8], scanned: usize, max_head: usize) -> bool {
    let len = buf.len();
    // `ilog2` is only reached with `len >= scanned > 0`.
    if scanned == 0 || len < scanned || len >= max_head || len.ilog2() > scanned.ilog2() {
        return true;
    }
    // An end of head ends in the new bytes; it can start up to two bytes before them.
    let fresh = buf.get(scanned.saturating_sub(2)..).unwrap_or_default();
    memchr::memmem::find(fresh, b"\n\n").is_some()
        || memchr::memmem::find(fresh, b"\n\r\n").is_some()
}

/// Decides the body framing of a final (non-1xx) response.
///
/// Follows Go's `net/http` transfer rules: Transfer-Encoding is ignored on HTTP/1.0, must be
/// exactly one `chunked` on HTTP/1.1 and then overrides Content-Length; repeated
/// Content-Length headers must agree.
pub(crate) fn framing(head: &ResponseHead) -> Result<Framing, Error> {
    if head.status == 204 || head.status == 304 {
        return Ok(Framing::None);
    }
    if head.version == Version::Http11 {
        let mut encodings = head.headers_named("transfer-encoding");
        if let Some(first) = encodings.next() {
            let rest = encodings.next();
            if rest.is_none() && first.eq_ignore_ascii_case(b"chunked") {
                return Ok(Framing::Chunked);
            }
            let all: Vec<_> = head
                .headers_named("transfer-encoding")
                .map(String::from_utf8_lossy)
                .collect();
            return Err(Error::UnsupportedTransferEncoding(all.join(", ")));
        }
    }
    let mut length = None;
    for value in head.headers_named("content-length") {
        let n = parse_content_length(value)?;
        if length.is_some_and(|l| l != n) {
            return Err(Error::InvalidContentLength);
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::UntilEof, Framing::Length))
}

/// A Content-Length value: 1 to 19 decimal digits (19 always fit a u64), nothing else.
fn parse_content_length(value: &[u8]) -> Result<u64, Error> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Error::InvalidContentLength);
    }
    Ok(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &[u8]) -> ResponseHead {
        let (len, head) = parse_head(raw, 64).unwrap().unwrap();
        assert_eq!(len, raw.len());
        head
    }

    #[test]
    fn parses_status_reason_version_and_headers() {
        let h = head(b"HTTP/1.0 500 Internal Server Error\r\nX-A:  spaced \r\nx-a: 2\r\n\r\n");
        assert_eq!(h.status, 500);
        assert_eq!(&*h.reason, "Internal Server Error");
        assert_eq!(h.version, Version::Http10);
        assert_eq!(h.header("X-A"), Some(&b"spaced"[..]));
        assert_eq!(
            h.headers_named("x-A").collect::<Vec<_>>(),
            [&b"spaced"[..], b"2"]
        );
        assert_eq!(h.header("missing"), None);
        assert_eq!(h.status_string(), "500 Internal Server Error");
    }

    #[test]
    fn status_string_without_reason() {
        assert_eq!(head(b"HTTP/1.1 201\r\n\r\n").status_string(), "201");
        assert_eq!(head(b"HTTP/1.1 299 \r\n\r\n").status_string(), "299");
    }

    #[test]
    fn partial_and_too_many_headers() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nA: b\r\n", 64), Ok(None));
        assert_eq!(parse_head(b"", 64), Ok(None));
        let raw = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
        assert!(parse_head(raw, 2).unwrap().is_some());
        assert_eq!(parse_head(raw, 1), Err(Error::TooManyHeaders { limit: 1 }));
        assert_eq!(parse_head(raw, 0), Err(Error::TooManyHeaders { limit: 0 }));
    }

    #[test]
    fn more_headers_than_the_stack_array() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..100 {
            raw.extend_from_slice(format!("H{i}: {i}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&raw, 100).unwrap().unwrap().1.headers.len(), 100);
        assert_eq!(
            parse_head(&raw, 99),
            Err(Error::TooManyHeaders { limit: 99 })
        );
    }

    #[test]
    fn worth_parsing_is_logarithmic_for_a_dripped_head() {
        let mut wire = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        wire.resize(65_000, b'a');
        wire.extend_from_slice(b"\r\n\r\n");
        let (mut scanned, mut parses) = (0, 0);
        for end in 1..=wire.len() {
            let buf = &wire[..end];
            if worth_parsing(buf, scanned, 65536) {
                parses += 1;
                if let Some((len, _)) = parse_head(buf, 64).unwrap() {
                    assert_eq!(len, wire.len());
                    break;
                }
            }
            scanned = buf.len();
        }
        // 16 powers of two up to 64 KiB, the "\r\n\r" forms after the status line, the end.
        assert!(parses <= 20, "{parses} parses");
    }

    #[test]
    fn worth_parsing_sees_an_end_split_across_reads() {
        let wire = b"HTTP/1.1 204 No Content\r\nA: b\r\n\r\n";
        for scanned in 1..wire.len() {
            // Jump to the complete head: it must be parsed, wherever the last read ended.
            assert!(worth_parsing(wire, scanned, 1024), "scanned {scanned}");
        }
        assert!(worth_parsing(b"xx\n\n", 3, 1024));
        assert!(worth_parsing(b"xxxxxxxx", 7, 1024));
        assert!(!worth_parsing(b"HTTP/1.1 200 OK\r\nA: bc", 20, 1024));
        assert!(!worth_parsing(b"HTTP/1.1 200 OK\r\nA: bc", 22, 1024));
        assert!(worth_parsing(b"HTTP/1.1 200 OK\r\nA: bc", 20, 22));
    }

    fn framing_of(raw: &[u8]) -> Result<Framing, Error> {
        framing(&head(raw))
    }

    #[test]
    fn framing_rules() {
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"),
            Ok(Framing::Length(12))
        );
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n"),
            Ok(Framing::Length(3))
        );
        assert_eq!(
            framing_of(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nContent-Length: 3\r\n\r\n"
            ),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\n\r\n"),
            Ok(Framing::UntilEof)
        );
        assert_eq!(
            framing_of(b"HTTP/1.0 200 OK\r\n\r\n"),
            Ok(Framing::UntilEof)
        );
        // Go ignores Transfer-Encoding on HTTP/1.0.
        assert_eq!(
            framing_of(
                b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
            ),
            Ok(Framing::Length(2))
        );
        for status in [204, 304] {
            let raw = format!("HTTP/1.1 {status} X\r\nContent-Length: 5\r\n\r\n");
            assert_eq!(framing_of(raw.as_bytes()), Ok(Framing::None));
        }
    }

    #[test]
    fn bad_content_lengths() {
        for value in [
            "",
            "-1",
            "+1",
            "1,1",
            "1 1",
            "0x10",
            "abc",
            "18446744073709551616000",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
            assert_eq!(
                framing_of(raw.as_bytes()),
                Err(Error::InvalidContentLength),
                "{value:?}"
            );
        }
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(Error::InvalidContentLength)
        );
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n"),
            Ok(Framing::Length(9_999_999_999_999_999_999))
        );
    }

    #[test]
    fn unsupported_transfer_encodings() {
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Err(Error::UnsupportedTransferEncoding("gzip, chunked".into()))
        );
        assert_eq!(
            framing_of(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            Err(Error::UnsupportedTransferEncoding("chunked, chunked".into()))
        );
    }
}
