//! A sans-IO HTTP/1.1 client (filled in by the http layer).
