//! The `scope-probe` binary: parse the command line (`spec/cli.md`), build the probe, run it.
//! Everything else lives in the library.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::SystemTime;

use scope_probe::cli::{self, Command, Options};
use scope_probe::probe::{Config, Probe};
use scope_probe::report::{self, DecodeArena, Report, Time};

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

fn start(options: &Options) -> Result<Probe, String> {
    init_logging(options);
    let config = Config::from_options(options.clone())?;
    Probe::new(config).map_err(|e| format!("cannot start: {e}"))
}

fn run(options: &Options) -> Result<(), String> {
    let mut probe = start(options)?;
    probe.run().map_err(|e| format!("event loop failed: {e}"))
}

fn once(options: &Options) -> Result<(), String> {
    let mut probe = start(options)?;
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
    let arena = DecodeArena::new();
    let mut merged = Report::make();
    for (file, body) in files.iter().zip(&bodies) {
        let name = if file == "-" { "<stdin>" } else { file };
        let rpt = report::decode_plugin_report_in(body, now, &arena)
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
