//! App addresses given as positional arguments (spec `app-protocol.md` §1): `host`,
//! `host:port`, `ip`, `ip:port`, `[v6]:port`, `[v6]` and a bare IPv6 literal such as `::1`.
//!
//! Owns: the syntax of one target and its canonical text. Does not own: resolving names (a host
//! name may have many addresses, AP §1) or connecting; that is the publisher's job.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The app port when a target names none (AP §1).
pub const DEFAULT_APP_PORT: u16 = 4040;

/// One app address as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// A host name as written, or an IP literal in its canonical form without brackets.
    pub host: String,
    /// The TCP port, never 0.
    pub port: u16,
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// An empty target or an empty host (`""`, `":4040"`).
    EmptyHost,
    /// A port that is not a decimal number from 1 to 65535.
    InvalidPort(String),
    /// A `[`…`]` part that is not an IPv6 address, or a bracket out of place.
    InvalidIpv6(String),
    /// A host name with characters no DNS name or IP literal has (`/`, `@`, spaces…).
    InvalidHost(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyHost => write!(f, "missing host"),
            Self::InvalidPort(p) => write!(f, "invalid port {p:?}: want 1 to 65535"),
            Self::InvalidIpv6(h) => write!(f, "invalid IPv6 address {h:?}"),
            Self::InvalidHost(h) => write!(f, "invalid host name {h:?}"),
        }
    }
}

impl std::error::Error for TargetError {}

impl Target {
    /// The target Scope's probe publishes to when given none: `127.0.0.1:4040`.
    pub fn default_app() -> Self {
        Target {
            host: Ipv4Addr::LOCALHOST.to_string(),
            port: DEFAULT_APP_PORT,
        }
    }

    /// The address when the host is an IP literal; `None` for a name that needs resolving.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, TargetError> {
        if let Some(after_bracket) = s.strip_prefix('[') {
            let (inside, after) = after_bracket
                .split_once(']')
                .ok_or_else(|| TargetError::InvalidIpv6(s.to_owned()))?;
            let ip: Ipv6Addr = inside
                .parse()
                .map_err(|_| TargetError::InvalidIpv6(inside.to_owned()))?;
            let port = match after {
                "" => DEFAULT_APP_PORT,
                _ => match after.strip_prefix(':') {
                    Some(port) => parse_port(port)?,
                    None => return Err(TargetError::InvalidIpv6(s.to_owned())),
                },
            };
            return Ok(Target {
                host: ip.to_string(),
                port,
            });
        }
        // Two or more colons without brackets can only be a bare IPv6 literal; its last group
        // cannot be told from a port, so it never carries one (`::1` is host ::1, port 4040).
        if s.matches(':').count() > 1 {
            let ip: Ipv6Addr = s
                .parse()
                .map_err(|_| TargetError::InvalidIpv6(s.to_owned()))?;
            return Ok(Target {
                host: ip.to_string(),
                port: DEFAULT_APP_PORT,
            });
        }
        let (host, port) = match s.split_once(':') {
            Some((host, port)) => (host, parse_port(port)?),
            None => (s, DEFAULT_APP_PORT),
        };
        if host.is_empty() {
            return Err(TargetError::EmptyHost);
        }
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return Ok(Target {
                host: ip.to_string(),
                port,
            });
        }
        if !is_host_name(host) {
            return Err(TargetError::InvalidHost(host.to_owned()));
        }
        Ok(Target {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Target {
    /// `host:port`, with IPv6 literals in brackets, so that the text parses back to `self`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A decimal port from 1 to 65535; no sign, no spaces (`u16::from_str` would take `+80`).
fn parse_port(text: &str) -> Result<u16, TargetError> {
    let invalid = || TargetError::InvalidPort(text.to_owned());
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid()),
        Ok(port) => Ok(port),
    }
}

/// Letters, digits, `-`, `_` and dots between non-empty labels: what resolvers accept in
/// practice (`_` appears in container and service names), and nothing a URL or shell adds.
pub(super) fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16) -> Target {
        Target {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn parses_every_form_of_app_protocol_1() {
        let table: &[(&str, Target, &str)] = &[
            (
                "example.com",
                target("example.com", 4040),
                "example.com:4040",
            ),
            (
                "example.com:80",
                target("example.com", 80),
                "example.com:80",
            ),
            (
                "example.com.",
                target("example.com.", 4040),
                "example.com.:4040",
            ),
            ("scope-app", target("scope-app", 4040), "scope-app:4040"),
            (
                "my_app.local:1",
                target("my_app.local", 1),
                "my_app.local:1",
            ),
            (
                "localhost:65535",
                target("localhost", 65535),
                "localhost:65535",
            ),
            ("10.0.0.1", target("10.0.0.1", 4040), "10.0.0.1:4040"),
            ("10.0.0.1:80", target("10.0.0.1", 80), "10.0.0.1:80"),
            (
                "127.0.0.1:4040",
                target("127.0.0.1", 4040),
                "127.0.0.1:4040",
            ),
            ("[::1]:4040", target("::1", 4040), "[::1]:4040"),
            ("[::1]", target("::1", 4040), "[::1]:4040"),
            ("[fe80::1]:8080", target("fe80::1", 8080), "[fe80::1]:8080"),
            ("[0:0:0:0:0:0:0:1]:81", target("::1", 81), "[::1]:81"),
            ("::1", target("::1", 4040), "[::1]:4040"),
            (
                "2001:db8::7",
                target("2001:db8::7", 4040),
                "[2001:db8::7]:4040",
            ),
            (
                "::ffff:10.0.0.1",
                target("::ffff:10.0.0.1", 4040),
                "[::ffff:10.0.0.1]:4040",
            ),
        ];
        for (text, want, display) in table {
            let got: Target = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(&got, want, "{text}");
            assert_eq!(got.to_string(), *display, "{text}");
            assert_eq!(
                display.parse::<Target>().as_ref(),
                Ok(want),
                "round trip {text}"
            );
        }
    }

    #[test]
    fn refuses_malformed_targets() {
        let table: &[(&str, TargetError)] = &[
            ("", TargetError::EmptyHost),
            (":4040", TargetError::EmptyHost),
            ("host:", TargetError::InvalidPort("".into())),
            ("host:0", TargetError::InvalidPort("0".into())),
            ("host:65536", TargetError::InvalidPort("65536".into())),
            ("host:99999", TargetError::InvalidPort("99999".into())),
            ("host:+80", TargetError::InvalidPort("+80".into())),
            ("host:-1", TargetError::InvalidPort("-1".into())),
            ("host:http", TargetError::InvalidPort("http".into())),
            ("10.0.0.1:80 ", TargetError::InvalidPort("80 ".into())),
            ("[::1]:0", TargetError::InvalidPort("0".into())),
            ("[::1]:", TargetError::InvalidPort("".into())),
            ("[::1", TargetError::InvalidIpv6("[::1".into())),
            ("[::1]4040", TargetError::InvalidIpv6("[::1]4040".into())),
            ("[10.0.0.1]:80", TargetError::InvalidIpv6("10.0.0.1".into())),
            ("[host]:80", TargetError::InvalidIpv6("host".into())),
            ("[]:80", TargetError::InvalidIpv6("".into())),
            ("::1:4040:x", TargetError::InvalidIpv6("::1:4040:x".into())),
            (
                "fe80::1%eth0",
                TargetError::InvalidIpv6("fe80::1%eth0".into()),
            ),
            (
                "http://app:4040",
                TargetError::InvalidIpv6("http://app:4040".into()),
            ),
            ("http://app", TargetError::InvalidPort("//app".into())),
            ("user@app", TargetError::InvalidHost("user@app".into())),
            ("app/path", TargetError::InvalidHost("app/path".into())),
            ("a..b", TargetError::InvalidHost("a..b".into())),
            (".app", TargetError::InvalidHost(".app".into())),
            ("app name", TargetError::InvalidHost("app name".into())),
            ("ap\u{e9}p", TargetError::InvalidHost("ap\u{e9}p".into())),
        ];
        for (text, want) in table {
            assert_eq!(text.parse::<Target>().as_ref(), Err(want), "{text:?}");
        }
    }

    #[test]
    fn every_error_variant_has_its_text() {
        let cases = [
            (TargetError::EmptyHost, "missing host"),
            (
                TargetError::InvalidPort("0".into()),
                r#"invalid port "0": want 1 to 65535"#,
            ),
            (
                TargetError::InvalidIpv6("::x".into()),
                r#"invalid IPv6 address "::x""#,
            ),
            (
                TargetError::InvalidHost("a/b".into()),
                r#"invalid host name "a/b""#,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn ip_is_known_only_for_literals() {
        let ip = |s: &str| s.parse::<Target>().map(|t| t.ip());
        assert_eq!(ip("10.0.0.1:80"), Ok(Some(IpAddr::from([10, 0, 0, 1]))));
        assert_eq!(ip("[::1]:4040"), Ok(Some(IpAddr::V6(Ipv6Addr::LOCALHOST))));
        assert_eq!(ip("::1"), Ok(Some(IpAddr::V6(Ipv6Addr::LOCALHOST))));
        assert_eq!(ip("example.com"), Ok(None));
        assert_eq!(ip("localhost:4040"), Ok(None));
    }

    #[test]
    fn default_app_is_scopes_default() {
        assert_eq!(Target::default_app(), target("127.0.0.1", 4040));
        assert_eq!(Target::default_app().to_string(), "127.0.0.1:4040");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<Target>();
        }

        #[test]
        fn socket_addresses_round_trip(ip: IpAddr, port in 1u16..) {
            // Zoned IPv6 (`fe80::1%eth0`) is not a target form; `SocketAddr` prints no zone
            // when it is built from a bare IP.
            let addr = std::net::SocketAddr::new(ip, port);
            let target: Target = addr.to_string().parse().map_err(|e: TargetError| {
                proptest::test_runner::TestCaseError::fail(e.to_string())
            })?;
            proptest::prop_assert_eq!(target.ip(), Some(ip));
            proptest::prop_assert_eq!(target.port, port);
            proptest::prop_assert_eq!(target.to_string().parse::<Target>(), Ok(target));
        }
    }
}
