//! Errors of one HTTP exchange.
//!
//! Owns the user-facing texts: each `Display` is what ends up in a plugin's status
//! (`"error: " + text`, spec §7.4) or in a log line, so the texts are lowercase, carry no
//! trailing period and say what was cut short or what was wrong. The `"error: "` prefix is
//! added by the caller, not here.

use std::fmt;

/// What went wrong while reading a response. Once a [`Call`](super::Call) returns one, the call
/// is finished and returns the same error again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The peer closed before the status line and headers were complete.
    HeadCutShort,
    /// The peer closed inside a body delimited by Content-Length.
    BodyCutShort {
        /// Body bytes received.
        received: u64,
        /// Body bytes announced by Content-Length.
        expected: u64,
    },
    /// The peer closed inside a chunked body, before the last chunk and its trailers.
    ChunkedBodyCutShort {
        /// Body bytes (chunk data) received.
        received: u64,
    },
    /// httparse rejected the status line or a header.
    InvalidHead(httparse::Error),
    /// The status line and headers together are larger than `Limits::max_head_bytes`.
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More header lines than `Limits::max_headers`.
    TooManyHeaders {
        /// The limit in header lines.
        limit: usize,
    },
    /// More than [`MAX_INTERIM_RESPONSES`] 1xx responses before the final one.
    TooManyInterimResponses,
    /// A 101 response to a request that did not ask to upgrade.
    UnexpectedSwitchingProtocols,
    /// Content-Length is not a decimal number, or several disagree.
    InvalidContentLength,
    /// A Transfer-Encoding other than exactly `chunked` (HTTP/1.1 only).
    UnsupportedTransferEncoding(String),
    /// A chunk-size line whose size is not 1 to 16 hex digits (spaces, tabs and extensions may
    /// follow), or that does not end in CRLF.
    InvalidChunkSize,
    /// A chunk-size line, extensions included, longer than [`MAX_CHUNK_LINE_BYTES`].
    ChunkLineTooLong,
    /// Chunk data not followed by CRLF, or a trailer line ended by a bare LF.
    MalformedChunkedEncoding,
    /// The trailers after the last chunk are larger than `Limits::max_head_bytes`.
    TrailersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body would be longer than `Limits::max_body_bytes`.
    ///
    /// The text is Scope's constant whatever the limit (spec §7.3); the limit is kept for logs.
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Go's client gives up after this many 1xx responses (`max1xxResponses` in `net/http`); we
/// do the same so a server cannot keep a call in its head phase with endless `100 Continue`s.
pub const MAX_INTERIM_RESPONSES: u8 = 5;

/// Go's chunked reader refuses chunk-size lines longer than this (`maxLineLength`); chunk
/// extensions are skipped, and this bounds the skipping.
pub const MAX_CHUNK_LINE_BYTES: usize = 4096;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::HeadCutShort => {
                f.write_str("connection closed before the response head was complete")
            }
            Error::BodyCutShort { received, expected } => {
                write!(
                    f,
                    "connection closed after {received} of {expected} body bytes"
                )
            }
            Error::ChunkedBodyCutShort { received } => write!(
                f,
                "connection closed after {received} body bytes, before the last chunk"
            ),
            Error::InvalidHead(e) => write!(f, "invalid response head: {e}"),
            Error::HeadTooLarge { limit } => write!(f, "response head larger than {limit} bytes"),
            Error::TooManyHeaders { limit } => {
                write!(f, "too many response headers (more than {limit})")
            }
            Error::TooManyInterimResponses => write!(
                f,
                "too many 1xx informational responses (more than {MAX_INTERIM_RESPONSES})"
            ),
            Error::UnexpectedSwitchingProtocols => {
                f.write_str("unexpected 101 switching protocols response")
            }
            Error::InvalidContentLength => f.write_str("invalid Content-Length"),
            // Go's wording and quoting (`%q`), so logs read the same as Scope's.
            Error::UnsupportedTransferEncoding(te) => {
                write!(f, "unsupported transfer encoding: {te:?}")
            }
            Error::InvalidChunkSize => f.write_str("invalid chunk size"),
            Error::ChunkLineTooLong => write!(
                f,
                "chunk size line longer than {MAX_CHUNK_LINE_BYTES} bytes"
            ),
            // Go's text for the same fault (`net/http/internal/chunked.go`).
            Error::MalformedChunkedEncoding => f.write_str("malformed chunked encoding"),
            Error::TrailersTooLarge { limit } => {
                write!(f, "response trailers larger than {limit} bytes")
            }
            // spec §7.3: Scope's exact text, whatever the configured limit.
            Error::BodyTooLarge { .. } => f.write_str("response must be shorter than 50MB"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: Error) -> String {
        e.to_string()
    }

    #[test]
    fn head_cut_short() {
        assert_eq!(
            text(Error::HeadCutShort),
            "connection closed before the response head was complete"
        );
    }

    #[test]
    fn body_cut_short() {
        let e = Error::BodyCutShort {
            received: 120,
            expected: 4096,
        };
        assert_eq!(text(e), "connection closed after 120 of 4096 body bytes");
    }

    #[test]
    fn chunked_body_cut_short() {
        let e = Error::ChunkedBodyCutShort { received: 7 };
        assert_eq!(
            text(e),
            "connection closed after 7 body bytes, before the last chunk"
        );
    }

    #[test]
    fn invalid_head() {
        let e = Error::InvalidHead(httparse::Error::Version);
        assert_eq!(text(e), "invalid response head: invalid HTTP version");
        let e = Error::InvalidHead(httparse::Error::HeaderName);
        assert_eq!(text(e), "invalid response head: invalid header name");
    }

    #[test]
    fn head_too_large() {
        let e = Error::HeadTooLarge { limit: 65536 };
        assert_eq!(text(e), "response head larger than 65536 bytes");
    }

    #[test]
    fn too_many_headers() {
        let e = Error::TooManyHeaders { limit: 64 };
        assert_eq!(text(e), "too many response headers (more than 64)");
    }

    #[test]
    fn too_many_interim_responses() {
        assert_eq!(
            text(Error::TooManyInterimResponses),
            "too many 1xx informational responses (more than 5)"
        );
    }

    #[test]
    fn unexpected_switching_protocols() {
        assert_eq!(
            text(Error::UnexpectedSwitchingProtocols),
            "unexpected 101 switching protocols response"
        );
    }

    #[test]
    fn invalid_content_length() {
        assert_eq!(text(Error::InvalidContentLength), "invalid Content-Length");
    }

    #[test]
    fn unsupported_transfer_encoding() {
        let e = Error::UnsupportedTransferEncoding("gzip, chunked".into());
        assert_eq!(text(e), "unsupported transfer encoding: \"gzip, chunked\"");
    }

    #[test]
    fn invalid_chunk_size() {
        assert_eq!(text(Error::InvalidChunkSize), "invalid chunk size");
    }

    #[test]
    fn chunk_line_too_long() {
        assert_eq!(
            text(Error::ChunkLineTooLong),
            "chunk size line longer than 4096 bytes"
        );
    }

    #[test]
    fn malformed_chunked_encoding() {
        assert_eq!(
            text(Error::MalformedChunkedEncoding),
            "malformed chunked encoding"
        );
    }

    #[test]
    fn trailers_too_large() {
        let e = Error::TrailersTooLarge { limit: 65536 };
        assert_eq!(text(e), "response trailers larger than 65536 bytes");
    }

    #[test]
    fn body_too_large_is_scopes_text_whatever_the_limit() {
        for limit in [52_428_800, 10, 0] {
            assert_eq!(
                text(Error::BodyTooLarge { limit }),
                "response must be shorter than 50MB"
            );
        }
    }
}
