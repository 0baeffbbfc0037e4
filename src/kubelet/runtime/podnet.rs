//! What a pod's network reaches, for the simulated processes that open sockets (agnhost's
//! clients, `wget` and `nc` in a shell). Pods' IPs are addresses in 127.0.0.0/8, so:
//!
//! - the pod's own loopback (`127.0.0.1`, `::1`) and the unspecified address (`0.0.0.0`,
//!   `::`, which Linux takes as the local host) are the pod's IP, as inside its network
//!   namespace;
//! - an address of a Service (its ClusterIP and port) goes where the node's Service rules send
//!   it ([`Netfilter`], programmed by kube-proxy): to one of its endpoints, or refused when it
//!   has none, or dropped;
//! - other addresses in 127.0.0.0/8 (the simulation's pods and nodes) are reached for real,
//!   from the pod's IP, so the peer sees the pod's address;
//! - anything else (the world outside the simulation) is unroutable: no packet leaves the
//!   machine, a connection gets no answer and fails as Linux's does once its SYN retries are
//!   spent ([`SYN_TIMEOUT`], `ETIMEDOUT`), and datagrams vanish.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

use super::sh;
use crate::clock::Clock;
use crate::netfilter::{Netfilter, Protocol, Verdict};

/// How long Linux tries to connect before `ETIMEDOUT` (`tcp_syn_retries` = 6: 1 + 2 + ... + 64
/// seconds).
pub(super) const SYN_TIMEOUT: Duration = Duration::from_secs(127);

/// A pod's place in the network: its IP, and the node it is on (the node's Service rules and
/// the cluster clock they keep time by).
#[derive(Clone)]
pub(super) struct PodNet {
    /// The pod's IP.
    pub(super) ip: IpAddr,
    pub(super) clock: Clock,
    pub(super) netfilter: Arc<Netfilter>,
}

/// Where a pod's packets to an address go.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// To this real address.
    To(SocketAddr),
    /// Refused by the node (a Service without endpoints: `ECONNREFUSED`).
    Refused,
    /// Nowhere: no answer ever comes.
    Unroutable,
}

impl PodNet {
    /// Where a new `protocol` connection from the pod to `to` goes.
    pub(super) fn route(&self, to: SocketAddr, protocol: Protocol) -> Route {
        let to = crate::netfilter::canonical(to);
        let ip = to.ip();
        let own_loopback = ip == IpAddr::V4(Ipv4Addr::LOCALHOST)
            || ip == IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            || ip.is_unspecified();
        let target = if own_loopback {
            // The pod's own network namespace: no Service rules there.
            SocketAddr::new(self.ip, to.port())
        } else {
            match self
                .netfilter
                .translate(protocol, self.ip, to, self.clock.now())
            {
                Verdict::Pass => to,
                Verdict::Dnat(endpoint) => endpoint,
                Verdict::Reject => return Route::Refused,
                Verdict::Drop => return Route::Unroutable,
            }
        };
        // Only the machine's loopback is the simulation's: nothing leaves it.
        if target.ip().is_loopback() {
            Route::To(target)
        } else {
            Route::Unroutable
        }
    }
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
    net: &PodNet,
    to: SocketAddr,
    local_port: u16,
) -> std::io::Result<TcpStream> {
    let real = match net.route(to, Protocol::Tcp) {
        Route::To(real) => real,
        Route::Refused => return Err(std::io::ErrorKind::ConnectionRefused.into()),
        Route::Unroutable => {
            net.clock.sleep(SYN_TIMEOUT).await;
            return Err(timed_out());
        }
    };
    let own = net.ip;
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
    net: PodNet,
    /// Connected to an unroutable peer: what is sent vanishes, nothing comes back.
    black_hole: AtomicBool,
}

impl PodUdp {
    /// A socket on the pod's IP (`port`, any when 0).
    pub(super) async fn bind(net: &PodNet, port: u16) -> std::io::Result<PodUdp> {
        Ok(PodUdp {
            socket: UdpSocket::bind(SocketAddr::new(net.ip, port)).await?,
            net: net.clone(),
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
        match self.net.route(peer, Protocol::Udp) {
            Route::To(real) => {
                self.black_hole.store(false, Ordering::Relaxed);
                self.socket.connect(real).await
            }
            // The ICMP error a rejected datagram brings back is not modelled: it vanishes.
            Route::Refused | Route::Unroutable => {
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

    fn net(ip: &str) -> PodNet {
        PodNet {
            ip: ip.parse().unwrap(),
            clock: Clock::real(),
            netfilter: Netfilter::new(),
        }
    }

    fn route(net: &PodNet, to: &str) -> Option<String> {
        match net.route(to.parse().unwrap(), Protocol::Tcp) {
            Route::To(a) => Some(a.to_string()),
            Route::Refused => Some("refused".into()),
            Route::Unroutable => None,
        }
    }

    #[test]
    fn the_pod_s_loopback_is_its_ip_and_other_networks_are_unroutable() {
        let own = net("127.42.7.5");
        let r = |to: &str| route(&own, to);
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
        assert_eq!(route(&net("10.0.0.5"), "127.0.0.1:80"), None);
    }

    #[test]
    fn service_addresses_go_where_the_node_s_rules_send_them() {
        use crate::netfilter::{NoEndpoints, Ruleset, ServiceRule};
        let own = net("127.42.7.5");
        let rule = |frontend: &str, endpoints: &[&str]| ServiceRule {
            name: format!("ns/{frontend}:"),
            protocol: Protocol::Tcp,
            frontends: vec![frontend.parse().unwrap()],
            endpoints: endpoints.iter().map(|e| e.parse().unwrap()).collect(),
            no_endpoints: NoEndpoints::Reject,
            affinity_seconds: None,
        };
        own.netfilter.program(Ruleset {
            rules: vec![
                rule("10.96.0.10:80", &["127.42.8.1:8080"]),
                rule("10.96.0.11:80", &[]),
                // A rule for the loopback address does not reach into the pod's namespace.
                rule("127.0.0.1:80", &["127.42.8.1:8080"]),
            ],
        });
        assert_eq!(
            route(&own, "10.96.0.10:80").as_deref(),
            Some("127.42.8.1:8080")
        );
        assert_eq!(route(&own, "10.96.0.11:80").as_deref(), Some("refused"));
        assert_eq!(route(&own, "10.96.0.10:81"), None);
        assert_eq!(
            route(&own, "127.0.0.1:80").as_deref(),
            Some("127.42.7.5:80")
        );
    }
}
