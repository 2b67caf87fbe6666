//! scope-probe: a Weave Scope probe that hosts Scope plugins in one small single-threaded
//! event loop.
//!
//! The crate is layered the way the protocol is (see `README.md` for the user's view):
//!
//! - [`report`]: Scope's report model, decoded without copying strings, merged with Scope's
//!   exact rules and encoded back (spec `report-format.md` §1–§6). No I/O.
//! - [`http`]: a sans-IO HTTP/1.1 client: bytes in, bytes out, progress and errors. No I/O.
//! - [`plugins`]: plugin discovery (scan, IDs), the registry of plugins, validation of their
//!   answers (§7). No sockets of its own.
//! - [`sys`]: the only module that touches file descriptors directly (timerfd, inotify,
//!   interface addresses, uname) or the CPU (a cache prefetch hint). The only module allowed
//!   `unsafe`.
//! - [`host`]: the probe's own Host node, read from `/proc` and the kernel.
//! - [`probe`]: the event loop that ties it all together.
//! - [`publish`]: Scope apps: discovery, publishing with backoff, the control websocket and
//!   its net/rpc framing (`app-protocol.md`). Sans-IO, plus one resolver thread.
//! - [`serve`]: the local `--http-listen` endpoints (`/api/report`, `/api/plugins`,
//!   `/metrics`), sans-IO.
//! - [`cli`]: the command-line contract (`spec/cli.md`).
//!
//! Everything that is not in `sys` is `unsafe`-free; protocol code takes `now` as a parameter
//! and reports its next deadline instead of reading clocks or sleeping.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod host;
pub mod http;
pub mod plugins;
pub mod probe;
pub mod publish;
pub mod report;
pub mod serve;
pub mod sys;
