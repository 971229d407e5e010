//! A local address that never answers a TCP connect, without leaving the machine: a listener whose accept
//! queue is full, so the kernel drops new SYNs and connects hang (as to a blackholed route) until they time out.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Holds the listener and the connections that fill its queue; connects to `addr` hang while it lives.
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    /// A blackhole on `addr` (port 0 for any); `None` if that address cannot be bound (port taken, no IPv6).
    pub async fn bind(addr: SocketAddr) -> Option<Blackhole> {
        let socket = if addr.is_ipv6() {
            TcpSocket::new_v6()
        } else {
            TcpSocket::new_v4()
        }
        .ok()?;
        socket.bind(addr).ok()?;
        // Backlog 0: the queue holds one connection that is never accepted; after it, SYNs are dropped.
        let listener = socket.listen(0).ok()?;
        let addr = listener.local_addr().ok()?;
        let mut fillers = Vec::new();
        // Fill the queue until a connect hangs: that hang is the readiness signal.
        for _ in 0..8 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => fillers.push(s),
                Ok(Err(_)) => return None,
                Err(_) => {
                    return Some(Blackhole {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    })
                }
            }
        }
        None
    }
}
