//! Publishing to Scope apps.
pub mod ws;
