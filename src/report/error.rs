//! The one error decoding can give: what is wrong, at which byte, and where in the document.
//!
//! Owns the user-facing text of decoding errors. The plugin host wraps it in its own
//! `decoding error: …` status (spec §7.4 step 4); that prefix is not added here.

use std::fmt;

/// Why a report body could not be decoded.
///
/// `Display` is `<what> at byte <offset>`, followed by ` in <path>` when the JSON path of the
/// fault is known, e.g.
/// `invalid time "2016-07-20T15:51:05Z01:00": extra text after 'Z' at byte 130 in
/// Host.nodes["vm;<host>"].latest.os.timestamp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    what: String,
    offset: usize,
    path: Option<String>,
}

/// `err`'s message without the " at line L column C" serde_json appends: callers say where
/// the fault is their own way (a byte offset, or the position of an enclosing token).
pub(crate) fn message_without_position(err: &serde_json::Error) -> String {
    let full = err.to_string();
    match full.rfind(" at line ") {
        Some(i) if err.line() != 0 => full[..i].to_owned(),
        _ => full,
    }
}

impl DecodeError {
    pub(crate) fn utf8(valid_up_to: usize) -> DecodeError {
        DecodeError {
            what: "invalid UTF-8".to_owned(),
            offset: valid_up_to,
            path: None,
        }
    }

    pub(crate) fn from_json(text: &str, err: &serde_json::Error, path: Option<String>) -> Self {
        DecodeError {
            what: message_without_position(err),
            offset: byte_offset(text, err.line(), err.column()),
            path: path.filter(|p| !p.is_empty()),
        }
    }

    /// Byte offset in the body where decoding stopped.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// JSON path of the fault (`Host.nodes["vm;<host>"].latest.os.timestamp`), when known.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
}

/// serde_json's 1-based line and 0-based byte column → byte offset in `text`.
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    if line <= 1 {
        return column.min(text.len());
    }
    let line_start = memchr::memchr_iter(b'\n', text.as_bytes())
        .nth(line - 2)
        .map_or(text.len(), |i| i + 1);
    (line_start + column).min(text.len())
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)?;
        if let Some(path) = &self.path {
            write!(f, " in {path}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Time, decode_plugin_report};

    fn err(body: &str) -> DecodeError {
        decode_plugin_report(body.as_bytes(), Time::ZERO).unwrap_err()
    }

    #[test]
    fn utf8_error_names_byte() {
        let e = decode_plugin_report(b"{\"ID\":\"\xff\"}", Time::ZERO).unwrap_err();
        assert_eq!(e.to_string(), "invalid UTF-8 at byte 7");
    }

    #[test]
    fn json_error_names_byte_and_path() {
        let body = "{\"Host\":{\"nodes\":{\"vm;<host>\":{\"latest\":{\"os\":\
                    {\"timestamp\":\"2016-07-20T15:51:05Z01:00\",\"value\":\"linux\"}}}}}}";
        let e = err(body);
        assert_eq!(
            e.path(),
            Some("Host.nodes[\"vm;<host>\"].latest.os.timestamp"),
            "{e}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with("invalid time \"2016-07-20T15:51:05Z01:00\": "),
            "{text}"
        );
        assert!(
            text.ends_with(" in Host.nodes[\"vm;<host>\"].latest.os.timestamp"),
            "{text}"
        );
        // The offset is just after the bad value.
        assert_eq!(&body[e.offset() - 1..e.offset()], "\"");
    }

    #[test]
    fn multi_line_offset() {
        let body = "{\n \"Window\": 1.5\n}";
        let e = err(body);
        // Just after the bad value, like every value error.
        assert_eq!(e.offset(), 16, "{e}");
        assert_eq!(e.path(), Some("Window"));
    }

    #[test]
    fn empty_body_is_an_error() {
        let e = err("");
        assert_eq!(e.to_string(), "EOF while parsing a value at byte 0");
    }
}
