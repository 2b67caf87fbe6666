//! Reason phrases for status codes, as Go's `http.StatusText` gives them.
//!
//! Owns the table only. Responses keep the reason phrase the server sent
//! ([`ResponseHead::reason`](super::ResponseHead::reason)); this table is for test servers and
//! for texts we write ourselves, so they read exactly like Scope's.

/// Go's `http.StatusText(code)`: the reason phrase for a standard status code, or `""` for an
/// unknown one.
pub fn status_text(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",

        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",

        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",

        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",

        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",

        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::status_text;

    #[test]
    fn common_codes() {
        assert_eq!(status_text(200), "OK");
        assert_eq!(status_text(204), "No Content");
        assert_eq!(status_text(404), "Not Found");
        assert_eq!(status_text(500), "Internal Server Error");
        assert_eq!(status_text(101), "Switching Protocols");
    }

    #[test]
    fn gos_older_wording_is_kept() {
        // Go never adopted RFC 9110's renames ("Content Too Large", "Unprocessable Content").
        assert_eq!(status_text(413), "Request Entity Too Large");
        assert_eq!(status_text(414), "Request URI Too Long");
        assert_eq!(status_text(416), "Requested Range Not Satisfiable");
        assert_eq!(status_text(422), "Unprocessable Entity");
        assert_eq!(status_text(418), "I'm a teapot");
    }

    #[test]
    fn unknown_codes_are_empty() {
        for code in [
            0,
            99,
            199,
            209,
            306,
            419,
            420,
            430,
            509,
            599,
            600,
            999,
            u16::MAX,
        ] {
            assert_eq!(status_text(code), "", "{code}");
        }
    }

    #[test]
    fn table_size_matches_go() {
        // Go's status.go lists 62 codes; a miscount here means a missing or extra arm.
        let known = (0..=u16::MAX)
            .filter(|&c| !status_text(c).is_empty())
            .count();
        assert_eq!(known, 62);
    }
}
