//! The plugin ID rule (spec §7.2) and Go's `%q` quoting for user-facing messages.
//!
//! A plugin's ID is its socket's base name with the last extension removed, exactly Go's
//! `strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))`, and it must match
//! `^[A-Za-z0-9]+([-][A-Za-z0-9]+)*$` (checked by hand, no regex engine). A socket with an
//! invalid ID is not loaded and is logged as
//! `plugins: error loading plugin <path>: invalid plugin id "<id>"`; the check runs again on
//! every scan.
//!
//! [`go_quote`] reproduces Go's `strconv.Quote` (what `%q` prints) so messages that quote
//! plugin data match Scope's byte for byte; see its doc for the one approximation.
//!
//! Out of scope: where sockets are found ([`super::scan`]) and what happens to loaded plugins.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A socket whose derived ID does not match the spec's pattern (§7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPluginId {
    /// The rejected ID (lossy UTF-8 if the socket name was not UTF-8).
    id: String,
    /// The ID as Go's `%q` prints it, computed from the raw bytes so that invalid UTF-8
    /// shows as `\xNN` exactly as Scope logs it.
    quoted: String,
}

impl InvalidPluginId {
    /// The rejected ID.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for InvalidPluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid plugin id {}", self.quoted)
    }
}

impl std::error::Error for InvalidPluginId {}

/// The plugin ID for a socket path: its base name minus its last extension (spec §7.2).
///
/// `my-plugin.sock` → `my-plugin`, `plugin` → `plugin`, `a.b.sock` → `a.b`, `.sock` → `""`,
/// `dir.d/inner.sock` → `inner`. A base name that is not UTF-8 is converted lossily; such an
/// ID is never valid anyway, and [`check_plugin_path`] quotes the raw bytes in its error.
pub fn plugin_id_from_path(path: &Path) -> String {
    String::from_utf8_lossy(plugin_id_bytes(path.as_os_str().as_bytes())).into_owned()
}

/// Checks an ID against `^[A-Za-z0-9]+([-][A-Za-z0-9]+)*$` (spec §7.2): runs of ASCII
/// letters and digits joined by single dashes, no leading or trailing dash.
pub fn validate_plugin_id(id: &str) -> Result<(), InvalidPluginId> {
    if is_valid_id(id.as_bytes()) {
        Ok(())
    } else {
        Err(InvalidPluginId {
            id: id.to_owned(),
            quoted: go_quote(id),
        })
    }
}

/// Derives and validates a socket's plugin ID in one step: `Ok(id)` for a loadable plugin,
/// or the error whose `Display` is Scope's exact text even for non-UTF-8 names.
pub fn check_plugin_path(path: &Path) -> Result<String, InvalidPluginId> {
    let raw = plugin_id_bytes(path.as_os_str().as_bytes());
    if is_valid_id(raw) {
        // A valid ID is ASCII, so this never replaces anything.
        Ok(String::from_utf8_lossy(raw).into_owned())
    } else {
        Err(InvalidPluginId {
            id: String::from_utf8_lossy(raw).into_owned(),
            quoted: go_quote_bytes(raw),
        })
    }
}

/// `strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))` on raw path bytes.
///
/// Go computes `Ext` on the whole path, not the base name: for `x.sock/` (trailing slash) the
/// extension is empty but the base is `x.sock`. Both are reproduced here.
fn plugin_id_bytes(p: &[u8]) -> &[u8] {
    let base = go_base(p);
    base.strip_suffix(go_ext(p)).unwrap_or(base)
}

/// Go's `filepath.Base` on unix: trailing slashes dropped, then the last element; `"."` for an
/// empty path and `"/"` for a path of only slashes.
fn go_base(p: &[u8]) -> &[u8] {
    if p.is_empty() {
        return b".";
    }
    let trimmed = match p.iter().rposition(|&b| b != b'/') {
        Some(last) => &p[..=last],
        None => return b"/",
    };
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(slash) => &trimmed[slash + 1..],
        None => trimmed,
    }
}

/// Go's `filepath.Ext`: from the last `.` of the final element to the end, or empty.
fn go_ext(p: &[u8]) -> &[u8] {
    for (i, &b) in p.iter().enumerate().rev() {
        match b {
            b'/' => break,
            b'.' => return &p[i..],
            _ => {}
        }
    }
    b""
}

fn is_valid_id(id: &[u8]) -> bool {
    // `split` yields an empty run for a leading, trailing or doubled dash, and for "".
    id.split(|&b| b == b'-')
        .all(|run| !run.is_empty() && run.iter().all(u8::is_ascii_alphanumeric))
}

/// Go's `strconv.Quote`: `s` in double quotes with Go escapes (`\"`, `\\`, `\a`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, `\v`, `\xNN` for other control bytes, `\uNNNN`/`\UNNNNNNNN` for other
/// non-printable characters); printable characters are kept as they are.
///
/// "Printable" follows Go's `unicode.IsPrint` (letters, marks, numbers, punctuation, symbols
/// and the ASCII space) for every assigned character of the categories that matter: control,
/// format, private-use, separators and noncharacters are escaped. One approximation: code
/// points unassigned in Unicode are kept, where Go escapes them (std has no category table).
pub fn go_quote(s: &str) -> String {
    go_quote_bytes(s.as_bytes())
}

/// [`go_quote`] for bytes that may not be UTF-8: each byte of an invalid sequence is written
/// `\xNN`, as Go does for a string holding invalid UTF-8.
pub fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for &b in chunk.invalid() {
            push_hex_escape(&mut out, 'x', u32::from(b), 2);
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' | '\\' => {
            out.push('\\');
            out.push(c);
        }
        _ if is_go_print(c) => out.push(c),
        '\u{07}' => out.push_str("\\a"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0C}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{0B}' => out.push_str("\\v"),
        _ if c < ' ' || c == '\u{7F}' => push_hex_escape(out, 'x', u32::from(c), 2),
        _ if u32::from(c) < 0x1_0000 => push_hex_escape(out, 'u', u32::from(c), 4),
        _ => push_hex_escape(out, 'U', u32::from(c), 8),
    }
}

fn push_hex_escape(out: &mut String, kind: char, value: u32, digits: usize) {
    use fmt::Write;
    // Writing into a String cannot fail.
    let _ = write!(out, "\\{kind}{value:0digits$x}");
}

/// Go's `unicode.IsPrint`, exact for Latin-1 (as Go special-cases it) and for the assigned
/// non-printable ranges above it; see [`go_quote`] for the unassigned-code-point caveat.
fn is_go_print(c: char) -> bool {
    let cp = u32::from(c);
    if cp <= 0xFF {
        // Go: 0x20..=0x7E, and 0xA1..=0xFF except the soft hyphen.
        return (0x20..=0x7E).contains(&cp) || ((0xA1..=0xFF).contains(&cp) && cp != 0xAD);
    }
    // Noncharacters: U+FDD0..U+FDEF and the last two code points of every plane.
    if (0xFDD0..=0xFDEF).contains(&cp) || cp & 0xFFFE == 0xFFFE {
        return false;
    }
    !NOT_PRINT.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

/// Assigned code points above U+00FF that are not graphic (Unicode 15 categories Zs, Zl, Zp,
/// Cf and Co), as inclusive ranges.
const NOT_PRINT: &[(u32, u32)] = &[
    // Separators (Zs except U+0020, Zl, Zp).
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    // Format characters (Cf).
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
    // Private use (Co).
    (0xE000, 0xF8FF),
    (0xF0000, 0xFFFFD),
    (0x100000, 0x10FFFD),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::ffi::OsStr;

    fn id(p: &str) -> String {
        plugin_id_from_path(Path::new(p))
    }

    #[test]
    fn id_is_base_name_minus_last_extension() {
        // spec §7.2 examples
        assert_eq!(id("my-plugin.sock"), "my-plugin");
        assert_eq!(id("plugin"), "plugin");
        assert_eq!(id("a.b.sock"), "a.b");
        assert_eq!(id(".sock"), "");
        // Directories never contribute, dotted or not.
        assert_eq!(id("/var/run/scope/plugins/dir.d/inner.sock"), "inner");
        assert_eq!(id("/run/dir.d/plain"), "plain");
        assert_eq!(id("/run/x/.sock"), "");
        assert_eq!(id("other-ext.json"), "other-ext");
        assert_eq!(id("trailing."), "trailing");
        // Go's Ext looks at the whole path: with a trailing slash there is no extension.
        assert_eq!(id("x.sock/"), "x.sock");
        assert_eq!(id("/"), "/");
        // Go: Base("") is "." and Ext("") is "", so the ID is ".".
        assert_eq!(id(""), ".");
    }

    #[test]
    fn go_base_and_ext_edge_cases() {
        assert_eq!(go_base(b""), b".");
        assert_eq!(go_base(b"///"), b"/");
        assert_eq!(go_base(b"a/b//"), b"b");
        assert_eq!(go_ext(b"a.d/b"), b"");
        assert_eq!(go_ext(b"."), b".");
        // Go: TrimSuffix(".", Ext(".")) is "".
        assert_eq!(plugin_id_bytes(b"."), b"");
    }

    #[test]
    fn valid_ids_of_the_spec() {
        for ok in [
            "P-L-U-G-I-N",
            "another-testPlugin",
            "my-plugin",
            "plugin",
            "UPPER-Case-9",
            "9",
        ] {
            assert_eq!(validate_plugin_id(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn invalid_ids_of_the_spec() {
        for bad in [
            "testPlugin!",
            "test~plugin",
            "testPlugin-",
            "-testPlugin",
            "a.b",
            "",
            "bad_id",
            "bad--id",
            "-",
            "über",
            "a b",
        ] {
            let err = validate_plugin_id(bad).unwrap_err();
            assert_eq!(err.id(), bad);
        }
    }

    #[test]
    fn error_text_is_scopes() {
        let err = validate_plugin_id("a.b").unwrap_err();
        assert_eq!(err.to_string(), r#"invalid plugin id "a.b""#);
        let err = validate_plugin_id("").unwrap_err();
        assert_eq!(err.to_string(), r#"invalid plugin id """#);
        let err = validate_plugin_id("say \"hi\"\n").unwrap_err();
        assert_eq!(err.to_string(), r#"invalid plugin id "say \"hi\"\n""#);
    }

    #[test]
    fn check_plugin_path_quotes_raw_bytes() {
        assert_eq!(
            check_plugin_path(Path::new("/r/good-one.sock")),
            Ok("good-one".into())
        );
        let err = check_plugin_path(Path::new("/r/bad.id.sock")).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid plugin id "bad.id""#);
        let raw = Path::new(OsStr::from_bytes(b"/r/bad\xffname.sock"));
        let err = check_plugin_path(raw).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid plugin id "bad\xffname""#);
        assert_eq!(err.id(), "bad\u{FFFD}name");
    }

    #[test]
    fn go_quote_matches_strconv_quote() {
        // Expected values are what Go's strconv.Quote prints for the same input.
        let cases: &[(&[u8], &str)] = &[
            (b"", r#""""#),
            (b"abc", r#""abc""#),
            (b"a\"b\\c", r#""a\"b\\c""#),
            (b"\x07\x08\x0c\r\n\t\x0b", r#""\a\b\f\r\n\t\v""#),
            (b"\x00\x04\x1f", r#""\x00\x04\x1f""#),
            (b"\x7f", r#""\x7f""#),
            (b"abc\xffdef", r#""abc\xffdef""#),
            // A truncated sequence is escaped byte by byte.
            (b"\xe2\x82", r#""\xe2\x82""#),
            // An encoded surrogate is invalid UTF-8 in Go too.
            (b"\xed\xa0\x80", r#""\xed\xa0\x80""#),
            ("\u{263a}".as_bytes(), "\"\u{263a}\""),
            ("\u{00e9}t\u{00e9}".as_bytes(), "\"\u{00e9}t\u{00e9}\""),
            ("\u{0080}".as_bytes(), r#""\u0080""#),
            ("\u{0085}".as_bytes(), r#""\u0085""#),
            (
                "!\u{00a0}!\u{2000}!\u{3000}!".as_bytes(),
                r#""!\u00a0!\u2000!\u3000!""#,
            ),
            ("\u{00ad}".as_bytes(), r#""\u00ad""#),
            ("\u{200b}\u{feff}".as_bytes(), r#""\u200b\ufeff""#),
            ("\u{e000}".as_bytes(), r#""\ue000""#),
            ("\u{fffe}".as_bytes(), r#""\ufffe""#),
            ("\u{10ffff}".as_bytes(), r#""\U0010ffff""#),
            ("\u{e0001}".as_bytes(), r#""\U000e0001""#),
            ("\u{1f600}".as_bytes(), "\"\u{1f600}\""),
            // A valid U+FFFD is a printable symbol and stays as it is.
            ("\u{fffd}".as_bytes(), "\"\u{fffd}\""),
        ];
        for (input, want) in cases {
            assert_eq!(&go_quote_bytes(input), want, "input {input:?}");
            if let Ok(s) = std::str::from_utf8(input) {
                assert_eq!(&go_quote(s), want);
            }
        }
    }

    /// The vectors name sockets and list, in `expected.statuses`, exactly the plugins Scope
    /// loaded; the ID rule must load the same set.
    fn loaded_ids_match_vector(file: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/vectors/plugins")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut loaded = BTreeSet::new();
        let mut rejected = Vec::new();
        for plugin in v["plugins"].as_array().unwrap() {
            let socket =
                Path::new("/var/run/scope/plugins").join(plugin["socket"].as_str().unwrap());
            match check_plugin_path(&socket) {
                Ok(id) => {
                    assert_eq!(validate_plugin_id(&id), Ok(()));
                    loaded.insert(id);
                }
                Err(e) => {
                    assert_eq!(
                        e.to_string(),
                        format!("invalid plugin id {}", go_quote(e.id()))
                    );
                    rejected.push(e.id().to_owned());
                }
            }
        }
        let expected: BTreeSet<String> = v["expected"]["statuses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(loaded, expected, "{file}: rejected {rejected:?}");
    }

    #[test]
    fn vector_invalid_ids_not_loaded() {
        loaded_ids_match_vector("invalid-ids-not-loaded.json");
        // And each rejected name is rejected for the right ID.
        for (socket, want) in [
            ("bad_id.sock", "bad_id"),
            ("bad.id.sock", "bad.id"),
            ("-bad.sock", "-bad"),
            ("bad-.sock", "bad-"),
            ("bad~id.sock", "bad~id"),
            ("bad--id.sock", "bad--id"),
            (".sock", ""),
        ] {
            let err = check_plugin_path(Path::new(socket)).unwrap_err();
            assert_eq!(err.id(), want);
            assert_eq!(err.to_string(), format!("invalid plugin id \"{want}\""));
        }
    }

    #[test]
    fn vector_socket_id_from_basename() {
        loaded_ids_match_vector("socket-id-from-basename.json");
        assert_eq!(id("sub/plain"), "plain");
        assert_eq!(id("multi.ext.sock"), "multi.ext");
    }
}
