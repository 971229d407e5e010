//! The agent's QUIC endpoints: one UDP socket per address family, shared by every HTTP/3 run.
//!
//! An endpoint per run (a socket, its receive buffers and a driver task each) made memory follow the probe rate
//! times the connections' draining time, and churned a descriptor per probe. One endpoint carries any number of
//! connections (told apart by connection id), which is how QUIC is meant to be used.
//!
//! The endpoints and their connections are driven by a runtime of their own, on one thread: they are
//! process-wide, so they must not belong to whichever runtime happened to open them first (a test's runtime
//! ends with the test; the agent's may be rebuilt).

use quinn::{AsyncTimer, AsyncUdpSocket, Endpoint, EndpointConfig, Runtime, TokioRuntime};
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::runtime::Handle;

/// The endpoint for connections to `peer`'s address family, opened on first use. An error (no descriptor
/// left, no IPv6 on this host) is not kept: the next run tries again.
pub fn endpoint_for(peer: SocketAddr) -> io::Result<Endpoint> {
    static V4: Mutex<Option<Endpoint>> = Mutex::new(None);
    static V6: Mutex<Option<Endpoint>> = Mutex::new(None);
    let (slot, local): (_, SocketAddr) = match peer {
        SocketAddr::V4(_) => (&V4, (Ipv4Addr::UNSPECIFIED, 0).into()),
        SocketAddr::V6(_) => (&V6, (Ipv6Addr::UNSPECIFIED, 0).into()),
    };
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(endpoint) = slot.as_ref() {
        return Ok(endpoint.clone());
    }
    let runtime = Arc::new(QuicRuntime(quic_runtime()?));
    let socket = UdpSocket::bind(local)?;
    let endpoint = Endpoint::new(EndpointConfig::default(), None, socket, runtime)?;
    *slot = Some(endpoint.clone());
    Ok(endpoint)
}

/// The handle of the thread that drives the endpoints, started on first use.
fn quic_runtime() -> io::Result<Handle> {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("vantage-quic".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    // Two first callers at once: one thread stays idle forever, harmless.
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// quinn's tokio runtime, bound to the QUIC thread's runtime instead of the caller's.
#[derive(Debug)]
struct QuicRuntime(Handle);

impl Runtime for QuicRuntime {
    fn new_timer(&self, at: Instant) -> Pin<Box<dyn AsyncTimer>> {
        let _in = self.0.enter();
        TokioRuntime.new_timer(at)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.0.spawn(future);
    }

    fn wrap_udp_socket(&self, socket: UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let _in = self.0.enter();
        TokioRuntime.wrap_udp_socket(socket)
    }
}
