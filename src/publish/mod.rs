//! Publishing to Scope apps.
pub mod rpc;
pub mod ws;
