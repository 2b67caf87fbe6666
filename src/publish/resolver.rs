//! The resolver thread: name lookups for app targets (AP §1) off the event loop.
//!
//! Owns one helper thread that does nothing but blocking lookups through
//! [`std::net::ToSocketAddrs`], i.e. the C library's `getaddrinfo`. That is deliberate: it
//! honours `/etc/hosts`, `nsswitch.conf`, search domains and `ndots` from `resolv.conf`, mDNS
//! or LDAP modules, and whatever else the host is configured with, exactly as Scope's Go probe
//! (cgo resolver) and every other program on the host does. A hand-rolled DNS client on the
//! event loop would not, and a target such as `scope-app` would resolve differently from
//! `ping scope-app`. `getaddrinfo` blocks (for seconds when a DNS server is down), so it runs
//! here and never on the loop.
//!
//! Jobs go in over one `std::sync::mpsc` channel and answers come back over another; after
//! each answer the thread wakes the loop through a [`mio::Waker`] registered under the token
//! the loop chose, and the loop collects the answers with [`Resolver::drain`].
//!
//! Not here: when to resolve, and what to do with the answers ([`super::apps`] decides).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use super::apps::ResolveId;

/// One lookup job: the id [`super::apps::Apps::poll_resolve`] gave it, host and port.
type Job = (ResolveId, String, u16);

/// One lookup answer: every address, or the resolver's error text.
pub type Answer = (ResolveId, Result<Vec<SocketAddr>, String>);

/// Handle on the resolver thread. Dropping it ends the thread.
///
/// The thread ends once a lookup in progress returns (a blocking `getaddrinfo` cannot be
/// interrupted); dropping never waits for it, so shutdown is not held up by a slow DNS server.
pub struct Resolver {
    jobs: Sender<Job>,
    /// A clone of the thread's sender, so that a job the thread can no longer take still gets
    /// an answer (and the target that asked is not left waiting forever).
    answers_tx: Sender<Answer>,
    answers: Receiver<Answer>,
    waker: Arc<mio::Waker>,
    #[cfg(test)]
    thread: thread::JoinHandle<()>,
}

impl Resolver {
    /// Starts the resolver thread; its answers wake `registry`'s poll with `token`.
    ///
    /// Fails if the waker cannot be registered or the thread cannot be started.
    pub fn new(registry: &mio::Registry, token: mio::Token) -> io::Result<Resolver> {
        let waker = Arc::new(mio::Waker::new(registry, token)?);
        let (jobs, jobs_rx) = mpsc::channel::<Job>();
        let (answers_tx, answers) = mpsc::channel::<Answer>();
        let thread_answers = answers_tx.clone();
        let thread_waker = Arc::clone(&waker);
        let handle = thread::Builder::new()
            .name("resolver".to_owned())
            .spawn(move || run(jobs_rx, thread_answers, thread_waker))?;
        #[cfg(not(test))]
        drop(handle);
        Ok(Resolver {
            jobs,
            answers_tx,
            answers,
            waker,
            #[cfg(test)]
            thread: handle,
        })
    }

    /// Queues a lookup of `host` (a name or an IP literal) with `port`; the answer comes back
    /// through [`Resolver::drain`] after the waker fires.
    pub fn resolve(&self, id: ResolveId, host: String, port: u16) {
        if self.jobs.send((id, host, port)).is_err() {
            // The thread is gone (it only stops when it panicked): answer here so the caller
            // retries on its schedule instead of waiting for an answer that will never come.
            let _ = self
                .answers_tx
                .send((id, Err("resolver thread is not running".to_owned())));
            wake(&self.waker);
        }
    }

    /// Every answer that arrived since the last call, oldest first. Call it when the waker's
    /// token fires; a spurious call returns an empty list.
    pub fn drain(&self) -> Vec<Answer> {
        self.answers.try_iter().collect()
    }
}

fn run(jobs: Receiver<Job>, answers: Sender<Answer>, waker: Arc<mio::Waker>) {
    // `recv` fails once the `Resolver` (the only job sender) is dropped: that ends the thread.
    while let Ok((id, host, port)) = jobs.recv() {
        let answer = lookup(&host, port);
        if answers.send((id, answer)).is_err() {
            return;
        }
        wake(&waker);
    }
}

fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let mut addrs: Vec<SocketAddr> = addrs.collect();
            // getaddrinfo lists an address once per socket type unless told otherwise.
            addrs.sort();
            addrs.dedup();
            Ok(addrs)
        }
        Err(err) => Err(err.to_string()),
    }
}

fn wake(waker: &mio::Waker) {
    if let Err(err) = waker.wake() {
        // The answer stays queued; the loop picks it up at its next drain.
        log::warn!("publish: cannot wake the event loop after a lookup: {err}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use mio::{Events, Poll, Token};

    use super::*;

    const RESOLVER: Token = Token(7);

    /// Polls until `want` answers arrived, failing after `bound`.
    fn collect(poll: &mut Poll, resolver: &Resolver, want: usize, bound: Duration) -> Vec<Answer> {
        let deadline = Instant::now() + bound;
        let mut events = Events::with_capacity(8);
        let mut answers = Vec::new();
        while answers.len() < want {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("resolver answers within the bound");
            poll.poll(&mut events, Some(left)).expect("poll");
            for event in &events {
                assert_eq!(event.token(), RESOLVER);
                answers.extend(resolver.drain());
            }
        }
        answers.sort_by_key(|(id, _)| *id);
        answers
    }

    #[test]
    fn resolves_localhost_and_fails_an_invalid_name() {
        let mut poll = Poll::new().expect("poll");
        let resolver = Resolver::new(poll.registry(), RESOLVER).expect("resolver");
        resolver.resolve(ResolveId(1), "localhost".to_owned(), 4040);
        resolver.resolve(ResolveId(2), "nonexistent.invalid".to_owned(), 4040);
        let answers = collect(&mut poll, &resolver, 2, Duration::from_secs(30));

        let (id, localhost) = &answers[0];
        assert_eq!(*id, ResolveId(1));
        let addrs = localhost.as_ref().expect("localhost resolves");
        assert!(!addrs.is_empty());
        for addr in addrs {
            assert!(addr.ip().is_loopback(), "{addr}");
            assert_eq!(addr.port(), 4040);
        }

        let (id, invalid) = &answers[1];
        assert_eq!(*id, ResolveId(2));
        let err = invalid
            .as_ref()
            .expect_err(".invalid never resolves (RFC 6761)");
        assert!(!err.is_empty());
        assert!(resolver.drain().is_empty(), "nothing left after the drain");
    }

    #[test]
    fn ip_literals_come_back_as_they_are() {
        let mut poll = Poll::new().expect("poll");
        let resolver = Resolver::new(poll.registry(), RESOLVER).expect("resolver");
        resolver.resolve(ResolveId(1), "::1".to_owned(), 80);
        let answers = collect(&mut poll, &resolver, 1, Duration::from_secs(10));
        assert_eq!(answers[0].1, Ok(vec!["[::1]:80".parse().unwrap()]));
    }

    #[test]
    fn thread_ends_when_dropped() {
        let poll = Poll::new().expect("poll");
        let resolver = Resolver::new(poll.registry(), RESOLVER).expect("resolver");
        let thread = {
            // Moved into the block so that every other field drops at its end.
            let resolver = resolver;
            let Resolver { thread, .. } = resolver;
            thread
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !thread.is_finished() {
            assert!(Instant::now() < deadline, "resolver thread still running");
            thread::sleep(Duration::from_millis(5));
        }
        thread.join().expect("thread did not panic");
    }
}
