//! Plugin discovery and registry (filled in by the plugins layer).
