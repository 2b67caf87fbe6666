//! Tests of [`Call`](super::Call), one file per state, plus whole responses fed at every split.
//! Unit tests of the chunk decoder, head parsing, errors and status texts sit in their modules.

mod garbage;
mod scenario;
mod splits;
mod state_done;
mod state_recv_body;
mod state_recv_head;
mod state_send_request;
