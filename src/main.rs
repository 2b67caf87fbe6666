//! The `scope-probe` binary: parse the command line (`spec/cli.md`), build the probe, run it.
//! Everything else lives in the library.

use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::SystemTime;

use scope_probe::cli::{self, Command, Options};
use scope_probe::probe::{Config, Probe, Sink};
use scope_probe::report::{self, Report, Time};
use scope_probe::sys;

fn main() -> ExitCode {
    let command = match cli::parse_args(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("scope-probe: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help(text) => print_line(&text),
        Command::Version(text) => print_line(&text),
        Command::Merge { files } => merge(&files),
        Command::Once(options) => once(&options),
        Command::Run(options) => run(&options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("scope-probe: {message}");
            ExitCode::from(1)
        }
    }
}

fn print_line(text: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| format!("writing to stdout: {e}"))
}

fn init_logging(options: &Options) {
    env_logger::Builder::new()
        .filter_level(options.log_level)
        .parse_env("RUST_LOG")
        .format_target(false)
        .init();
}

/// The probe's configuration: the command line plus what `main` decides (AP §5: a random
/// 63-bit probe ID in lower-case hex, new at every start; the kernel's hostname).
fn config(options: &Options, sink: Sink) -> Result<Config, String> {
    let probe_id = match &options.probe_id {
        Some(id) => id.clone(),
        None => format!("{:x}", sys::host::random_u64() >> 1),
    };
    let hostname = match &options.hostname {
        Some(name) => name.clone(),
        None => sys::host::hostname()
            .map_err(|e| format!("cannot read the hostname ({e}); pass --hostname NAME"))?,
    };
    let mut config = Config::new(options.plugins_root.clone(), probe_id, hostname);
    config.spy_interval = options.spy_interval;
    config.publish_interval = options.publish_interval;
    config.plugin_timeout = options.plugin_timeout;
    config.rescan_interval = options.rescan_interval;
    config.max_response_bytes = options.max_response_bytes;
    config.api_version = options.api_version.clone();
    config.no_controls = options.no_controls;
    config.no_host = options.no_host;
    config.token = options.token.clone();
    config.http_listen = match &options.http_listen {
        // Resolved once at start-up, before the loop runs (it may name a host).
        Some(addr) => Some(
            addr.to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .ok_or_else(|| format!("cannot resolve --http-listen address {addr:?}"))?,
        ),
        None => None,
    };
    config.sink = sink;
    Ok(config)
}

fn start(config: Config) -> Result<Probe, String> {
    Probe::new(config).map_err(|e| format!("cannot start: {e}"))
}

fn run(options: &Options) -> Result<(), String> {
    init_logging(options);
    let sink = if options.publish_stdout {
        Sink::Stdout
    } else {
        Sink::Apps(
            options
                .targets
                .iter()
                .map(|t| (t.host.clone(), t.port))
                .collect(),
        )
    };
    let mut probe = start(config(options, sink)?)?;
    probe.run().map_err(|e| format!("event loop failed: {e}"))
}

fn once(options: &Options) -> Result<(), String> {
    init_logging(options);
    let mut probe = start(config(options, Sink::None)?)?;
    let outcome = probe
        .once()
        .map_err(|e| format!("polling plugins failed: {e}"))?;
    let mut out = io::stdout().lock();
    out.write_all(&outcome.report)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| format!("writing to stdout: {e}"))
}

/// `merge [FILE...]`: RF §2.3 defaults on each input, merged in order into an empty report.
fn merge(files: &[String]) -> Result<(), String> {
    let mut bodies = Vec::with_capacity(files.len());
    for file in files {
        let body = if file == "-" {
            let mut buf = Vec::new();
            io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| format!("merge: reading stdin: {e}"))?;
            buf
        } else {
            std::fs::read(file).map_err(|e| format!("merge: reading {file}: {e}"))?
        };
        bodies.push(body);
    }
    let now = Time::from_system(SystemTime::now());
    let mut merged = Report::make();
    for (file, body) in files.iter().zip(&bodies) {
        let name = if file == "-" { "<stdin>" } else { file };
        let rpt = report::decode_plugin_report(body, now)
            .map_err(|e| format!("merge: {name}: decoding error: {e}"))?;
        merged.merge(rpt);
    }
    let mut json = Vec::new();
    report::encode(&merged, &mut json);
    json.push(b'\n');
    io::stdout()
        .lock()
        .write_all(&json)
        .map_err(|e| format!("writing to stdout: {e}"))
}
