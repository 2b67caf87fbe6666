//! The registry of loaded plugins and the validation of their answers (spec §7.2–§7.6).
//!
//! In scope: which sockets are loaded plugins (valid IDs only, each invalid ID logged once),
//! each plugin's current spec and status, the controls registered for controller plugins,
//! per-plugin statistics, and turning one poll outcome into the report that gets merged
//! (Scope's `Plugin.Report` steps, with their exact error texts).
//!
//! Out of scope: sockets, deadlines and clocks. The event loop performs the request and hands
//! the outcome in as [`PollOutcome`], together with `now`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http;
use crate::plugins::id::{go_quote, plugin_id_from_path, validate_plugin_id};
use crate::report::{self, DecodeArena, DecodeError, PluginSpec, Report, Time};

/// How one `GET /report` ended, as far as the transport is concerned.
#[derive(Debug)]
pub enum PollOutcome<'a> {
    /// A complete response head (and, for status 200, a complete body).
    Answer {
        /// Status code.
        code: u16,
        /// Reason phrase as the plugin sent it.
        reason: String,
        /// The body; empty when the status is not 200 (it is never read then, as in Scope).
        body: &'a [u8],
    },
    /// The request failed before a usable answer arrived.
    Failed(TransportError),
}

/// Why a request to a plugin failed below HTTP semantics. `Display` is the status text.
#[derive(Debug)]
pub enum TransportError {
    /// The socket could not be connected (stale socket, permissions, ...).
    Connect(io::Error),
    /// Reading or writing the connection failed.
    Io(io::Error),
    /// The response was not valid HTTP/1.1 or broke a limit (body size included).
    Http(http::Error),
    /// The deadline passed; `received` counts the response bytes seen by then.
    Timeout {
        /// The per-request deadline that passed.
        timeout: Duration,
        /// Response bytes received before it passed.
        received: usize,
    },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Connect(e) => write!(f, "connect: {}", os_error_text(e)),
            TransportError::Io(e) => write!(f, "connection: {}", os_error_text(e)),
            TransportError::Http(e) => write!(f, "{e}"),
            TransportError::Timeout {
                timeout,
                received: 0,
            } => write!(f, "no response within {}", GoDuration(*timeout)),
            TransportError::Timeout { timeout, received } => write!(
                f,
                "response not complete within {} ({received} bytes received)",
                GoDuration(*timeout)
            ),
        }
    }
}

/// An OS error as Go prints it: `connection refused`, not `Connection refused (os error 111)`.
pub fn os_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A `Duration` written the way Go's `time.Duration.String` writes it (`500ms`, `1.5s`, `2m0s`),
/// because users compare our texts and flags with Scope's.
#[derive(Clone, Copy, Debug)]
pub struct GoDuration(pub Duration);

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        if nanos < 1_000_000_000 {
            let (unit, scale) = match nanos {
                n if n < 1_000 => return write!(f, "{n}ns"),
                n if n < 1_000_000 => ("µs", 1_000),
                _ => ("ms", 1_000_000),
            };
            return write_fraction(f, nanos, scale, unit);
        }
        let secs_total = nanos / 1_000_000_000;
        let (h, m) = (secs_total / 3600, (secs_total / 60) % 60);
        let secs_nanos = nanos - (h * 3600 + m * 60) * 1_000_000_000;
        if h > 0 {
            write!(f, "{h}h{m}m")?;
        } else if m > 0 {
            write!(f, "{m}m")?;
        }
        write_fraction(f, secs_nanos, 1_000_000_000, "s")
    }
}

fn write_fraction(f: &mut fmt::Formatter<'_>, value: u128, scale: u128, unit: &str) -> fmt::Result {
    let (whole, frac) = (value / scale, value % scale);
    if frac == 0 {
        return write!(f, "{whole}{unit}");
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    write!(f, "{whole}.{}{unit}", digits.trim_end_matches('0'))
}

/// Why a plugin's answer was rejected. `Display` is the text after `error: ` in the plugin's
/// status: Scope's exact texts for spec §7.4 steps 2–9.
#[derive(Debug)]
pub enum ReportError {
    /// Step 1: the request itself failed.
    Transport(TransportError),
    /// Step 2: any status but 200. Holds the status line after the protocol, as sent.
    Non200(String),
    /// Step 4: the body is not a valid report.
    Decode(DecodeError),
    /// Step 5: `Plugins` must hold exactly one spec (after collapsing duplicate ids).
    PluginCount(usize),
    /// Step 6: the spec's id must be the socket-derived id.
    IdChanged {
        /// The id in the spec.
        is: String,
        /// The id derived from the socket name.
        should: String,
    },
    /// Step 7: the spec's `api_version` must be the probe's.
    ApiVersion {
        /// The probe's API version.
        expected: String,
        /// The spec's.
        got: String,
    },
    /// Step 8.
    NoLabel,
    /// Step 9.
    NotReporter,
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Transport(e) => write!(f, "{e}"),
            ReportError::Non200(status) => {
                write!(f, "plugin returned non-200 status code: {status}")
            }
            ReportError::Decode(e) => write!(f, "decoding error: {e}"),
            ReportError::PluginCount(n) => {
                write!(f, "report must contain exactly one plugin (found {n})")
            }
            ReportError::IdChanged { is, should } => write!(
                f,
                "plugin must not change its id (is {}, should be {})",
                go_quote(is),
                go_quote(should)
            ),
            ReportError::ApiVersion { expected, got } => write!(
                f,
                "incorrect API version: expected {}, got {}",
                go_quote(expected),
                go_quote(got)
            ),
            ReportError::NoLabel => f.write_str("spec must contain a label"),
            ReportError::NotReporter => {
                f.write_str("spec must implement the \"reporter\" interface")
            }
        }
    }
}

/// Counters per plugin, for `/api/plugins` and `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct PluginStats {
    /// Report polls that ended (any outcome).
    pub polls: u64,
    /// Polls that ended with an error status.
    pub errors: u64,
    /// Failures in a row; 0 after a good report.
    pub consecutive_failures: u64,
    /// Time from connect to the last body byte (or the failure) of the latest poll.
    pub last_latency: Option<Duration>,
    /// Sum of response body bytes received.
    pub response_bytes: u64,
}

/// One loaded plugin: a socket with a valid ID.
#[derive(Debug)]
pub struct Plugin {
    /// The socket path.
    pub path: PathBuf,
    /// The ID derived from the socket name (spec §7.2).
    pub id: String,
    /// The current spec (spec §7.4: the last one that passed step 6, or `{id, label: id}`),
    /// carrying the current status.
    pub spec: PluginSpec<'static>,
    /// Original IDs of the controls registered for this plugin (spec §7.6): equal to the
    /// controls of its latest report or shortcut report, empty unless it is a controller.
    pub controls: Vec<String>,
    /// Statistics.
    pub stats: PluginStats,
}

impl Plugin {
    fn new(path: PathBuf, id: String) -> Self {
        let spec = PluginSpec {
            id: Cow::Owned(id.clone()),
            label: Cow::Owned(id.clone()),
            ..PluginSpec::default()
        };
        Plugin {
            path,
            id,
            spec,
            controls: Vec::new(),
            stats: PluginStats::default(),
        }
    }

    /// Whether the current spec lists the `controller` interface (spec §7.5).
    pub fn is_controller(&self) -> bool {
        self.spec.interfaces.iter().any(|i| i == "controller")
    }

    /// The current status: `ok`, `error: …`, or empty before the first poll ended.
    pub fn status(&self) -> &str {
        &self.spec.status
    }

    /// Turns one poll outcome into the report to merge, updating status, spec, controls and
    /// statistics on the way (Scope's `Plugin.Report` plus §7.5–§7.6).
    ///
    /// On success the report is the plugin's own with its `Plugins` entry replaced by the
    /// current spec; on failure it is a fresh `MakeReport()` holding only that spec. What the
    /// report cannot borrow from the body goes to `arena`.
    pub fn handle_report<'a>(
        &mut self,
        outcome: PollOutcome<'a>,
        arena: &'a DecodeArena,
        api_version: &str,
        latency: Duration,
        now: Time,
    ) -> Report<'a> {
        self.stats.polls += 1;
        self.stats.last_latency = Some(latency);
        if let PollOutcome::Answer { body, .. } = &outcome {
            self.stats.response_bytes += body.len() as u64;
        }
        let mut report = match self.check_report(outcome, arena, api_version, now) {
            Ok(mut report) => {
                self.spec.status = Cow::Borrowed("ok");
                self.stats.consecutive_failures = 0;
                report.plugins.clear();
                report.plugins.insert(self.spec.clone());
                report
            }
            Err(e) => {
                log::warn!("plugins: {}: /report error: {e}", self.path.display());
                self.spec.status = Cow::Owned(format!("error: {e}"));
                self.stats.errors += 1;
                self.stats.consecutive_failures += 1;
                let mut report = Report::make();
                report.plugins.insert(self.spec.clone());
                report
            }
        };
        // spec §7.5: also on the empty error report, which unregisters every control.
        if self.is_controller() {
            self.controls = report::rewrite_controls(&mut report, &self.spec.id, now);
        }
        report
    }

    fn check_report<'a>(
        &mut self,
        outcome: PollOutcome<'a>,
        arena: &'a DecodeArena,
        api_version: &str,
        now: Time,
    ) -> Result<Report<'a>, ReportError> {
        // spec §7.4 steps 1–3: transport, status, size (the size is the HTTP layer's limit).
        let body = match outcome {
            PollOutcome::Failed(e) => return Err(ReportError::Transport(e)),
            PollOutcome::Answer {
                code: 200, body, ..
            } => body,
            PollOutcome::Answer { code, reason, .. } => {
                return Err(ReportError::Non200(status_line(code, &reason)));
            }
        };
        // Step 4.
        let report =
            report::decode_plugin_report_in(body, now, arena).map_err(ReportError::Decode)?;
        // Step 5.
        let spec = match report.plugins.len() {
            1 => report.plugins.iter().next(),
            n => return Err(ReportError::PluginCount(n)),
        };
        // unwrap-free: len() == 1 above, so the iterator has one element.
        let Some(spec) = spec else {
            return Err(ReportError::PluginCount(0));
        };
        // Step 6.
        if spec.id != self.id {
            return Err(ReportError::IdChanged {
                is: spec.id.to_string(),
                should: self.id.clone(),
            });
        }
        // The spec becomes current from here on, even if a later step fails (spec §7.4).
        let status = std::mem::take(&mut self.spec.status);
        self.spec = owned_spec(spec);
        self.spec.status = status;
        // Steps 7–9.
        if self.spec.api_version != api_version {
            return Err(ReportError::ApiVersion {
                expected: api_version.to_string(),
                got: self.spec.api_version.to_string(),
            });
        }
        if self.spec.label.is_empty() {
            return Err(ReportError::NoLabel);
        }
        if !self.spec.interfaces.iter().any(|i| i == "reporter") {
            return Err(ReportError::NotReporter);
        }
        Ok(report)
    }
}

/// Go's `resp.Status`: the status line after the protocol, as the server sent it.
fn status_line(code: u16, reason: &str) -> String {
    if reason.is_empty() {
        code.to_string()
    } else {
        format!("{code} {reason}")
    }
}

/// A spec that outlives the response buffer it was decoded from (a handful of short strings
/// per poll, outside the merge).
pub fn owned_spec(spec: &PluginSpec<'_>) -> PluginSpec<'static> {
    spec.clone().into_owned()
}

/// The set of loaded plugins, in sorted socket-path order (the order Scope merges them in).
#[derive(Debug, Default)]
pub struct Registry {
    plugins: BTreeMap<PathBuf, Plugin>,
    /// Paths whose invalid ID was already logged, so each is logged once, not every scan.
    invalid_logged: HashSet<PathBuf>,
}

/// What applying a scan changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Newly loaded plugin sockets (to be polled at once).
    pub added: Vec<PathBuf>,
    /// Plugins that went away.
    pub removed: Vec<Plugin>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Brings the loaded set in line with the sockets a scan found: loads new sockets with a
    /// valid ID (logging an invalid one once), drops sockets that are gone. A socket that is
    /// still present keeps its state (spec §7.1).
    pub fn apply_scan<'s>(&mut self, sockets: impl IntoIterator<Item = &'s Path>) -> Changes {
        let mut changes = Changes::default();
        let mut seen: HashSet<&Path> = HashSet::new();
        for path in sockets {
            seen.insert(path);
            if self.plugins.contains_key(path) {
                continue;
            }
            let id = plugin_id_from_path(path);
            if let Err(e) = validate_plugin_id(&id) {
                if self.invalid_logged.insert(path.to_path_buf()) {
                    log::warn!("plugins: error loading plugin {}: {e}", path.display());
                }
                continue;
            }
            if let Some(other) = self.plugins.values().find(|p| p.id == id) {
                log::warn!(
                    "plugins: {} and {} both have plugin id {id:?}; both are polled, \
                     controls go to {}",
                    other.path.display(),
                    path.display(),
                    path.max(other.path.as_path()).display()
                );
            }
            log::info!("plugins: loaded plugin {id} at {}", path.display());
            self.plugins
                .insert(path.to_path_buf(), Plugin::new(path.to_path_buf(), id));
            changes.added.push(path.to_path_buf());
        }
        let gone: Vec<PathBuf> = self
            .plugins
            .keys()
            .filter(|p| !seen.contains(p.as_path()))
            .cloned()
            .collect();
        for path in gone {
            if let Some(plugin) = self.plugins.remove(&path) {
                log::info!(
                    "plugins: removed plugin {} at {}",
                    plugin.id,
                    path.display()
                );
                changes.removed.push(plugin);
            }
        }
        self.invalid_logged.retain(|p| seen.contains(p.as_path()));
        changes
    }

    /// The plugin at `path`.
    pub fn get(&self, path: &Path) -> Option<&Plugin> {
        self.plugins.get(path)
    }

    /// The plugin at `path`, mutably.
    pub fn get_mut(&mut self, path: &Path) -> Option<&mut Plugin> {
        self.plugins.get_mut(path)
    }

    /// The plugin that control requests for `id` go to. With two sockets of one ID, Scope
    /// routes to whichever it scanned last, which is the greater path (spec §7.2).
    pub fn by_id(&self, id: &str) -> Option<&Plugin> {
        self.plugins.values().rev().find(|p| p.id == id)
    }

    /// The plugin that control requests for `id` go to, mutably.
    pub fn by_id_mut(&mut self, id: &str) -> Option<&mut Plugin> {
        self.plugins.values_mut().rev().find(|p| p.id == id)
    }

    /// All plugins in sorted socket-path order.
    pub fn iter(&self) -> impl Iterator<Item = &Plugin> {
        self.plugins.values()
    }

    /// Number of loaded plugins.
    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    /// Whether no plugin is loaded.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(id: &str) -> Plugin {
        Plugin::new(PathBuf::from(format!("/run/{id}.sock")), id.to_string())
    }

    fn answer(body: &str) -> PollOutcome<'_> {
        PollOutcome::Answer {
            code: 200,
            reason: "OK".into(),
            body: body.as_bytes(),
        }
    }

    fn poll<'a>(p: &mut Plugin, arena: &'a DecodeArena, outcome: PollOutcome<'a>) -> Report<'a> {
        p.handle_report(outcome, arena, "1", Duration::from_millis(3), Time::ZERO)
    }

    #[test]
    fn go_duration_texts() {
        let cases = [
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_micros(250), "250µs"),
            (Duration::from_nanos(12), "12ns"),
            (Duration::ZERO, "0s"),
        ];
        for (d, text) in cases {
            assert_eq!(GoDuration(d).to_string(), text);
        }
    }

    #[test]
    fn os_error_text_is_go_like() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(os_error_text(&e), "connection refused");
    }

    // spec §7.4: one test per error text.
    #[test]
    fn report_error_texts() {
        let cases: Vec<(ReportError, &str)> = vec![
            (
                ReportError::Non200("503 Service Unavailable".into()),
                "plugin returned non-200 status code: 503 Service Unavailable",
            ),
            (
                ReportError::PluginCount(2),
                "report must contain exactly one plugin (found 2)",
            ),
            (
                ReportError::IdChanged {
                    is: "wrong".into(),
                    should: "right".into(),
                },
                r#"plugin must not change its id (is "wrong", should be "right")"#,
            ),
            (
                ReportError::ApiVersion {
                    expected: "1".into(),
                    got: "".into(),
                },
                r#"incorrect API version: expected "1", got """#,
            ),
            (ReportError::NoLabel, "spec must contain a label"),
            (
                ReportError::NotReporter,
                r#"spec must implement the "reporter" interface"#,
            ),
            (
                ReportError::Transport(TransportError::Timeout {
                    timeout: Duration::from_millis(500),
                    received: 0,
                }),
                "no response within 500ms",
            ),
            (
                ReportError::Transport(TransportError::Timeout {
                    timeout: Duration::from_millis(500),
                    received: 7,
                }),
                "response not complete within 500ms (7 bytes received)",
            ),
            (
                ReportError::Transport(TransportError::Connect(io::Error::from_raw_os_error(
                    libc::ECONNREFUSED,
                ))),
                "connect: connection refused",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }

    #[test]
    fn good_report_gets_ok_and_current_spec() {
        let mut p = plugin("good");
        let arena = DecodeArena::new();
        let body = r#"{"Plugins":[{"id":"good","label":"Good","interfaces":["reporter"],"api_version":"1","status":"fine"}]}"#;
        let report = poll(&mut p, &arena, answer(body));
        assert_eq!(p.status(), "ok");
        assert_eq!(p.spec.label, "Good");
        let spec = report.plugins.iter().next().expect("one spec");
        assert_eq!(
            spec.status, "ok",
            "a status sent by the plugin is overwritten"
        );
        assert_eq!(p.stats.consecutive_failures, 0);
    }

    // spec §7.4: failures at steps 1–6 keep the previous spec; 7–9 take the new one.
    #[test]
    fn failure_before_step_6_keeps_previous_spec() {
        let mut p = plugin("keep");
        let arena = DecodeArena::new();
        let good = r#"{"Plugins":[{"id":"keep","label":"Kept","interfaces":["reporter"],"api_version":"1"}]}"#;
        poll(&mut p, &arena, answer(good));
        let report = poll(
            &mut p,
            &arena,
            PollOutcome::Answer {
                code: 500,
                reason: "Internal Server Error".into(),
                body: b"",
            },
        );
        assert_eq!(
            p.status(),
            "error: plugin returned non-200 status code: 500 Internal Server Error"
        );
        assert_eq!(p.spec.label, "Kept");
        assert_eq!(report.plugins.len(), 1);
        assert_eq!(p.stats.consecutive_failures, 1);

        let wrong_version = r#"{"Plugins":[{"id":"keep","label":"New","interfaces":["reporter"],"api_version":"2"}]}"#;
        poll(&mut p, &arena, answer(wrong_version));
        assert_eq!(
            p.status(),
            r#"error: incorrect API version: expected "1", got "2""#
        );
        assert_eq!(p.spec.label, "New", "steps 7–9 fail with the new spec");
    }

    #[test]
    fn never_good_plugin_reports_id_as_label() {
        let mut p = plugin("fresh");
        let arena = DecodeArena::new();
        let report = poll(
            &mut p,
            &arena,
            PollOutcome::Failed(TransportError::Timeout {
                timeout: Duration::from_millis(500),
                received: 0,
            }),
        );
        let spec = report.plugins.iter().next().expect("one spec");
        assert_eq!(spec.id, "fresh");
        assert_eq!(spec.label, "fresh");
        assert_eq!(spec.status, "error: no response within 500ms");
    }

    #[test]
    fn empty_body_is_a_decoding_error() {
        let mut p = plugin("empty");
        let arena = DecodeArena::new();
        poll(&mut p, &arena, answer(""));
        assert!(
            p.status().starts_with("error: decoding error: "),
            "{}",
            p.status()
        );
    }

    // spec §7.5: the error report of a controller unregisters its controls.
    #[test]
    fn controller_error_report_unregisters_controls() {
        let mut p = plugin("ctl");
        let arena = DecodeArena::new();
        let body = r#"{"Host":{"controls":{"reboot":{"id":"reboot","human":"Reboot","icon":"x","rank":1}}},"Plugins":[{"id":"ctl","label":"Ctl","interfaces":["reporter","controller"],"api_version":"1"}]}"#;
        let report = poll(&mut p, &arena, answer(body));
        assert_eq!(p.controls, vec!["reboot".to_string()]);
        let host = report.topology(report::TopologyKind::Host);
        assert!(host.controls.get("ctl~reboot").is_some());
        poll(
            &mut p,
            &arena,
            PollOutcome::Answer {
                code: 404,
                reason: "Not Found".into(),
                body: b"",
            },
        );
        assert!(p.controls.is_empty());
    }

    #[test]
    fn registry_loads_valid_ids_logs_invalid_and_drops_gone() {
        let mut registry = Registry::new();
        let a = PathBuf::from("/r/a.sock");
        let bad = PathBuf::from("/r/bad_id.sock");
        let changes = registry.apply_scan([a.as_path(), bad.as_path()]);
        assert_eq!(changes.added, vec![a.clone()]);
        assert!(registry.invalid_logged.contains(&bad));
        let changes = registry.apply_scan([a.as_path(), bad.as_path()]);
        assert!(changes.added.is_empty() && changes.removed.is_empty());
        let changes = registry.apply_scan(std::iter::empty());
        assert_eq!(changes.removed.len(), 1);
        assert!(registry.is_empty());
        assert!(registry.invalid_logged.is_empty());
    }

    #[test]
    fn duplicate_ids_are_both_loaded_and_controls_go_to_the_last() {
        let mut registry = Registry::new();
        let a = PathBuf::from("/r/a/same.sock");
        let b = PathBuf::from("/r/b/same.sock");
        registry.apply_scan([a.as_path(), b.as_path()]);
        assert_eq!(registry.len(), 2);
        assert_eq!(registry.by_id("same").map(|p| p.path.clone()), Some(b));
    }
}
