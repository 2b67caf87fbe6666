//! Scope's report model (filled in by the report layer).
