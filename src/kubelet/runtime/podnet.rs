//! What a pod's network reaches, for the simulated processes that open sockets (agnhost's
//! clients, `wget` and `nc` in a shell). Pods' IPs are addresses in 127.0.0.0/8, so:
//!
//! - the pod's own loopback (`127.0.0.1`, `::1`) and the unspecified address (`0.0.0.0`,
//!   `::`, which Linux takes as the local host) are the pod's IP, as inside its network
//!   namespace;
//! - other addresses in 127.0.0.0/8 (the simulation's pods and nodes) are reached for real,
//!   from the pod's IP, so the peer sees the pod's address;
//! - anything else (a Service's ClusterIP: there is no kube-proxy yet; the world outside the
//!   simulation) is unroutable: no packet leaves the machine, a connection gets no answer and
//!   fails as Linux's does once its SYN retries are spent ([`SYN_TIMEOUT`], `ETIMEDOUT`), and
//!   datagrams vanish.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

use super::sh;
use crate::clock::Clock;

/// How long Linux tries to connect before `ETIMEDOUT` (`tcp_syn_retries` = 6: 1 + 2 + ... + 64
/// seconds).
pub(super) const SYN_TIMEOUT: Duration = Duration::from_secs(127);

/// Where a packet from the pod with IP `own` to `to` really goes; None when unroutable.
pub(super) fn route(own: IpAddr, to: SocketAddr) -> Option<SocketAddr> {
    let ip = match to.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let own_loopback = ip == IpAddr::V4(Ipv4Addr::LOCALHOST)
        || ip == IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        || ip.is_unspecified();
    let target = if own_loopback { own } else { ip };
    // Only the machine's loopback is the simulation's: nothing leaves it.
    target
        .is_loopback()
        .then(|| SocketAddr::new(target, to.port()))
}

/// The local address a pod's socket to `to` binds: the pod's IP (and `port`) when both are of
/// one family and the pod's IP is the machine's (in 127.0.0.0/8).
fn local_for(own: IpAddr, to: &SocketAddr, port: u16) -> Option<SocketAddr> {
    (own.is_loopback() && own.is_ipv4() == to.is_ipv4()).then(|| SocketAddr::new(own, port))
}

/// `ETIMEDOUT`.
fn timed_out() -> std::io::Error {
    std::io::Error::from_raw_os_error(110)
}

/// Connect from the pod to `to` (from `local_port`, any when 0); an unroutable peer fails
/// after [`SYN_TIMEOUT`] of cluster time.
pub(super) async fn connect_tcp(
    clock: &Clock,
    own: IpAddr,
    to: SocketAddr,
    local_port: u16,
) -> std::io::Result<TcpStream> {
    let Some(real) = route(own, to) else {
        clock.sleep(SYN_TIMEOUT).await;
        return Err(timed_out());
    };
    let socket = if real.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(local) = local_for(own, &real, local_port) {
        if local_port != 0 {
            socket.set_reuseaddr(true)?;
        }
        socket.bind(local)?;
    }
    socket.connect(real).await
}

/// A UDP socket of a pod.
pub(super) struct PodUdp {
    socket: UdpSocket,
    own: IpAddr,
    /// Connected to an unroutable peer: what is sent vanishes, nothing comes back.
    black_hole: AtomicBool,
}

impl PodUdp {
    /// A socket on the pod's IP (`port`, any when 0).
    pub(super) async fn bind(own: IpAddr, port: u16) -> std::io::Result<PodUdp> {
        Ok(PodUdp {
            socket: UdpSocket::bind(SocketAddr::new(own, port)).await?,
            own,
            black_hole: AtomicBool::new(false),
        })
    }
}

#[async_trait::async_trait]
impl sh::Datagram for PodUdp {
    async fn send(&self, data: &[u8]) -> std::io::Result<usize> {
        if self.black_hole.load(Ordering::Relaxed) {
            return Ok(data.len());
        }
        self.socket.send(data).await
    }
    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.black_hole.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
        self.socket.recv(buf).await
    }
    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf).await
    }
    async fn connect(&self, peer: SocketAddr) -> std::io::Result<()> {
        match route(self.own, peer) {
            Some(real) => {
                self.black_hole.store(false, Ordering::Relaxed);
                self.socket.connect(real).await
            }
            None => {
                self.black_hole.store(true, Ordering::Relaxed);
                Ok(())
            }
        }
    }
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// A listening TCP socket on a pod's IP.
pub(super) struct PodListener(pub(super) TcpListener);

#[async_trait::async_trait]
impl sh::Listener for PodListener {
    async fn accept(&self) -> std::io::Result<(Box<dyn sh::NetStream>, SocketAddr, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        let local = stream.local_addr()?;
        Ok((Box::new(stream), local, peer))
    }
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_s_loopback_is_its_ip_and_other_networks_are_unroutable() {
        let own: IpAddr = "127.42.7.5".parse().unwrap();
        let r = |to: &str| route(own, to.parse().unwrap()).map(|a| a.to_string());
        assert_eq!(r("127.0.0.1:80").as_deref(), Some("127.42.7.5:80"));
        assert_eq!(r("[::1]:80").as_deref(), Some("127.42.7.5:80"));
        assert_eq!(r("0.0.0.0:80").as_deref(), Some("127.42.7.5:80"));
        assert_eq!(r("127.42.7.9:8080").as_deref(), Some("127.42.7.9:8080"));
        assert_eq!(
            r("[::ffff:127.42.7.9]:81").as_deref(),
            Some("127.42.7.9:81")
        );
        assert_eq!(r("10.96.0.1:443"), None);
        assert_eq!(r("8.8.8.8:53"), None);
        assert_eq!(r("[2001:db8::1]:80"), None);
        // A pod whose IP is not the machine's reaches nothing, not even itself.
        assert_eq!(
            route("10.0.0.5".parse().unwrap(), "127.0.0.1:80".parse().unwrap()),
            None
        );
    }
}
