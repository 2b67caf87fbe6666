//! Publishing reports to Scope apps and serving their controls (spec `app-protocol.md`).
//!
//! Owns everything between a finished report and the apps that store it:
//!
//! - [`apps`]: the state of every app target (AP §1–§3, §5): which names to resolve and
//!   when, which addresses reach which app (learned from `GET /api`), which report goes where
//!   (`POST /api/report`, once per app), and the backoff of addresses that fail. Sans-IO: it
//!   hands out [`apps::AppRequest`]s and resolve jobs, takes their outcomes and `now`, and
//!   says when it next needs the clock.
//! - [`resolver`]: the one helper thread of the probe, doing nothing but blocking
//!   `getaddrinfo` lookups for [`apps`] and waking the event loop when an answer is ready.
//! - [`gzip`]: the `Content-Encoding: gzip` of published reports.
//! - [`ws`]: RFC 6455 client framing for the control websocket (AP §4).
//! - [`rpc`]: Go's net/rpc JSON codec over that websocket, and the control request and
//!   response bodies exchanged with plugins (RF §7.7–§7.8).
//!
//! Not here: sockets, HTTP framing and request deadlines (the `http` layer and the event loop
//! do those and report each request's outcome back), building reports (`report`), and the
//! publish cadence (the loop calls [`apps::Apps::publish`] every publish interval).

pub mod apps;
pub mod gzip;
pub mod resolver;
pub mod rpc;
pub mod ws;
