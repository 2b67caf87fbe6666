//! Plugins: finding them on disk and keeping track of them (spec `report-format.md` §7).
//!
//! - [`id`]: the plugin ID rule (§7.2): the socket's base name minus its last extension,
//!   validated against `^[A-Za-z0-9]+([-][A-Za-z0-9]+)*$`, plus Go's `%q` quoting for messages.
//! - [`scan`]: discovery (§7.1): a recursive walk of the plugins root for unix sockets, and the
//!   snapshot diff that turns a rescan into "added" and "removed" sockets.
//! - [`registry`]: the set of loaded plugins (the registry's map is the scan snapshot: it
//!   diffs each rescan against itself), their state between scans, and turning each poll
//!   outcome into a validated report with Scope's statuses (§7.3–§7.6).
//!
//! Out of scope: sockets, fds and clocks. Discovery reads directories with `std::fs` on the
//! loop (cheap for a local directory); inotify and the timer that trigger rescans live in
//! [`crate::sys`] and the loop. inotify is only a hint: the scan diff is the truth (STYLE §8).

pub mod id;
pub mod registry;
pub mod scan;
