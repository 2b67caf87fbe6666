//! The command-line contract (spec `cli.md`): subcommands, options with their defaults, Scope's
//! dotted option names and Go's flag forms, turned into a typed [`Command`].
//!
//! Owns: argument syntax, defaults, validation of every value, the `--help`/`--version` texts
//! and the one-line usage error `main` prints before exiting with status 2. Does not own: what
//! the options do, picking a random probe ID, reading the kernel's hostname, resolving target
//! names or opening listen sockets; `main` and the layers below do that.
//!
//! clap does the tokenizing (which option, which value, `--opt=value` vs `--opt value`); this
//! module converts every value itself so that each refusal names the option and says why in one
//! line. Before clap sees the arguments, Go-style single-dash long options (`-probe.spy.interval
//! 2s`, `-probe.no-controls=false`) are rewritten to double-dash, since Scope's command lines
//! use Go's `flag` package.

mod duration;
mod target;

pub use duration::{DurationError, parse_go_duration};
pub use target::{DEFAULT_APP_PORT, Target, TargetError};

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `scope-probe [OPTIONS] [TARGET...]`: run until SIGTERM/SIGINT. `targets` is never empty
    /// unless `publish_stdout` is set (the default target rule is already applied).
    Run(Options),
    /// `scope-probe once [OPTIONS]`: one discovery and one poll, print the report, exit.
    /// `targets` is always empty.
    Once(Options),
    /// `scope-probe merge [FILE...]`: merge report files in order and print the result.
    Merge {
        /// Report files in command-line order; `"-"` means stdin. May be empty (the result is
        /// then the empty report).
        files: Vec<String>,
    },
    /// `--help` (also after a subcommand): print this text on stdout and exit 0. The text ends
    /// without a newline; print it with `println!`.
    Help(String),
    /// `--version`: print `scope-probe <version>` on stdout and exit 0 (no trailing newline).
    Version(String),
}

/// Default of `--plugins-root` (spec `cli.md`).
pub const DEFAULT_PLUGINS_ROOT: &str = "/var/run/scope/plugins";
/// Default of `--spy-interval`.
pub const DEFAULT_SPY_INTERVAL: Duration = Duration::from_secs(1);
/// Default of `--publish-interval`.
pub const DEFAULT_PUBLISH_INTERVAL: Duration = Duration::from_secs(3);
/// Default of `--plugin-timeout`.
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_millis(500);
/// Default of `--rescan-interval`.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(5);
/// Default of `--max-response-bytes` (50 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 52_428_800;
/// Default of `--api-version`.
pub const DEFAULT_API_VERSION: &str = "1";

/// Everything `run` and `once` are configured with. [`Options::default`] is what
/// `scope-probe` with no arguments means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Plugin socket root; `None` when given as `""` (plugins disabled).
    pub plugins_root: Option<PathBuf>,
    /// How often every plugin is polled; never zero.
    pub spy_interval: Duration,
    /// How often a report is published; never zero.
    pub publish_interval: Duration,
    /// Deadline of one plugin request, connect to last body byte; never zero.
    pub plugin_timeout: Duration,
    /// Full rescan period of the plugin root; never zero.
    pub rescan_interval: Duration,
    /// Largest plugin response body; at least 1.
    pub max_response_bytes: usize,
    /// Plugin `api_version` the probe speaks; never empty.
    pub api_version: String,
    /// `None`: `main` picks a random one (AP §5). Never empty, no whitespace.
    pub probe_id: Option<String>,
    /// `None`: the kernel's hostname. Never empty, no whitespace, no `;` (it is joined into the
    /// Host node ID `<NAME>;<host>`).
    pub hostname: Option<String>,
    /// Sent as `Authorization: Scope-Probe token=T`; may be empty.
    pub token: String,
    /// Print each published report as one JSON line on stdout instead of sending it.
    pub publish_stdout: bool,
    /// Strip controls, refuse control requests.
    pub no_controls: bool,
    /// Do not report the probe's own Host node.
    pub no_host: bool,
    /// Local HTTP listen address, normalized to `HOST:PORT`: Go's `:PORT` becomes
    /// `0.0.0.0:PORT`, IPv6 literals are bracketed (`[::1]:4041`), HOST may be a name (resolve
    /// it with `ToSocketAddrs`); port 0 is kept (any free port). `None`: off (also for `""`).
    pub http_listen: Option<String>,
    /// Log level; `RUST_LOG` overrides it (main's business).
    pub log_level: log::LevelFilter,
    /// Apps to publish to, in command-line order (see [`Command::Run`]).
    pub targets: Vec<Target>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            plugins_root: Some(PathBuf::from(DEFAULT_PLUGINS_ROOT)),
            spy_interval: DEFAULT_SPY_INTERVAL,
            publish_interval: DEFAULT_PUBLISH_INTERVAL,
            plugin_timeout: DEFAULT_PLUGIN_TIMEOUT,
            rescan_interval: DEFAULT_RESCAN_INTERVAL,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            api_version: DEFAULT_API_VERSION.to_owned(),
            probe_id: None,
            hostname: None,
            token: String::new(),
            publish_stdout: false,
            no_controls: false,
            no_host: false,
            http_listen: None,
            log_level: log::LevelFilter::Info,
            targets: vec![Target::default_app()],
        }
    }
}

/// A command line that cannot be run. `Display` is one line naming the offending option or
/// value; `main` prints it and exits with status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    kind: UsageErrorKind,
}

impl UsageError {
    /// What exactly was wrong.
    pub fn kind(&self) -> &UsageErrorKind {
        &self.kind
    }
}

impl From<UsageErrorKind> for UsageError {
    fn from(kind: UsageErrorKind) -> Self {
        UsageError { kind }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for UsageError {}

/// The cases of [`UsageError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageErrorKind {
    /// An option this command does not have; the option as written, without any `=value`.
    UnknownOption(String),
    /// A positional argument where none is allowed (targets after `once`, say).
    UnexpectedArgument(String),
    /// An option that needs a value came last.
    MissingValue {
        /// The option's canonical name (`--spy-interval`).
        option: String,
    },
    /// A value this option does not accept.
    InvalidValue {
        /// The option's canonical name.
        option: String,
        /// The value as written.
        value: String,
        /// Why it was refused.
        reason: ValueError,
    },
    /// A positional target that is not an app address (AP §1).
    InvalidTarget {
        /// The target as written.
        target: String,
        /// Why it was refused.
        reason: TargetError,
    },
    /// Run options (or targets) given before `merge`, which takes none.
    NotForMerge(String),
    /// Any other refusal from clap, as its own first line.
    Other(String),
}

impl fmt::Display for UsageErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOption(option) => write!(f, "unknown option {option}"),
            Self::UnexpectedArgument(arg) => write!(f, "unexpected argument {arg:?}"),
            Self::MissingValue { option } => write!(f, "missing value for {option}"),
            Self::InvalidValue {
                option,
                value,
                reason,
            } => write!(f, "invalid value {value:?} for {option}: {reason}"),
            Self::InvalidTarget { target, reason } => {
                write!(f, "invalid target {target:?}: {reason}")
            }
            Self::NotForMerge(arg) => write!(f, "merge takes no options or targets, got {arg}"),
            Self::Other(text) => f.write_str(text),
        }
    }
}

/// Why an option value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// Not Go duration syntax, or negative.
    Duration(DurationError),
    /// Zero where only a positive interval or size makes sense.
    Zero,
    /// Not a decimal number.
    NotANumber,
    /// A number larger than this machine's `usize`.
    NumberTooLarge,
    /// An empty string where a name or version is needed.
    Empty,
    /// Whitespace inside an ID or name.
    Whitespace,
    /// A `;` in `--hostname`, which would split the Host node ID `<NAME>;<host>`.
    Semicolon,
    /// Not one of Go's `strconv.ParseBool` forms.
    NotABool,
    /// Not a log level name.
    NotALogLevel,
    /// Not `HOST:PORT`, `[V6]:PORT` or `:PORT`.
    NotAListenAddress,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duration(e) => e.fmt(f),
            Self::Zero => f.write_str("must be greater than zero"),
            Self::NotANumber => f.write_str("not a whole number"),
            Self::NumberTooLarge => f.write_str("number too large"),
            Self::Empty => f.write_str("must not be empty"),
            Self::Whitespace => f.write_str("must not contain whitespace"),
            Self::Semicolon => f.write_str("must not contain ';'"),
            Self::NotABool => f.write_str("want true or false"),
            Self::NotALogLevel => f.write_str("want error, warn, info, debug or trace"),
            Self::NotAListenAddress => f.write_str("want HOST:PORT, [IPV6]:PORT or :PORT"),
        }
    }
}

/// One option of `run` and `once`, in the order `--help` lists them (spec `cli.md` table).
struct OptionSpec {
    /// Our long name, also the clap id.
    long: &'static str,
    /// Scope's names for the same option, accepted as aliases.
    scope_names: &'static [&'static str],
    /// `None` for a boolean flag.
    value_name: Option<&'static str>,
    /// The default as `--help` shows it.
    default: &'static str,
    /// The meaning as `--help` shows it.
    help: &'static str,
}

const PLUGINS_ROOT: &str = "plugins-root";
const SPY_INTERVAL: &str = "spy-interval";
const PUBLISH_INTERVAL: &str = "publish-interval";
const PLUGIN_TIMEOUT: &str = "plugin-timeout";
const RESCAN_INTERVAL: &str = "rescan-interval";
const MAX_RESPONSE_BYTES: &str = "max-response-bytes";
const API_VERSION: &str = "api-version";
const PROBE_ID: &str = "probe-id";
const HOSTNAME: &str = "hostname";
const TOKEN: &str = "token";
const PUBLISH_STDOUT: &str = "publish-stdout";
const NO_CONTROLS: &str = "no-controls";
const NO_HOST: &str = "no-host";
const HTTP_LISTEN: &str = "http-listen";
const LOG_LEVEL: &str = "log-level";
const TARGETS: &str = "targets";
const FILES: &str = "files";

const OPTION_SPECS: &[OptionSpec] = &[
    OptionSpec {
        long: PLUGINS_ROOT,
        scope_names: &["probe.plugins.root"],
        value_name: Some("DIR"),
        default: DEFAULT_PLUGINS_ROOT,
        help: "plugin socket root; empty disables plugins; a missing root is watched for",
    },
    OptionSpec {
        long: SPY_INTERVAL,
        scope_names: &["probe.spy.interval"],
        value_name: Some("DUR"),
        default: "1s",
        help: "how often every plugin is polled (Go duration: 500ms, 1s, 1m30s)",
    },
    OptionSpec {
        long: PUBLISH_INTERVAL,
        scope_names: &["probe.publish.interval"],
        value_name: Some("DUR"),
        default: "3s",
        help: "how often a report is published",
    },
    OptionSpec {
        long: PLUGIN_TIMEOUT,
        scope_names: &[],
        value_name: Some("DUR"),
        default: "500ms",
        help: "deadline of one plugin request, connect to last body byte",
    },
    OptionSpec {
        long: RESCAN_INTERVAL,
        scope_names: &[],
        value_name: Some("DUR"),
        default: "5s",
        help: "full rescan of the plugin root (inotify makes discovery immediate)",
    },
    OptionSpec {
        long: MAX_RESPONSE_BYTES,
        scope_names: &[],
        value_name: Some("N"),
        default: "52428800",
        help: "largest plugin response body",
    },
    OptionSpec {
        long: API_VERSION,
        scope_names: &[],
        value_name: Some("V"),
        default: DEFAULT_API_VERSION,
        help: "plugin api_version the probe speaks",
    },
    OptionSpec {
        long: PROBE_ID,
        scope_names: &[],
        value_name: Some("ID"),
        default: "random, 16 hex digits",
        help: "this probe's ID, sent to apps",
    },
    OptionSpec {
        long: HOSTNAME,
        scope_names: &[],
        value_name: Some("NAME"),
        default: "the kernel's hostname",
        help: "host name in the Host node ID <NAME>;<host>",
    },
    OptionSpec {
        long: TOKEN,
        scope_names: &["probe.token", "service-token"],
        value_name: Some("T"),
        default: "empty",
        help: "sent to apps as Authorization: Scope-Probe token=T",
    },
    OptionSpec {
        long: PUBLISH_STDOUT,
        scope_names: &["probe.publish.stdout"],
        value_name: None,
        default: "off",
        help: "print each report as one JSON line on stdout instead of sending it",
    },
    OptionSpec {
        long: NO_CONTROLS,
        scope_names: &["probe.no-controls"],
        value_name: None,
        default: "off",
        help: "strip controls, refuse control requests",
    },
    OptionSpec {
        long: NO_HOST,
        scope_names: &[],
        value_name: None,
        default: "off",
        help: "do not report the probe's own Host node",
    },
    OptionSpec {
        long: HTTP_LISTEN,
        scope_names: &["probe.http.listen"],
        value_name: Some("ADDR"),
        default: "off",
        help: "local HTTP on HOST:PORT or :PORT: /api/report, /api/plugins, /metrics",
    },
    OptionSpec {
        long: LOG_LEVEL,
        scope_names: &["probe.log.level"],
        value_name: Some("LEVEL"),
        default: "info",
        help: "error, warn, info, debug or trace; RUST_LOG overrides it",
    },
];

/// The clap arguments for the options shared by `run` and `once`.
fn option_args() -> impl Iterator<Item = Arg> {
    OPTION_SPECS.iter().map(|spec| {
        let arg = Arg::new(spec.long)
            .long(spec.long)
            .visible_aliases(spec.scope_names)
            .help(format!("{} [default: {}]", spec.help, spec.default))
            .action(ArgAction::Set);
        match spec.value_name {
            // Go's flag package lets a value start with '-' (`-probe.token -x`); so do we, and a
            // negative duration then gets its own message instead of "unknown option".
            Some(value_name) => arg
                .value_name(value_name)
                .num_args(1)
                .allow_hyphen_values(true),
            // Go's boolean flags: `-flag`, `-flag=true`, `-flag=false`, but never `-flag false`.
            None => arg
                .value_name("BOOL")
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true"),
        }
    })
}

const ABOUT: &str = "A Weave Scope probe that hosts Scope plugins";

const RUN_AFTER_HELP: &str = "\
TARGET is an app address: host, host:port, ip, ip:port, [v6]:port, [v6]; port 4040 by default.
With no TARGET and no --publish-stdout, reports go to 127.0.0.1:4040.
Scope's option names (-probe.spy.interval 2s, -probe.no-controls=true) are accepted too.";

/// The clap command tree of the contract.
fn clap_command() -> clap::Command {
    let once = clap::Command::new("once")
        .about("One discovery and one poll of every plugin; print the report and exit")
        .args_override_self(true)
        .args(option_args());
    let merge = clap::Command::new("merge")
        .about("Merge report files ('-' = stdin) in order; print the result and exit")
        .arg(
            Arg::new(FILES)
                .value_name("FILE")
                .help("a report file, or '-' for stdin")
                .num_args(0..)
                .action(ArgAction::Append),
        );
    clap::Command::new("scope-probe")
        .bin_name("scope-probe")
        .no_binary_name(true)
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .after_help(RUN_AFTER_HELP)
        // Go's flag package keeps the last of repeated options; Scope command lines may rely
        // on that, and clap would refuse the repetition otherwise.
        .args_override_self(true)
        // `help` and `version` would shadow targets of that name.
        .disable_help_subcommand(true)
        .args(option_args())
        .arg(
            Arg::new(TARGETS)
                .value_name("TARGET")
                .help("app to publish to [default: 127.0.0.1:4040]")
                .num_args(0..)
                .action(ArgAction::Append),
        )
        .subcommand(once)
        .subcommand(merge)
}

/// Parses the arguments after `argv[0]` into what to do.
///
/// ```
/// use scope_probe::cli::{parse_args, Command};
/// use std::time::Duration;
///
/// let args = ["-probe.spy.interval", "2s", "--no-host", "app.example:4040"];
/// let Ok(Command::Run(options)) = parse_args(args.map(Into::into)) else { panic!() };
/// assert_eq!(options.spy_interval, Duration::from_secs(2));
/// assert!(options.no_host);
/// assert_eq!(options.targets[0].to_string(), "app.example:4040");
///
/// let err = parse_args(["--spy-interval=5x".into()]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"invalid value "5x" for --spy-interval: unknown unit "x" in duration "5x""#
/// );
/// ```
pub fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, UsageError> {
    let (args, unknown_single_dash) = go_style_to_double_dash(args.into_iter().collect());
    let matches = match clap_command().try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(err) => return from_clap_error(&err, unknown_single_dash),
    };
    match matches.subcommand() {
        None => {
            let mut options = options_from(&[&matches])?;
            options.targets = targets_from(&matches)?;
            if options.targets.is_empty() && !options.publish_stdout {
                // spec cli.md: Scope's probe publishes to the local app by default.
                options.targets.push(Target::default_app());
            }
            Ok(Command::Run(options))
        }
        Some(("once", once)) => {
            if let Some(target) = first_target(&matches) {
                return Err(UsageErrorKind::UnexpectedArgument(target).into());
            }
            // Options before `once` count too; those after it win.
            let mut options = options_from(&[&matches, once])?;
            options.targets.clear();
            Ok(Command::Once(options))
        }
        Some(("merge", merge)) => {
            if let Some(arg) = first_given(&matches) {
                return Err(UsageErrorKind::NotForMerge(arg).into());
            }
            let files = merge
                .get_many::<String>(FILES)
                .map(|files| files.cloned().collect())
                .unwrap_or_default();
            Ok(Command::Merge { files })
        }
        // Unreachable: clap only yields the subcommands registered above.
        Some((other, _)) => Err(UsageErrorKind::UnexpectedArgument(other.to_owned()).into()),
    }
}

/// Rewrites Go-style `-name` and `-name=value`, where `name` is one of our long options or
/// Scope's names, to `--name…` for clap. Values of options that take one are left alone (Go
/// allows `-probe.token -x`), and so is everything after `--`.
///
/// Also returns the first single-dash word that is not an option of ours: clap reads `-foo` as
/// the short-option cluster `-f -o -o` and would name only `-f` when refusing it.
fn go_style_to_double_dash(args: Vec<OsString>) -> (Vec<OsString>, Option<String>) {
    let mut out = Vec::with_capacity(args.len());
    let mut unknown_single_dash = None;
    let mut next_is_value = false;
    let mut rest_is_positional = false;
    for arg in args {
        if next_is_value || rest_is_positional {
            next_is_value = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_is_positional = true;
            out.push(arg);
            continue;
        }
        let (dashes, body) = if let Some(body) = text.strip_prefix("--") {
            (2, body)
        } else if let Some(body) = text.strip_prefix('-') {
            (1, body)
        } else {
            out.push(arg);
            continue;
        };
        let (name, has_value) = match body.split_once('=') {
            Some((name, _)) => (name, true),
            None => (body, false),
        };
        let Some(spec) = find_long(name) else {
            if dashes == 1 && name.len() > 1 && unknown_single_dash.is_none() {
                unknown_single_dash = Some(format!("-{name}"));
            }
            out.push(arg);
            continue;
        };
        next_is_value = !has_value && spec.is_some_and(|spec| spec.value_name.is_some());
        if dashes == 1 {
            out.push(OsString::from(format!("-{text}")));
        } else {
            out.push(arg);
        }
    }
    (out, unknown_single_dash)
}

/// Looks a long name up among ours, Scope's and clap's built-ins: `Some(None)` for `help` and
/// `version`.
fn find_long(name: &str) -> Option<Option<&'static OptionSpec>> {
    if name == "help" || name == "version" {
        return Some(None);
    }
    OPTION_SPECS
        .iter()
        .find(|spec| spec.long == name || spec.scope_names.contains(&name))
        .map(Some)
}

/// Turns clap's refusal (or its help/version request) into our result.
/// `unknown_single_dash` is the whole word to name when clap refuses one letter of it.
fn from_clap_error(
    err: &clap::Error,
    unknown_single_dash: Option<String>,
) -> Result<Command, UsageError> {
    let context_str = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    // clap names an option with its value placeholder (`--spy-interval <DUR>`).
    let option_name = |text: String| match text.split_once(' ') {
        Some((name, _)) => name.to_owned(),
        None => text,
    };
    let kind = match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            return Ok(Command::Help(
                err.render().to_string().trim_end().to_owned(),
            ));
        }
        ErrorKind::DisplayVersion => {
            return Ok(Command::Version(version_text()));
        }
        ErrorKind::UnknownArgument => match context_str(ContextKind::InvalidArg) {
            Some(arg) if arg.starts_with('-') && arg != "-" => {
                let is_short = arg.len() == 2 && !arg.starts_with("--");
                let option = match unknown_single_dash {
                    Some(word) if is_short && word.starts_with(&arg) => word,
                    _ => arg,
                };
                UsageErrorKind::UnknownOption(match option.split_once('=') {
                    Some((name, _)) => name.to_owned(),
                    None => option,
                })
            }
            Some(arg) => UsageErrorKind::UnexpectedArgument(arg),
            None => UsageErrorKind::Other(first_line(err)),
        },
        ErrorKind::InvalidValue => match (
            context_str(ContextKind::InvalidArg),
            context_str(ContextKind::InvalidValue),
        ) {
            (Some(arg), Some(value)) if value.is_empty() => UsageErrorKind::MissingValue {
                option: option_name(arg),
            },
            _ => UsageErrorKind::Other(first_line(err)),
        },
        _ => UsageErrorKind::Other(first_line(err)),
    };
    Err(kind.into())
}

/// clap's own message for the rare errors we do not rephrase, as one line without its
/// `error: ` prefix.
fn first_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let line = rendered.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// The `--version` text.
fn version_text() -> String {
    format!("scope-probe {}", env!("CARGO_PKG_VERSION"))
}

/// The value given on the command line for `id`, from the last layer that has it.
fn given<'m>(layers: &[&'m ArgMatches], id: &str) -> Option<&'m str> {
    layers.iter().rev().find_map(|m| {
        (m.value_source(id) == Some(ValueSource::CommandLine))
            .then(|| m.get_one::<String>(id).map(String::as_str))
            .flatten()
    })
}

/// The first option given before `merge`, or the first target, for its error message.
fn first_given(matches: &ArgMatches) -> Option<String> {
    OPTION_SPECS
        .iter()
        .find(|spec| matches.value_source(spec.long) == Some(ValueSource::CommandLine))
        .map(|spec| format!("--{}", spec.long))
        .or_else(|| first_target(matches).map(|t| format!("{t:?}")))
}

fn first_target(matches: &ArgMatches) -> Option<String> {
    matches
        .get_many::<String>(TARGETS)
        .and_then(|mut targets| targets.next().cloned())
}

/// Builds options from clap's matches, converting and checking every given value.
fn options_from(layers: &[&ArgMatches]) -> Result<Options, UsageError> {
    let mut options = Options {
        targets: Vec::new(),
        ..Options::default()
    };
    if let Some(root) = given(layers, PLUGINS_ROOT) {
        options.plugins_root = (!root.is_empty()).then(|| PathBuf::from(root));
    }
    let interval = |id: &str, default: Duration| match given(layers, id) {
        None => Ok(default),
        Some(text) => value(id, text, parse_interval(text)),
    };
    options.spy_interval = interval(SPY_INTERVAL, DEFAULT_SPY_INTERVAL)?;
    options.publish_interval = interval(PUBLISH_INTERVAL, DEFAULT_PUBLISH_INTERVAL)?;
    options.plugin_timeout = interval(PLUGIN_TIMEOUT, DEFAULT_PLUGIN_TIMEOUT)?;
    options.rescan_interval = interval(RESCAN_INTERVAL, DEFAULT_RESCAN_INTERVAL)?;
    if let Some(text) = given(layers, MAX_RESPONSE_BYTES) {
        options.max_response_bytes = value(MAX_RESPONSE_BYTES, text, parse_byte_count(text))?;
    }
    if let Some(text) = given(layers, API_VERSION) {
        options.api_version = value(API_VERSION, text, parse_word(text))?;
    }
    if let Some(text) = given(layers, PROBE_ID) {
        options.probe_id = Some(value(PROBE_ID, text, parse_word(text))?);
    }
    if let Some(text) = given(layers, HOSTNAME) {
        let name = parse_word(text).and_then(|name| match name.contains(';') {
            true => Err(ValueError::Semicolon),
            false => Ok(name),
        });
        options.hostname = Some(value(HOSTNAME, text, name)?);
    }
    if let Some(text) = given(layers, TOKEN) {
        options.token = text.to_owned();
    }
    let flag = |id: &str| match given(layers, id) {
        None => Ok(false),
        Some(text) => value(id, text, parse_go_bool(text)),
    };
    options.publish_stdout = flag(PUBLISH_STDOUT)?;
    options.no_controls = flag(NO_CONTROLS)?;
    options.no_host = flag(NO_HOST)?;
    if let Some(text) = given(layers, HTTP_LISTEN) {
        options.http_listen = value(HTTP_LISTEN, text, parse_listen_address(text))?;
    }
    if let Some(text) = given(layers, LOG_LEVEL) {
        options.log_level = value(LOG_LEVEL, text, parse_log_level(text))?;
    }
    Ok(options)
}

/// Attaches the option and value to a conversion error.
fn value<T>(option: &str, text: &str, parsed: Result<T, ValueError>) -> Result<T, UsageError> {
    parsed.map_err(|reason| {
        UsageErrorKind::InvalidValue {
            option: format!("--{option}"),
            value: text.to_owned(),
            reason,
        }
        .into()
    })
}

fn targets_from(matches: &ArgMatches) -> Result<Vec<Target>, UsageError> {
    let Some(texts) = matches.get_many::<String>(TARGETS) else {
        return Ok(Vec::new());
    };
    texts
        .map(|text| {
            text.parse().map_err(|reason| {
                UsageError::from(UsageErrorKind::InvalidTarget {
                    target: text.clone(),
                    reason,
                })
            })
        })
        .collect()
}

/// A Go duration that is neither negative nor zero: every interval option is a period or a
/// deadline, and zero would spin the event loop.
fn parse_interval(text: &str) -> Result<Duration, ValueError> {
    match parse_go_duration(text) {
        Err(e) => Err(ValueError::Duration(e)),
        Ok(Duration::ZERO) => Err(ValueError::Zero),
        Ok(d) => Ok(d),
    }
}

/// A decimal byte count of at least 1, digits only (no sign, no unit).
fn parse_byte_count(text: &str) -> Result<usize, ValueError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::NotANumber);
    }
    match text.parse::<usize>() {
        Err(_) => Err(ValueError::NumberTooLarge),
        Ok(0) => Err(ValueError::Zero),
        Ok(n) => Ok(n),
    }
}

/// A non-empty string without whitespace (IDs, versions and names end up in headers and IDs).
fn parse_word(text: &str) -> Result<String, ValueError> {
    if text.is_empty() {
        Err(ValueError::Empty)
    } else if text.chars().any(char::is_whitespace) {
        Err(ValueError::Whitespace)
    } else {
        Ok(text.to_owned())
    }
}

/// Go's `strconv.ParseBool`, which Scope's boolean flags use for `-flag=value`.
fn parse_go_bool(text: &str) -> Result<bool, ValueError> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ValueError::NotABool),
    }
}

/// Log levels by name, case-insensitive like Scope's logrus (which also spells `warning`).
fn parse_log_level(text: &str) -> Result<log::LevelFilter, ValueError> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "error" => log::LevelFilter::Error,
        "warn" | "warning" => log::LevelFilter::Warn,
        "info" => log::LevelFilter::Info,
        "debug" => log::LevelFilter::Debug,
        "trace" => log::LevelFilter::Trace,
        _ => return Err(ValueError::NotALogLevel),
    })
}

/// `""` (off), Go's `:PORT` (all IPv4 interfaces), `HOST:PORT` or `[V6]:PORT`, normalized as
/// [`Options::http_listen`] documents. Port 0 is allowed: the kernel picks a free one.
fn parse_listen_address(text: &str) -> Result<Option<String>, ValueError> {
    if text.is_empty() {
        return Ok(None);
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:").ok_or(ValueError::NotAListenAddress)?;
        let ip: std::net::Ipv6Addr = v6.parse().map_err(|_| ValueError::NotAListenAddress)?;
        (format!("[{ip}]"), port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or(ValueError::NotAListenAddress)?;
        if host.is_empty() {
            ("0.0.0.0".to_owned(), port)
        } else if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
            (ip.to_string(), port)
        } else if target::is_host_name(host) {
            (host.to_owned(), port)
        } else {
            // Includes unbracketed IPv6, whose last group cannot be told from a port.
            return Err(ValueError::NotAListenAddress);
        }
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::NotAListenAddress);
    }
    let port: u16 = port.parse().map_err(|_| ValueError::NotAListenAddress)?;
    Ok(Some(format!("{host}:{port}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(options)) => options,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn once(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Once(options)) => options,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    /// The one-line message of a refused command line.
    fn usage_error(args: &[&str]) -> String {
        match parse(args) {
            Err(e) => {
                let text = e.to_string();
                assert!(!text.contains('\n'), "{args:?}: not one line: {text:?}");
                text
            }
            Ok(command) => panic!("{args:?} parsed as {command:?}"),
        }
    }

    /// Every way to give `name value`: our double-dash forms and Go's single-dash forms.
    fn spellings(name: &str, value: &str) -> Vec<Vec<String>> {
        vec![
            vec![format!("--{name}={value}")],
            vec![format!("--{name}"), value.to_owned()],
            vec![format!("-{name}={value}")],
            vec![format!("-{name}"), value.to_owned()],
        ]
    }

    fn run_owned(args: &[String]) -> Options {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    }

    fn names_of(long: &str) -> Vec<&'static str> {
        let spec = OPTION_SPECS
            .iter()
            .find(|spec| spec.long == long)
            .unwrap_or_else(|| panic!("no option {long}"));
        let mut names = vec![spec.long];
        names.extend(spec.scope_names);
        names
    }

    // Default rule and defaults (spec cli.md table).

    #[test]
    fn no_arguments_mean_the_defaults_and_the_local_app() {
        let options = run(&[]);
        assert_eq!(options, Options::default());
        assert_eq!(
            options.plugins_root,
            Some(PathBuf::from("/var/run/scope/plugins"))
        );
        assert_eq!(options.spy_interval, Duration::from_secs(1));
        assert_eq!(options.publish_interval, Duration::from_secs(3));
        assert_eq!(options.plugin_timeout, Duration::from_millis(500));
        assert_eq!(options.rescan_interval, Duration::from_secs(5));
        assert_eq!(options.max_response_bytes, 52_428_800);
        assert_eq!(options.api_version, "1");
        assert_eq!(options.probe_id, None);
        assert_eq!(options.hostname, None);
        assert_eq!(options.token, "");
        assert!(!options.publish_stdout && !options.no_controls && !options.no_host);
        assert_eq!(options.http_listen, None);
        assert_eq!(options.log_level, log::LevelFilter::Info);
        assert_eq!(options.targets, vec![Target::default_app()]);
    }

    #[test]
    fn help_defaults_are_the_real_defaults() {
        let by_long = |long: &str| {
            OPTION_SPECS
                .iter()
                .find(|spec| spec.long == long)
                .map(|spec| spec.default)
        };
        let d = Options::default();
        let dur = |long| by_long(long).map(|text| parse_go_duration(text).ok());
        assert_eq!(dur(SPY_INTERVAL), Some(Some(d.spy_interval)));
        assert_eq!(dur(PUBLISH_INTERVAL), Some(Some(d.publish_interval)));
        assert_eq!(dur(PLUGIN_TIMEOUT), Some(Some(d.plugin_timeout)));
        assert_eq!(dur(RESCAN_INTERVAL), Some(Some(d.rescan_interval)));
        assert_eq!(
            by_long(MAX_RESPONSE_BYTES),
            Some(d.max_response_bytes.to_string().as_str())
        );
        assert_eq!(by_long(PLUGINS_ROOT), Some(DEFAULT_PLUGINS_ROOT));
        assert_eq!(by_long(LOG_LEVEL), Some("info"));
    }

    #[test]
    fn targets_are_kept_in_order_and_replace_the_default() {
        let options = run(&["example.com", "10.0.0.1:80", "[::1]:4040", "::1"]);
        let shown: Vec<String> = options.targets.iter().map(Target::to_string).collect();
        assert_eq!(
            shown,
            [
                "example.com:4040",
                "10.0.0.1:80",
                "[::1]:4040",
                "[::1]:4040"
            ]
        );
    }

    #[test]
    fn publish_stdout_without_targets_publishes_nowhere_else() {
        assert_eq!(run(&["--publish-stdout"]).targets, vec![]);
        assert_eq!(
            run(&["--publish-stdout", "app:5"]).targets,
            vec![Target {
                host: "app".into(),
                port: 5
            }]
        );
        assert_eq!(
            run(&["--publish-stdout=false"]).targets,
            vec![Target::default_app()]
        );
    }

    #[test]
    fn bad_targets_are_named() {
        assert_eq!(
            usage_error(&["app:99999"]),
            r#"invalid target "app:99999": invalid port "99999": want 1 to 65535"#
        );
        assert_eq!(
            usage_error(&["good", "[::1"]),
            r#"invalid target "[::1": invalid IPv6 address "[::1""#
        );
    }

    // Every option, both value forms, every name.

    #[test]
    fn every_value_option_takes_both_forms_under_every_name() {
        type Check = fn(&Options) -> bool;
        let table: &[(&str, &str, Check)] = &[
            (PLUGINS_ROOT, "/run/p", |o| {
                o.plugins_root == Some(PathBuf::from("/run/p"))
            }),
            (SPY_INTERVAL, "2s", |o| {
                o.spy_interval == Duration::from_secs(2)
            }),
            (PUBLISH_INTERVAL, "1m30s", |o| {
                o.publish_interval == Duration::from_secs(90)
            }),
            (PLUGIN_TIMEOUT, "250ms", |o| {
                o.plugin_timeout == Duration::from_millis(250)
            }),
            (RESCAN_INTERVAL, "1.5h", |o| {
                o.rescan_interval == Duration::from_secs(5400)
            }),
            (MAX_RESPONSE_BYTES, "1024", |o| o.max_response_bytes == 1024),
            (API_VERSION, "2", |o| o.api_version == "2"),
            (PROBE_ID, "0123456789abcdef", |o| {
                o.probe_id.as_deref() == Some("0123456789abcdef")
            }),
            (HOSTNAME, "node-1", |o| {
                o.hostname.as_deref() == Some("node-1")
            }),
            (TOKEN, "s3cr3t", |o| o.token == "s3cr3t"),
            (HTTP_LISTEN, "127.0.0.1:4041", |o| {
                o.http_listen.as_deref() == Some("127.0.0.1:4041")
            }),
            (LOG_LEVEL, "debug", |o| {
                o.log_level == log::LevelFilter::Debug
            }),
        ];
        for (long, value, check) in table {
            for name in names_of(long) {
                for args in spellings(name, value) {
                    let options = run_owned(&args);
                    assert!(check(&options), "{args:?} gave {options:?}");
                    // The value did not leak into the targets.
                    assert_eq!(options.targets, vec![Target::default_app()], "{args:?}");
                }
            }
        }
    }

    #[test]
    fn scopes_names_are_the_contracts() {
        let scope_names: Vec<&str> = OPTION_SPECS
            .iter()
            .flat_map(|spec| spec.scope_names.iter().copied())
            .collect();
        assert_eq!(
            scope_names,
            [
                "probe.plugins.root",
                "probe.spy.interval",
                "probe.publish.interval",
                "probe.token",
                "service-token",
                "probe.publish.stdout",
                "probe.no-controls",
                "probe.http.listen",
                "probe.log.level",
            ]
        );
    }

    #[test]
    fn boolean_flags_take_gos_forms_under_every_name() {
        type Check = fn(&Options) -> bool;
        let table: &[(&str, Check)] = &[
            (PUBLISH_STDOUT, |o| o.publish_stdout),
            (NO_CONTROLS, |o| o.no_controls),
            (NO_HOST, |o| o.no_host),
        ];
        let truthy = ["", "=true", "=1", "=t", "=T", "=TRUE", "=True"];
        let falsy = ["=false", "=0", "=f", "=F", "=FALSE", "=False"];
        for (long, is_set) in table {
            for name in names_of(long) {
                for dashes in ["-", "--"] {
                    for suffix in truthy {
                        let arg = format!("{dashes}{name}{suffix}");
                        assert!(is_set(&run(&[&arg])), "{arg}");
                        assert!(is_set(&once(&["once", &arg])), "once {arg}");
                    }
                    for suffix in falsy {
                        let arg = format!("{dashes}{name}{suffix}");
                        assert!(!is_set(&run(&[&arg])), "{arg}");
                    }
                    assert_eq!(
                        usage_error(&[&format!("{dashes}{name}=yes")]),
                        format!(r#"invalid value "yes" for --{long}: want true or false"#)
                    );
                }
            }
        }
    }

    #[test]
    fn boolean_flags_never_take_the_next_argument() {
        // Go: `-probe.no-controls false` sets the flag and `false` is a positional argument.
        let options = run(&["-probe.no-controls", "false"]);
        assert!(options.no_controls);
        assert_eq!(options.targets[0].host, "false");
    }

    #[test]
    fn the_last_of_repeated_options_wins_as_in_go() {
        let options = run(&[
            "--spy-interval=2s",
            "-probe.spy.interval",
            "3s",
            "--no-controls",
            "--no-controls=false",
        ]);
        assert_eq!(options.spy_interval, Duration::from_secs(3));
        assert!(!options.no_controls);
    }

    #[test]
    fn values_may_start_with_a_dash_as_in_go() {
        assert_eq!(run(&["--token", "-x"]).token, "-x");
        // A value that looks like an option is still the value, not rewritten.
        let options = run(&["-probe.token", "-probe.no-controls"]);
        assert_eq!(options.token, "-probe.no-controls");
        assert!(!options.no_controls);
        assert_eq!(run(&["--token="]).token, "");
    }

    #[test]
    fn plugins_root_empty_disables_plugins() {
        assert_eq!(run(&["--plugins-root="]).plugins_root, None);
        assert_eq!(run(&["-probe.plugins.root", ""]).plugins_root, None);
    }

    // Value checks.

    #[test]
    fn durations_are_checked_per_option() {
        for long in [
            SPY_INTERVAL,
            PUBLISH_INTERVAL,
            PLUGIN_TIMEOUT,
            RESCAN_INTERVAL,
        ] {
            let cases = [
                ("5x", r#"unknown unit "x" in duration "5x""#),
                ("5", r#"missing unit in duration "5""#),
                ("abc", r#"invalid duration "abc""#),
                ("-1s", r#"negative duration "-1s""#),
                ("0", "must be greater than zero"),
                ("0s", "must be greater than zero"),
            ];
            for (value, reason) in cases {
                assert_eq!(
                    usage_error(&[&format!("--{long}={value}")]),
                    format!("invalid value {value:?} for --{long}: {reason}")
                );
            }
        }
        // Scope's name reports our canonical name.
        assert_eq!(
            usage_error(&["-probe.spy.interval", "5x"]),
            r#"invalid value "5x" for --spy-interval: unknown unit "x" in duration "5x""#
        );
        assert_eq!(
            run(&["--plugin-timeout=300µs"]).plugin_timeout,
            Duration::from_micros(300)
        );
    }

    #[test]
    fn max_response_bytes_is_a_positive_whole_number() {
        assert_eq!(run(&["--max-response-bytes=1"]).max_response_bytes, 1);
        let cases = [
            ("0", "must be greater than zero"),
            ("", "not a whole number"),
            ("-1", "not a whole number"),
            ("+5", "not a whole number"),
            ("1k", "not a whole number"),
            ("99999999999999999999999", "number too large"),
        ];
        for (value, reason) in cases {
            assert_eq!(
                usage_error(&[&format!("--max-response-bytes={value}")]),
                format!("invalid value {value:?} for --max-response-bytes: {reason}")
            );
        }
    }

    #[test]
    fn ids_and_names_are_single_words() {
        let cases = [
            (PROBE_ID, "", "must not be empty"),
            (PROBE_ID, "a b", "must not contain whitespace"),
            (API_VERSION, "", "must not be empty"),
            (HOSTNAME, "", "must not be empty"),
            (HOSTNAME, "a\tb", "must not contain whitespace"),
            (HOSTNAME, "a;b", "must not contain ';'"),
        ];
        for (long, value, reason) in cases {
            assert_eq!(
                usage_error(&[&format!("--{long}={value}")]),
                format!("invalid value {value:?} for --{long}: {reason}")
            );
        }
        assert_eq!(
            run(&["--probe-id=anything-goes"]).probe_id.as_deref(),
            Some("anything-goes")
        );
    }

    #[test]
    fn log_levels() {
        let table = [
            ("error", log::LevelFilter::Error),
            ("warn", log::LevelFilter::Warn),
            ("warning", log::LevelFilter::Warn),
            ("info", log::LevelFilter::Info),
            ("debug", log::LevelFilter::Debug),
            ("trace", log::LevelFilter::Trace),
            ("DEBUG", log::LevelFilter::Debug),
        ];
        for (text, level) in table {
            assert_eq!(run(&["--log-level", text]).log_level, level, "{text}");
        }
        assert_eq!(
            usage_error(&["--log-level=loud"]),
            r#"invalid value "loud" for --log-level: want error, warn, info, debug or trace"#
        );
    }

    #[test]
    fn http_listen_addresses_are_normalized() {
        let table = [
            ("127.0.0.1:4041", Some("127.0.0.1:4041")),
            (":4041", Some("0.0.0.0:4041")),
            ("[::1]:4041", Some("[::1]:4041")),
            ("[::]:80", Some("[::]:80")),
            ("localhost:4041", Some("localhost:4041")),
            ("127.0.0.1:0", Some("127.0.0.1:0")),
            ("", None),
        ];
        for (text, want) in table {
            let got = run(&["--http-listen", text]).http_listen;
            assert_eq!(got.as_deref(), want, "{text:?}");
        }
        for bad in [
            "4041",
            "127.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:65536",
            "127.0.0.1:+1",
            "::1:4041",
            "[::1]",
            "[::1]4041",
            "[nope]:1",
            "a b:1",
        ] {
            assert_eq!(
                usage_error(&["--http-listen", bad]),
                format!(
                    "invalid value {bad:?} for --http-listen: want HOST:PORT, [IPV6]:PORT or :PORT"
                )
            );
        }
    }

    // Syntax errors.

    #[test]
    fn unknown_options_are_named_on_one_line() {
        assert_eq!(usage_error(&["--foo"]), "unknown option --foo");
        assert_eq!(usage_error(&["--foo=1"]), "unknown option --foo");
        assert_eq!(usage_error(&["-x"]), "unknown option -x");
        assert_eq!(usage_error(&["-probe.foo"]), "unknown option -probe.foo");
        assert_eq!(usage_error(&["-probe.foo=1"]), "unknown option -probe.foo");
        assert_eq!(usage_error(&["-xh"]), "unknown option -xh");
        // A value that looks like the unknown word is not taken for it.
        assert_eq!(usage_error(&["--token", "-pw", "-p"]), "unknown option -p");
        assert_eq!(usage_error(&["app", "--spy"]), "unknown option --spy");
        assert_eq!(usage_error(&["once", "--foo"]), "unknown option --foo");
        assert_eq!(
            usage_error(&["merge", "--token", "x"]),
            "unknown option --token"
        );
    }

    #[test]
    fn a_missing_value_is_named() {
        assert_eq!(
            usage_error(&["--spy-interval"]),
            "missing value for --spy-interval"
        );
        assert_eq!(usage_error(&["-probe.token"]), "missing value for --token");
        assert_eq!(
            usage_error(&["once", "--hostname"]),
            "missing value for --hostname"
        );
    }

    #[test]
    fn arguments_that_are_not_utf8_are_refused_on_one_line() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'-', b'-', b't', b'o', b'k', b'e', b'n', b'=', 0xff]);
        let err = parse_args([bad]).expect_err("invalid UTF-8 accepted");
        let text = err.to_string();
        assert!(matches!(err.kind(), UsageErrorKind::Other(_)), "{err:?}");
        assert!(text.contains("UTF-8") && !text.contains('\n'), "{text:?}");
    }

    #[test]
    fn every_usage_error_variant_has_its_text() {
        let cases = [
            (
                UsageErrorKind::UnknownOption("--foo".into()),
                "unknown option --foo",
            ),
            (
                UsageErrorKind::UnexpectedArgument("x".into()),
                r#"unexpected argument "x""#,
            ),
            (
                UsageErrorKind::MissingValue {
                    option: "--token".into(),
                },
                "missing value for --token",
            ),
            (
                UsageErrorKind::InvalidValue {
                    option: "--spy-interval".into(),
                    value: "5x".into(),
                    reason: ValueError::Duration(DurationError::UnknownUnit {
                        unit: "x".into(),
                        duration: "5x".into(),
                    }),
                },
                r#"invalid value "5x" for --spy-interval: unknown unit "x" in duration "5x""#,
            ),
            (
                UsageErrorKind::InvalidTarget {
                    target: ":1".into(),
                    reason: TargetError::EmptyHost,
                },
                r#"invalid target ":1": missing host"#,
            ),
            (
                UsageErrorKind::NotForMerge("--token".into()),
                "merge takes no options or targets, got --token",
            ),
            (UsageErrorKind::Other("clap says".into()), "clap says"),
        ];
        for (kind, want) in cases {
            assert_eq!(UsageError::from(kind).to_string(), want);
        }
    }

    #[test]
    fn every_value_error_variant_has_its_text() {
        let cases = [
            (
                ValueError::Duration(DurationError::Negative("-1s".into())),
                r#"negative duration "-1s""#,
            ),
            (ValueError::Zero, "must be greater than zero"),
            (ValueError::NotANumber, "not a whole number"),
            (ValueError::NumberTooLarge, "number too large"),
            (ValueError::Empty, "must not be empty"),
            (ValueError::Whitespace, "must not contain whitespace"),
            (ValueError::Semicolon, "must not contain ';'"),
            (ValueError::NotABool, "want true or false"),
            (
                ValueError::NotALogLevel,
                "want error, warn, info, debug or trace",
            ),
            (
                ValueError::NotAListenAddress,
                "want HOST:PORT, [IPV6]:PORT or :PORT",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    // Subcommands.

    #[test]
    fn once_takes_the_options_but_no_targets() {
        let options = once(&[
            "once",
            "--spy-interval=2s",
            "-probe.no-controls",
            "--no-host",
        ]);
        assert_eq!(options.spy_interval, Duration::from_secs(2));
        assert!(options.no_controls && options.no_host);
        assert_eq!(options.targets, vec![]);
        assert_eq!(
            once(&["once"]),
            Options {
                targets: vec![],
                ..Options::default()
            }
        );
        assert_eq!(
            usage_error(&["once", "app"]),
            r#"unexpected argument "app""#
        );
    }

    #[test]
    fn options_before_once_count_and_those_after_it_win() {
        let options = once(&[
            "--token",
            "a",
            "--log-level=debug",
            "once",
            "--log-level",
            "trace",
        ]);
        assert_eq!(options.token, "a");
        assert_eq!(options.log_level, log::LevelFilter::Trace);
    }

    #[test]
    fn merge_takes_files_in_order() {
        let files = |args: &[&str]| match parse(args) {
            Ok(Command::Merge { files }) => files,
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(
            files(&["merge", "a.json", "-", "b.json"]),
            ["a.json", "-", "b.json"]
        );
        assert_eq!(files(&["merge"]), Vec::<String>::new());
        // After `--` nothing is an option, not even Scope's single-dash names.
        assert_eq!(
            files(&["merge", "--", "-probe.token", "--x"]),
            ["-probe.token", "--x"]
        );
        assert_eq!(
            usage_error(&["--token=x", "merge", "a"]),
            "merge takes no options or targets, got --token"
        );
    }

    // Help and version.

    #[test]
    fn help_lists_every_option_with_its_default_and_scope_names() {
        for args in [&["--help"][..], &["-h"], &["-help"], &["app", "--help"]] {
            let Ok(Command::Help(text)) = parse(args) else {
                panic!("{args:?} is not help");
            };
            assert!(
                text.contains("Usage: scope-probe [OPTIONS] [TARGET]..."),
                "{text}"
            );
            assert!(!text.ends_with('\n'));
            for spec in OPTION_SPECS {
                assert!(text.contains(&format!("--{}", spec.long)), "{}", spec.long);
                assert!(text.contains(&format!("[default: {}]", spec.default)));
                assert!(text.contains(spec.help));
                for name in spec.scope_names {
                    assert!(text.contains(&format!("--{name}")), "{name}");
                }
            }
            assert!(text.contains("once") && text.contains("merge"));
        }
    }

    #[test]
    fn subcommands_have_their_own_help() {
        let Ok(Command::Help(text)) = parse(&["once", "--help"]) else {
            panic!("once --help is not help");
        };
        assert!(text.contains("Usage: scope-probe once [OPTIONS]"), "{text}");
        assert!(text.contains("--spy-interval"));
        let Ok(Command::Help(text)) = parse(&["merge", "-h"]) else {
            panic!("merge -h is not help");
        };
        assert!(
            text.contains("Usage: scope-probe merge [FILE]..."),
            "{text}"
        );
        assert!(!text.contains("--spy-interval"));
    }

    #[test]
    fn version_is_the_package_version() {
        let want = format!("scope-probe {}", env!("CARGO_PKG_VERSION"));
        for args in [&["--version"][..], &["-V"], &["-version"]] {
            assert_eq!(parse(args), Ok(Command::Version(want.clone())), "{args:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_command_line_panics(args in proptest::collection::vec(
            proptest::string::string_regex("(-{0,2}(probe\\.)?[a-z.-]{0,20}(=.{0,8})?|.{0,12})").unwrap(),
            0..6,
        )) {
            if let Err(e) = parse_args(args.iter().map(OsString::from)) {
                proptest::prop_assert!(!e.to_string().contains('\n'), "{e}");
            }
        }
    }
}
