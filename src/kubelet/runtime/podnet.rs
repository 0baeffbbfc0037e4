//! What a pod's network reaches, for the simulated processes that open sockets (agnhost's
//! clients, `wget` and `nc` in a shell). Pods' IPs are addresses in 127.0.0.0/8, so:
//!
//! - the pod's own loopback (`127.0.0.1`, `::1`) and the unspecified address (`0.0.0.0`,
//!   `::`, which Linux takes as the local host) are the pod's IP, as inside its network
//!   namespace;
//! - an address of a Service (its ClusterIP and port) goes where the node's Service rules send
//!   it ([`Netfilter`], programmed by kube-proxy): to one of its endpoints, or refused when it
//!   has none, or dropped;
//! - an address in another node's pod range, when the node has a route to it (the overlay
//!   network, `crate::kubelet::overlay`, for nodes that do not share a loopback), is reached
//!   through that node's kubelet: TCP through a tunnel that the far end delivers from the pod's
//!   IP; UDP is not carried and its datagrams vanish;
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
    /// To `to`, another node's pod's address, through the tunnel of that node at `via` (TCP
    /// only).
    Tunnel {
        /// The far end of the tunnel (that node's kubelet).
        via: SocketAddr,
        /// The address the far end connects to.
        to: SocketAddr,
    },
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
        if !target.ip().is_loopback() {
            return Route::Unroutable;
        }
        match self.netfilter.pod_route(target.ip()) {
            None => Route::To(target),
            Some((route, _)) if protocol == Protocol::Tcp => Route::Tunnel {
                via: route.via,
                to: target,
            },
            // The overlay carries TCP only.
            Some(_) => Route::Unroutable,
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
        Route::Tunnel { via, to } => return tunnel(net, via, to, local_port).await,
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

/// Connect from the pod to another node's pod at `to` through that node's tunnel at `via`:
/// refused when the far end's pod refuses; a tunnel that does not open fails as an unroutable
/// connection does, after [`SYN_TIMEOUT`] of cluster time.
async fn tunnel(
    net: &PodNet,
    via: SocketAddr,
    to: SocketAddr,
    local_port: u16,
) -> std::io::Result<TcpStream> {
    use crate::kubelet::overlay::{dial, DialError};
    let token = net.netfilter.routes().token;
    let attempt = async {
        match dial(
            via,
            token.as_deref(),
            SocketAddr::new(net.ip, local_port),
            to,
        )
        .await
        {
            Ok(stream) => Ok(stream),
            Err(DialError::Refused) => Err(std::io::ErrorKind::ConnectionRefused.into()),
            Err(DialError::Lost(why)) => {
                tracing::debug!(%via, %to, %why, "the tunnel did not open; the connection is lost");
                std::future::pending().await
            }
        }
    };
    match net.clock.timeout(SYN_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(timed_out()),
    }
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
            Route::Refused | Route::Unroutable | Route::Tunnel { .. } => {
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
            Route::Tunnel { via, to } => Some(format!("{to} via {via}")),
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

    /// A node whose overlay routes node-b's pods (127.20.0.0/16) through 127.0.0.1:10250, and
    /// node-c's (127.30.0.0/16) through 127.0.0.1:10251, with a narrower range inside it.
    fn on_overlay(ip: &str) -> PodNet {
        use crate::netfilter::{Cidr, PodRoute, PodRoutes};
        let own = net(ip);
        let route = |node: &str, pods: &str, via: &str| PodRoute {
            node: node.into(),
            pods: pods.parse::<Cidr>().unwrap(),
            via: via.parse().unwrap(),
        };
        own.netfilter.set_routes(PodRoutes {
            routes: vec![
                route("node-b", "127.20.0.0/16", "127.0.0.1:10250"),
                route("node-c", "127.30.0.0/16", "127.0.0.1:10251"),
                route("node-d", "127.30.9.0/24", "127.0.0.1:10252"),
            ],
            token: Some("t".into()),
        });
        own
    }

    #[test]
    fn another_node_s_pods_are_reached_through_its_tunnel_and_the_rest_as_before() {
        let own = on_overlay("127.10.0.5");
        let r = |to: &str| route(&own, to);
        assert_eq!(
            r("127.20.3.4:8080").as_deref(),
            Some("127.20.3.4:8080 via 127.0.0.1:10250")
        );
        assert_eq!(
            r("[::ffff:127.30.1.1]:80").as_deref(),
            Some("127.30.1.1:80 via 127.0.0.1:10251")
        );
        // The longest matching range wins.
        assert_eq!(
            r("127.30.9.2:80").as_deref(),
            Some("127.30.9.2:80 via 127.0.0.1:10252")
        );
        // The pod's own loopback, its node's pods, and addresses of no node's pods go as before.
        assert_eq!(r("127.0.0.1:80").as_deref(), Some("127.10.0.5:80"));
        assert_eq!(r("127.10.0.9:80").as_deref(), Some("127.10.0.9:80"));
        assert_eq!(r("127.40.0.1:80").as_deref(), Some("127.40.0.1:80"));
        assert_eq!(r("8.8.8.8:53"), None);
        // UDP is not carried: datagrams to another node's pods go nowhere.
        assert_eq!(
            own.route("127.20.3.4:53".parse().unwrap(), Protocol::Udp),
            Route::Unroutable
        );
        assert_eq!(
            own.route("127.10.0.9:53".parse().unwrap(), Protocol::Udp),
            Route::To("127.10.0.9:53".parse().unwrap())
        );
    }

    #[test]
    fn a_service_s_endpoint_on_another_node_is_reached_through_its_tunnel_after_dnat() {
        use crate::netfilter::{NoEndpoints, Ruleset, ServiceRule};
        let own = on_overlay("127.10.0.5");
        own.netfilter.program(Ruleset {
            rules: vec![ServiceRule {
                name: "ns/web:".into(),
                protocol: Protocol::Tcp,
                frontends: vec!["10.96.0.10:80".parse().unwrap()],
                endpoints: vec!["127.20.0.7:8080".parse().unwrap()],
                no_endpoints: NoEndpoints::Reject,
                affinity_seconds: None,
            }],
        });
        assert_eq!(
            route(&own, "10.96.0.10:80").as_deref(),
            Some("127.20.0.7:8080 via 127.0.0.1:10250")
        );
        // kube-proxy's rules replaced as a whole leave the routes alone.
        own.netfilter.program(Ruleset::default());
        assert_eq!(
            route(&own, "127.20.0.7:8080").as_deref(),
            Some("127.20.0.7:8080 via 127.0.0.1:10250")
        );
    }

    /// A stand-in for the far end's kubelet that reads one request head, answers `answer`, and
    /// returns the head it read.
    async fn far_end(answer: &'static str) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            s.write_all(answer.as_bytes()).await.unwrap();
            if answer.contains(" 101 ") {
                // Echo what the tunnel carries.
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
            }
            String::from_utf8_lossy(&head).into_owned()
        });
        (addr, task)
    }

    fn via(net: &PodNet, far: SocketAddr) {
        use crate::netfilter::{PodRoute, PodRoutes};
        net.netfilter.set_routes(PodRoutes {
            routes: vec![PodRoute {
                node: "node-b".into(),
                pods: "127.20.0.0/16".parse().unwrap(),
                via: far,
            }],
            token: Some("secret".into()),
        });
    }

    #[tokio::test]
    async fn a_tunnel_that_opens_carries_the_connection_and_a_refusal_is_econnrefused() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let own = net("127.10.0.5");
        let (far, head) = far_end(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: kubespec-tunnel\r\n\r\n",
        )
        .await;
        via(&own, far);
        let mut stream = connect_tcp(&own, "127.20.0.7:8080".parse().unwrap(), 0)
            .await
            .expect("the tunnel opens");
        stream.write_all(b"hello").await.unwrap();
        let mut echoed = [0u8; 5];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"hello");
        let head = head.await.unwrap();
        assert!(
            head.starts_with(
                "GET /kubespec/tunnel?to=127.20.0.7%3A8080&from=127.10.0.5%3A0 HTTP/1.1\r\n"
            ),
            "{head}"
        );
        for line in [
            "Connection: Upgrade",
            "Upgrade: kubespec-tunnel",
            "Authorization: Bearer secret",
        ] {
            assert!(head.contains(&format!("{line}\r\n")), "{line} in {head}");
        }

        let (far, _) = far_end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n").await;
        via(&own, far);
        let refused = connect_tcp(&own, "127.20.0.7:8081".parse().unwrap(), 0).await;
        assert_eq!(
            refused.map(|_| ()).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionRefused)
        );
    }

    #[tokio::test]
    async fn a_tunnel_that_does_not_open_times_out_as_an_unroutable_connection() {
        // At 1000x, the SYN retries' 127 s are 127 ms.
        let mut own = net("127.10.0.5");
        own.clock = Clock::new(1000.0);
        let (far, _) = far_end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").await;
        via(&own, far);
        let started = std::time::Instant::now();
        let lost = connect_tcp(&own, "127.20.0.7:8080".parse().unwrap(), 0).await;
        let took = started.elapsed();
        assert_eq!(
            lost.map(|_| ()).map_err(|e| e.raw_os_error()),
            Err(Some(110))
        );
        assert!(
            took >= Duration::from_millis(120),
            "failed after {took:?}, before the SYN retries were spent"
        );
        // Nothing listening where the tunnel should be: lost as well.
        let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = gone.local_addr().unwrap();
        drop(gone);
        via(&own, addr);
        let lost = connect_tcp(&own, "127.20.0.7:8080".parse().unwrap(), 0).await;
        assert_eq!(
            lost.map(|_| ()).map_err(|e| e.raw_os_error()),
            Err(Some(110))
        );
    }
}
