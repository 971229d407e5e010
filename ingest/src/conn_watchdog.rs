//! Deadlines for what actix-web leaves open on a kept-alive connection: the head of a second (or later) request
//! that arrives slowly or stops half-way (actix times only a connection's first head), and a client that never
//! reads its answers (the server's writes then wait forever). Either would hold a connection, and with it a
//! share of the connection cap, for as long as the client likes.
//!
//! Every connection is registered when accepted, with a duplicate of its socket; the request middleware marks
//! when a request starts and ends. Once a second a sweeper closes (shuts the socket down, which actix sees as
//! the client going away):
//! - a connection with no request in progress whose last request ended (or which opened) `head_timeout` ago:
//!   whatever it has sent since is not a request, and a healthy idle connection is closed by actix's keep-alive
//!   (5 s) long before;
//! - a connection whose answer has waited unsent, the client's receive window closed, for `write_timeout`
//!   (from the kernel's TCP_INFO: bytes not yet sent, and the time since data was last sent).
//!
//! Bodies have their own deadline (`http::events`), so a request in progress is left alone here.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often connections are looked at.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

type ReasonLabels = Vec<(&'static str, &'static str)>;

/// The registry of open connections and the deadlines applied to them.
pub struct Watchdog {
    head_timeout: Duration,
    write_timeout: Duration,
    epoch: Instant,
    conns: Mutex<HashMap<u64, Conn>>,
    next: AtomicU64,
    closed: Family<ReasonLabels, Counter>,
}

struct Conn {
    /// A duplicate of the connection's socket, closed when the connection's guard drops.
    fd: OwnedFd,
    state: Arc<ConnState>,
}

/// What the request middleware tells the sweeper about one connection.
#[derive(Debug)]
pub struct ConnState {
    epoch: Instant,
    in_flight: AtomicU32,
    /// When the last request ended (or the connection opened), ms since the watchdog's epoch.
    idle_since_ms: AtomicU64,
}

/// Held in the connection's data (actix drops it with the connection): unregisters it.
pub struct ConnGuard {
    watchdog: Weak<Watchdog>,
    id: u64,
    state: Arc<ConnState>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(w) = self.watchdog.upgrade() {
            w.conns.lock().unwrap().remove(&self.id);
        }
    }
}

impl ConnGuard {
    /// Marks a request in progress on this connection until the mark drops.
    pub fn request(&self) -> RequestMark {
        self.state.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestMark {
            state: self.state.clone(),
        }
    }
}

/// A request in progress on a connection; ends it when dropped.
pub struct RequestMark {
    state: Arc<ConnState>,
}

impl Drop for RequestMark {
    fn drop(&mut self) {
        let now = self.state.epoch.elapsed().as_millis() as u64;
        self.state.idle_since_ms.store(now, Ordering::Relaxed);
        self.state.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Watchdog {
    pub fn new(
        head_timeout: Duration,
        write_timeout: Duration,
        registry: &mut Registry,
    ) -> Arc<Self> {
        let closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "vantage_ingest_connections_closed",
            "Connections closed for holding the server: head_timeout (no complete request in time on a kept-alive \
             connection), write_stalled (the client stopped reading its answers)",
            closed.clone(),
        );
        for reason in ["head_timeout", "write_stalled"] {
            let _ = closed.get_or_create(&vec![("reason", reason)]);
        }
        Arc::new(Watchdog {
            head_timeout,
            write_timeout,
            epoch: Instant::now(),
            conns: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            closed,
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Registers a new connection's socket; `None` when it cannot be duplicated (then it is not watched).
    pub fn register(self: &Arc<Self>, socket: RawFd) -> Option<ConnGuard> {
        // SAFETY: `dup` on a descriptor actix owns and keeps open for this call; the new one is ours.
        let dup = unsafe { libc::fcntl(socket, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return None;
        }
        // SAFETY: `dup` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(dup) };
        let state = Arc::new(ConnState {
            epoch: self.epoch,
            in_flight: AtomicU32::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
        });
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().unwrap().insert(
            id,
            Conn {
                fd,
                state: state.clone(),
            },
        );
        Some(ConnGuard {
            watchdog: Arc::downgrade(self),
            id,
            state,
        })
    }

    /// Closes the connections past a deadline; returns how many.
    pub fn sweep(&self) -> usize {
        let now = self.now_ms();
        let head_ms = self.head_timeout.as_millis() as u64;
        let write_ms = self.write_timeout.as_millis() as u64;
        let mut closed = 0;
        let conns = self.conns.lock().unwrap();
        for conn in conns.values() {
            let fd = conn.fd.as_raw_fd();
            let Some(info) = tcp_info(fd) else { continue };
            let reason = if info.tcpi_notsent_bytes > 0
                && u64::from(info.tcpi_last_data_sent) >= write_ms
            {
                Some("write_stalled")
            } else if conn.state.in_flight.load(Ordering::Relaxed) == 0
                && now.saturating_sub(conn.state.idle_since_ms.load(Ordering::Relaxed)) >= head_ms
                && info.tcpi_notsent_bytes == 0
            {
                Some("head_timeout")
            } else {
                None
            };
            if let Some(reason) = reason {
                // SAFETY: shutting down a socket we hold a descriptor of; actix then sees the connection end.
                unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
                self.closed.get_or_create(&vec![("reason", reason)]).inc();
                tracing::debug!(reason, "connection closed by its deadline");
                closed += 1;
            }
        }
        closed
    }

    /// Connections being watched.
    pub fn len(&self) -> usize {
        self.conns.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sweeps once a second until the watchdog is gone.
    pub async fn run(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        drop(self);
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(w) = weak.upgrade() else { return };
            w.sweep();
        }
    }
}

fn tcp_info(fd: RawFd) -> Option<libc::tcp_info> {
    // SAFETY: `info` is a plain C struct the kernel fills up to `len` bytes; zeroed is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid descriptor, a buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(info)
}
