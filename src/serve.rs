//! The probe's local HTTP endpoints (`--http-listen`, spec `cli.md`), sans-IO server side.
//!
//! What it owns: reading one HTTP/1.1 request head per connection ([`ServerConn`], bounded to
//! [`MAX_HEAD_BYTES`]), routing it ([`route`]: `GET` only), writing one `Connection: close`
//! answer into an output buffer, and rendering the bodies from plain data the loop passes in:
//! `/metrics` in the Prometheus text format 0.0.4 ([`render_metrics`]), `/api/plugins` as JSON
//! ([`render_plugins`]). `/api/report` is the last published report, which the caller already
//! holds as bytes.
//!
//! What it does not: sockets, timeouts for slow clients, keep-alive, request bodies, and
//! collecting the numbers (the loop and the plugin registry keep them).
//!
//! ```text
//!   RecvHead ──(head complete)──▶ AwaitingResponse ──respond()──▶ Responded ──▶ finished
//!       └──(error: answer it with respond_error)─────────────────────▲           when flushed
//! ```

use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

/// The largest request head read; a longer one is answered `431`.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The most header lines a request may have.
const MAX_HEADERS: usize = 64;

/// `Content-Type` of `/metrics`: the Prometheus text exposition format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `Content-Type` of the JSON endpoints.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// A request's line, split at the first `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent (methods are case-sensitive).
    pub method: String,
    /// The target's path.
    pub path: String,
    /// The target's query, without the `?`.
    pub query: Option<String>,
}

/// Why a request could not be read. Answer it with [`ServerConn::respond_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeError {
    /// The head did not end within [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// The head is not HTTP/1.x.
    Malformed(httparse::Error),
}

impl ServeError {
    /// The status this error is answered with.
    pub fn status(self) -> u16 {
        match self {
            ServeError::HeadTooLarge => 431,
            ServeError::Malformed(_) => 400,
        }
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::HeadTooLarge => {
                write!(f, "request head is larger than {MAX_HEAD_BYTES} bytes")
            }
            ServeError::Malformed(e) => write!(f, "malformed request: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// What the connection waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The request head (or the rest of it).
    RecvHead,
    /// The caller's [`ServerConn::respond`].
    AwaitingResponse,
    /// The answer is queued; the connection ends once it is written.
    Responded,
}

/// One connection to the local endpoints: one request, one answer, then close.
#[derive(Debug)]
pub struct ServerConn {
    phase: Phase,
    /// The head read so far; never longer than [`MAX_HEAD_BYTES`].
    head: Vec<u8>,
    /// `output[output_start..]` is still to be written (`output_start <= output.len()`).
    output: Vec<u8>,
    output_start: usize,
}

impl Default for ServerConn {
    fn default() -> Self {
        ServerConn::new()
    }
}

impl ServerConn {
    /// A freshly accepted connection.
    pub fn new() -> Self {
        ServerConn {
            phase: Phase::RecvHead,
            head: Vec::new(),
            output: Vec::new(),
            output_start: 0,
        }
    }

    /// Takes bytes read from the socket: `Ok(None)` while the head is partial (or once it was
    /// read: a request body or pipelined bytes are ignored), the request when its head is
    /// complete. After an error, answer with [`respond_error`](Self::respond_error).
    pub fn handle_input(&mut self, input: &[u8]) -> Result<Option<Request>, ServeError> {
        if self.phase != Phase::RecvHead {
            return Ok(None);
        }
        let room = MAX_HEAD_BYTES - self.head.len();
        self.head
            .extend_from_slice(input.get(..room.min(input.len())).unwrap_or_default());
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&self.head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) if self.head.len() < MAX_HEAD_BYTES => return Ok(None),
            Ok(httparse::Status::Partial) => {
                self.phase = Phase::AwaitingResponse;
                return Err(ServeError::HeadTooLarge);
            }
            Err(e) => {
                self.phase = Phase::AwaitingResponse;
                return Err(ServeError::Malformed(e));
            }
        }
        // httparse fills method and path whenever it reports Complete.
        let method = parsed.method.unwrap_or_default().to_owned();
        let target = parsed.path.unwrap_or_default();
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (target.to_owned(), None),
        };
        self.phase = Phase::AwaitingResponse;
        self.head = Vec::new();
        Ok(Some(Request {
            method,
            path,
            query,
        }))
    }

    /// Whether the connection still wants request bytes.
    pub fn wants_read(&self) -> bool {
        self.phase == Phase::RecvHead
    }

    /// Queues the answer (`Connection: close`, a `Content-Length`); only the first call counts.
    /// A `405` also gets `Allow: GET`.
    pub fn respond(&mut self, status: u16, content_type: &str, body: &[u8]) {
        if self.phase == Phase::Responded {
            return;
        }
        self.phase = Phase::Responded;
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            reason_phrase(status),
            body.len()
        );
        if status == 405 {
            head.push_str("Allow: GET\r\n");
        }
        head.push_str("Connection: close\r\n\r\n");
        self.output.extend_from_slice(head.as_bytes());
        self.output.extend_from_slice(body);
    }

    /// Answers a request that could not be read, with its status and text.
    pub fn respond_error(&mut self, error: ServeError) {
        let body = format!("{error}\n");
        self.respond(error.status(), "text/plain; charset=utf-8", body.as_bytes());
    }

    /// Answers a plain-text status (`404`, `405`, `503`), the body being the reason phrase.
    pub fn respond_status(&mut self, status: u16) {
        let body = format!("{}\n", reason_phrase(status));
        self.respond(status, "text/plain; charset=utf-8", body.as_bytes());
    }

    /// Bytes waiting to be written to the socket.
    pub fn pending_output(&self) -> &[u8] {
        self.output.get(self.output_start..).unwrap_or_default()
    }

    /// Marks `n` bytes of [`pending_output`](Self::pending_output) as written.
    pub fn consume_output(&mut self, n: usize) {
        self.output_start = self.output_start.saturating_add(n).min(self.output.len());
    }

    /// Whether there is output to write.
    pub fn wants_write(&self) -> bool {
        self.output_start < self.output.len()
    }

    /// Whether the answer was queued and fully written: close the socket.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Responded && !self.wants_write()
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Which endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`: [`render_metrics`], [`METRICS_CONTENT_TYPE`].
    Metrics,
    /// `GET /api/plugins`: [`render_plugins`], [`JSON_CONTENT_TYPE`].
    Plugins,
    /// `GET /api/report`: the last published report, [`JSON_CONTENT_TYPE`] (`503` before the
    /// first one).
    Report,
    /// Any other path: `404`.
    NotFound,
    /// A known path with another method than `GET`: `405`.
    MethodNotAllowed,
}

/// Routes a request (spec `cli.md`, `--http-listen`).
pub fn route(request: &Request) -> Route {
    let route = match request.path.as_str() {
        "/metrics" => Route::Metrics,
        "/api/plugins" => Route::Plugins,
        "/api/report" => Route::Report,
        _ => return Route::NotFound,
    };
    if request.method == "GET" {
        route
    } else {
        Route::MethodNotAllowed
    }
}

/// The probe itself, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeInfo<'a> {
    /// The probe's version.
    pub version: &'a str,
    /// The probe id (spec AP §5).
    pub probe_id: &'a str,
    /// When the probe started, seconds since the Unix epoch.
    pub start_time_unix_seconds: f64,
}

/// One plugin's counters, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PluginMetrics<'a> {
    /// The plugin id.
    pub id: &'a str,
    /// The plugin's socket path.
    pub path: &'a str,
    /// `GET /report` polls started.
    pub polls: u64,
    /// Polls that failed.
    pub errors: u64,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// The last poll's duration; `None` before the first.
    pub last_latency_seconds: Option<f64>,
    /// Response body bytes received.
    pub response_bytes: u64,
    /// The plugin's status (`ok` or `error: …`, RF §7.4).
    pub status: &'a str,
}

/// One app's counters, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppMetrics<'a> {
    /// The app's id (spec AP §2), or its address before the id is known.
    pub app: &'a str,
    /// Reports published.
    pub publishes: u64,
    /// Publishes that failed.
    pub failures: u64,
    /// When a publish last succeeded, seconds since the Unix epoch; `None` before the first.
    pub last_success_unix_seconds: Option<f64>,
}

/// Renders `/metrics` in the Prometheus text exposition format 0.0.4. Series keep the order
/// of the slices; a `None` value leaves its series out.
pub fn render_metrics(
    probe: &ProbeInfo<'_>,
    plugins: &[PluginMetrics<'_>],
    apps: &[AppMetrics<'_>],
) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "scope_probe_up",
        "gauge",
        "Whether the probe is running.",
    );
    out.push_str("scope_probe_up 1\n");
    family(
        &mut out,
        "scope_probe_info",
        "gauge",
        "The probe's version and id.",
    );
    out.push_str("scope_probe_info{version=\"");
    escape_label(&mut out, probe.version);
    out.push_str("\",probe_id=\"");
    escape_label(&mut out, probe.probe_id);
    out.push_str("\"} 1\n");
    family(
        &mut out,
        "scope_probe_start_time_seconds",
        "gauge",
        "When the probe started, seconds since the Unix epoch.",
    );
    sample(
        &mut out,
        "scope_probe_start_time_seconds",
        &[],
        probe.start_time_unix_seconds,
    );

    type PluginValue = fn(&PluginMetrics<'_>) -> Option<f64>;
    let plugin_families: [(&str, &str, &str, PluginValue); 6] = [
        (
            "scope_probe_plugin_polls_total",
            "counter",
            "Polls of the plugin's /report.",
            |p| Some(p.polls as f64),
        ),
        (
            "scope_probe_plugin_errors_total",
            "counter",
            "Polls of the plugin's /report that failed.",
            |p| Some(p.errors as f64),
        ),
        (
            "scope_probe_plugin_last_latency_seconds",
            "gauge",
            "Duration of the plugin's last poll.",
            |p| p.last_latency_seconds,
        ),
        (
            "scope_probe_plugin_response_bytes_total",
            "counter",
            "Response body bytes received from the plugin.",
            |p| Some(p.response_bytes as f64),
        ),
        (
            "scope_probe_plugin_consecutive_failures",
            "gauge",
            "Failed polls of the plugin since its last success.",
            |p| Some(p.consecutive_failures as f64),
        ),
        (
            "scope_probe_plugin_up",
            "gauge",
            "1 when the plugin's status is ok.",
            |p| Some(if p.status == "ok" { 1.0 } else { 0.0 }),
        ),
    ];
    for (name, kind, help, value) in plugin_families {
        family(&mut out, name, kind, help);
        for plugin in plugins {
            if let Some(v) = value(plugin) {
                sample(
                    &mut out,
                    name,
                    &[("plugin", plugin.id), ("socket", plugin.path)],
                    v,
                );
            }
        }
    }

    type AppValue = fn(&AppMetrics<'_>) -> Option<f64>;
    let app_families: [(&str, &str, &str, AppValue); 3] = [
        (
            "scope_probe_app_publishes_total",
            "counter",
            "Reports published to the app.",
            |a| Some(a.publishes as f64),
        ),
        (
            "scope_probe_app_failures_total",
            "counter",
            "Publishes to the app that failed.",
            |a| Some(a.failures as f64),
        ),
        (
            "scope_probe_app_last_success_timestamp_seconds",
            "gauge",
            "When a publish to the app last succeeded, seconds since the Unix epoch.",
            |a| a.last_success_unix_seconds,
        ),
    ];
    for (name, kind, help, value) in app_families {
        family(&mut out, name, kind, help);
        for app in apps {
            if let Some(v) = value(app) {
                sample(&mut out, name, &[("app", app.app)], v);
            }
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Help texts are our own constants, free of `\` and newlines, so need no escaping.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, text)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label(out, text);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    // The format's spellings of the special values; Rust's `Display` never uses exponents,
    // which the format accepts.
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{value}");
    }
    out.push('\n');
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, newline → `\n` (format 0.0.4).
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// One plugin's state, for `/api/plugins`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginState<'a> {
    /// The plugin id.
    pub id: &'a str,
    /// The spec's label (the id until the plugin answered once, RF §7.4).
    pub label: &'a str,
    /// `ok` or `error: …`.
    pub status: &'a str,
    /// The plugin's socket path.
    pub socket: &'a str,
    /// The spec's interfaces.
    pub interfaces: Vec<&'a str>,
    /// The last poll's duration in milliseconds; `null` before the first.
    pub last_poll_latency_ms: Option<f64>,
    /// Failed polls since the last success.
    pub consecutive_failures: u64,
}

/// Renders `/api/plugins`: a JSON array of the plugins' states, in the slice's order.
pub fn render_plugins(plugins: &[PluginState<'_>]) -> Vec<u8> {
    // Strings, numbers and a non-finite float (written as null) always serialize.
    serde_json::to_vec(plugins).unwrap_or_else(|_| b"[]".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &[u8] = b"GET /metrics?name=x HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";

    fn metrics_request() -> Request {
        Request {
            method: "GET".into(),
            path: "/metrics".into(),
            query: Some("name=x".into()),
        }
    }

    #[test]
    fn request_at_every_split() {
        for split in 0..=GET.len() {
            let mut conn = ServerConn::new();
            let first = conn.handle_input(&GET[..split]).unwrap();
            let request = match first {
                Some(request) => {
                    assert_eq!(split, GET.len());
                    request
                }
                None => conn.handle_input(&GET[split..]).unwrap().unwrap(),
            };
            assert_eq!(request, metrics_request(), "split at {split}");
            assert!(!conn.wants_read());
        }
    }

    #[test]
    fn byte_by_byte() {
        let mut conn = ServerConn::new();
        let mut got = None;
        for (i, b) in GET.iter().enumerate() {
            let r = conn.handle_input(std::slice::from_ref(b)).unwrap();
            if r.is_some() {
                assert_eq!(i, GET.len() - 1);
                got = r;
            }
        }
        assert_eq!(got, Some(metrics_request()));
    }

    #[test]
    fn bytes_after_the_head_are_ignored() {
        let mut conn = ServerConn::new();
        let mut input = GET.to_vec();
        input.extend_from_slice(b"GET /other HTTP/1.1\r\n\r\n");
        assert_eq!(conn.handle_input(&input), Ok(Some(metrics_request())));
        assert_eq!(conn.handle_input(b"more"), Ok(None));
    }

    #[test]
    fn random_input_never_panics() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let mut input = GET.to_vec();
            // Corrupt a few bytes of a valid request.
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % input.len();
                input[at] = next() as u8;
            }
            let mut conn = ServerConn::new();
            for chunk in input.chunks(5) {
                if let Err(e) = conn.handle_input(chunk) {
                    conn.respond_error(e);
                    break;
                }
            }
        }
    }

    #[test]
    fn path_without_query() {
        let mut conn = ServerConn::new();
        let request = conn
            .handle_input(b"GET /api/report HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(request.path, "/api/report");
        assert_eq!(request.query, None);
    }

    #[test]
    fn oversize_head_is_refused() {
        let mut conn = ServerConn::new();
        assert_eq!(conn.handle_input(b"GET / HTTP/1.1\r\n"), Ok(None));
        let filler = format!("X-Filler: {}\r\n", "a".repeat(1000));
        let mut result = Ok(None);
        for _ in 0..17 {
            result = conn.handle_input(filler.as_bytes());
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(ServeError::HeadTooLarge));
        assert!(conn.head.len() <= MAX_HEAD_BYTES);
        conn.respond_error(ServeError::HeadTooLarge);
        let out = String::from_utf8(conn.pending_output().to_vec()).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\nrequest head is larger than 16384 bytes\n"));
    }

    #[test]
    fn head_of_exactly_the_limit_is_read() {
        let start = "GET / HTTP/1.1\r\nX: ";
        let pad = MAX_HEAD_BYTES - start.len() - 4;
        let head = format!("{start}{}\r\n\r\n", "a".repeat(pad));
        assert_eq!(head.len(), MAX_HEAD_BYTES);
        let mut conn = ServerConn::new();
        assert!(conn.handle_input(head.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn malformed_head_is_refused() {
        let mut conn = ServerConn::new();
        let err = conn.handle_input(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n");
        assert_eq!(err, Err(ServeError::Malformed(httparse::Error::HeaderName)));
        conn.respond_error(err.unwrap_err());
        assert!(
            conn.pending_output()
                .starts_with(b"HTTP/1.1 400 Bad Request\r\n")
        );
    }

    #[test]
    fn routes() {
        let request = |method: &str, path: &str| Request {
            method: method.into(),
            path: path.into(),
            query: None,
        };
        assert_eq!(route(&request("GET", "/metrics")), Route::Metrics);
        assert_eq!(route(&request("GET", "/api/plugins")), Route::Plugins);
        assert_eq!(route(&request("GET", "/api/report")), Route::Report);
        assert_eq!(route(&request("GET", "/")), Route::NotFound);
        assert_eq!(route(&request("GET", "/metrics/")), Route::NotFound);
        assert_eq!(route(&request("POST", "/metrics")), Route::MethodNotAllowed);
        assert_eq!(
            route(&request("get", "/api/report")),
            Route::MethodNotAllowed
        );
        assert_eq!(route(&request("POST", "/nope")), Route::NotFound);
    }

    #[test]
    fn method_not_allowed_answer() {
        let mut conn = ServerConn::new();
        let request = conn
            .handle_input(b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap()
            .unwrap();
        assert_eq!(route(&request), Route::MethodNotAllowed);
        conn.respond_status(405);
        assert_eq!(
            conn.pending_output(),
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
              Content-Length: 19\r\nAllow: GET\r\nConnection: close\r\n\r\nMethod Not Allowed\n"
        );
    }

    #[test]
    fn response_is_written_once_and_then_finished() {
        let mut conn = ServerConn::new();
        conn.handle_input(GET).unwrap();
        assert!(!conn.is_finished());
        conn.respond(200, JSON_CONTENT_TYPE, b"[]");
        conn.respond(500, JSON_CONTENT_TYPE, b"ignored");
        let expected: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
              Content-Length: 2\r\nConnection: close\r\n\r\n[]";
        assert_eq!(conn.pending_output(), expected);
        assert!(conn.wants_write());
        conn.consume_output(10);
        assert_eq!(conn.pending_output(), &expected[10..]);
        assert!(!conn.is_finished());
        conn.consume_output(usize::MAX);
        assert!(!conn.wants_write());
        assert!(conn.is_finished());
    }

    #[test]
    fn metrics_golden_text() {
        let probe = ProbeInfo {
            version: "0.1.0",
            probe_id: "1a2b",
            start_time_unix_seconds: 1_700_000_000.5,
        };
        let plugins = [
            PluginMetrics {
                id: "iowait",
                path: "/var/run/scope/plugins/iowait/iowait.sock",
                polls: 10,
                errors: 1,
                consecutive_failures: 0,
                last_latency_seconds: Some(0.0125),
                response_bytes: 20480,
                status: "ok",
            },
            PluginMetrics {
                id: "tc",
                path: "/run/tc.sock",
                polls: 2,
                errors: 2,
                consecutive_failures: 2,
                last_latency_seconds: None,
                response_bytes: 0,
                status: "error: context deadline exceeded",
            },
        ];
        let apps = [AppMetrics {
            app: "7fd6be681e3114f2",
            publishes: 5,
            failures: 0,
            last_success_unix_seconds: Some(1_700_000_012.25),
        }];
        let expected = r#"# HELP scope_probe_up Whether the probe is running.
# TYPE scope_probe_up gauge
scope_probe_up 1
# HELP scope_probe_info The probe's version and id.
# TYPE scope_probe_info gauge
scope_probe_info{version="0.1.0",probe_id="1a2b"} 1
# HELP scope_probe_start_time_seconds When the probe started, seconds since the Unix epoch.
# TYPE scope_probe_start_time_seconds gauge
scope_probe_start_time_seconds 1700000000.5
# HELP scope_probe_plugin_polls_total Polls of the plugin's /report.
# TYPE scope_probe_plugin_polls_total counter
scope_probe_plugin_polls_total{plugin="iowait",socket="/var/run/scope/plugins/iowait/iowait.sock"} 10
scope_probe_plugin_polls_total{plugin="tc",socket="/run/tc.sock"} 2
# HELP scope_probe_plugin_errors_total Polls of the plugin's /report that failed.
# TYPE scope_probe_plugin_errors_total counter
scope_probe_plugin_errors_total{plugin="iowait",socket="/var/run/scope/plugins/iowait/iowait.sock"} 1
scope_probe_plugin_errors_total{plugin="tc",socket="/run/tc.sock"} 2
# HELP scope_probe_plugin_last_latency_seconds Duration of the plugin's last poll.
# TYPE scope_probe_plugin_last_latency_seconds gauge
scope_probe_plugin_last_latency_seconds{plugin="iowait",socket="/var/run/scope/plugins/iowait/iowait.sock"} 0.0125
# HELP scope_probe_plugin_response_bytes_total Response body bytes received from the plugin.
# TYPE scope_probe_plugin_response_bytes_total counter
scope_probe_plugin_response_bytes_total{plugin="iowait",socket="/var/run/scope/plugins/iowait/iowait.sock"} 20480
scope_probe_plugin_response_bytes_total{plugin="tc",socket="/run/tc.sock"} 0
# HELP scope_probe_plugin_consecutive_failures Failed polls of the plugin since its last success.
# TYPE scope_probe_plugin_consecutive_failures gauge
scope_probe_plugin_consecutive_failures{plugin="iowait",socket="/var/run/scope/plugins/iowait/iowait.sock"} 0
scope_probe_plugin_consecutive_failures{plugin="tc",socket="/run/tc.sock"} 2
# HELP scope_probe_plugin_up 1 when the plugin's status is ok.
# TYPE scope_probe_plugin_up gauge
scope_probe_plugin_up{plugin="iowait",socket="/var/run/scope/plugins/iowait/iowait.sock"} 1
scope_probe_plugin_up{plugin="tc",socket="/run/tc.sock"} 0
# HELP scope_probe_app_publishes_total Reports published to the app.
# TYPE scope_probe_app_publishes_total counter
scope_probe_app_publishes_total{app="7fd6be681e3114f2"} 5
# HELP scope_probe_app_failures_total Publishes to the app that failed.
# TYPE scope_probe_app_failures_total counter
scope_probe_app_failures_total{app="7fd6be681e3114f2"} 0
# HELP scope_probe_app_last_success_timestamp_seconds When a publish to the app last succeeded, seconds since the Unix epoch.
# TYPE scope_probe_app_last_success_timestamp_seconds gauge
scope_probe_app_last_success_timestamp_seconds{app="7fd6be681e3114f2"} 1700000012.25
"#;
        assert_eq!(render_metrics(&probe, &plugins, &apps), expected);
    }

    #[test]
    fn label_values_are_escaped() {
        let probe = ProbeInfo {
            version: "v\"1\"",
            probe_id: "a\\b\nc",
            start_time_unix_seconds: 0.0,
        };
        let text = render_metrics(&probe, &[], &[]);
        assert!(
            text.contains("scope_probe_info{version=\"v\\\"1\\\"\",probe_id=\"a\\\\b\\nc\"} 1\n"),
            "{text}"
        );
        let apps = [AppMetrics {
            app: "[::1]:4040\n\"x\"",
            publishes: 0,
            failures: 0,
            last_success_unix_seconds: None,
        }];
        let text = render_metrics(&probe, &[], &apps);
        assert!(
            text.contains("scope_probe_app_publishes_total{app=\"[::1]:4040\\n\\\"x\\\"\"} 0\n")
        );
        // No sample for an unknown last success, and no raw newline inside a sample line.
        assert!(!text.contains("scope_probe_app_last_success_timestamp_seconds{"));
        assert!(
            text.lines()
                .all(|l| l.starts_with('#') || l.starts_with("scope_probe_"))
        );
    }

    #[test]
    fn special_float_values() {
        let mut out = String::new();
        sample(&mut out, "m", &[], f64::NAN);
        sample(&mut out, "m", &[], f64::INFINITY);
        sample(&mut out, "m", &[], f64::NEG_INFINITY);
        sample(&mut out, "m", &[], 1e-7);
        assert_eq!(out, "m NaN\nm +Inf\nm -Inf\nm 0.0000001\n");
    }

    #[test]
    fn plugins_json() {
        let plugins = [
            PluginState {
                id: "iowait",
                label: "IOWait",
                status: "ok",
                socket: "/var/run/scope/plugins/iowait/iowait.sock",
                interfaces: vec!["reporter", "controller"],
                last_poll_latency_ms: Some(12.5),
                consecutive_failures: 0,
            },
            PluginState {
                id: "tc",
                label: "tc",
                status: "error: \"x\"",
                socket: "/run/tc.sock",
                interfaces: vec![],
                last_poll_latency_ms: None,
                consecutive_failures: 3,
            },
        ];
        let json: serde_json::Value = serde_json::from_slice(&render_plugins(&plugins)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"id":"iowait","label":"IOWait","status":"ok",
                 "socket":"/var/run/scope/plugins/iowait/iowait.sock",
                 "interfaces":["reporter","controller"],"last_poll_latency_ms":12.5,
                 "consecutive_failures":0},
                {"id":"tc","label":"tc","status":"error: \"x\"","socket":"/run/tc.sock",
                 "interfaces":[],"last_poll_latency_ms":null,"consecutive_failures":3}
            ])
        );
        assert_eq!(render_plugins(&[]), b"[]");
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            ServeError::HeadTooLarge.to_string(),
            "request head is larger than 16384 bytes"
        );
        assert_eq!(ServeError::HeadTooLarge.status(), 431);
        assert_eq!(
            ServeError::Malformed(httparse::Error::Version).to_string(),
            "malformed request: invalid HTTP version"
        );
        assert_eq!(ServeError::Malformed(httparse::Error::Token).status(), 400);
    }
}
