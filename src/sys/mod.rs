//! File descriptors the event loop needs (filled in by the sys layer).
#![allow(unsafe_code)]
