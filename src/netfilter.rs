//! A node's Service rules: what kube-proxy programs into a real node's kernel (iptables'
//! `KUBE-SERVICES` chains) and what every new connection from the node's pods passes through.
//!
//! kube-proxy ([`crate::proxy`]) computes a [`Ruleset`] from Services and EndpointSlices and
//! replaces the node's rules with it as a whole, as `iptables-restore` does; the node's
//! simulated runtime asks [`Netfilter::translate`] where a connection to an address really
//! goes. Like the kernel, this is the node's and outlives its kubelet: a restarted kubelet's pods
//! find the rules kube-proxy left.
//!
//! The rules decide as upstream's iptables mode does:
//! - a connection to a Service's address (ClusterIP, external IP, a node IP's NodePort) is
//!   sent to one of its endpoints chosen at random (`-m statistic --mode random`);
//! - with `sessionAffinity: ClientIP` a client keeps its endpoint while it comes back within the
//!   timeout (`-m recent --rcheck --seconds N`, refreshed by each new connection);
//! - a Service port with no endpoints at all rejects (`REJECT`: the client sees `Connection
//!   refused`); one whose traffic policy is `Local` with endpoints only on other nodes drops
//!   (`DROP`: the client waits and times out);
//! - any other address is not a Service's and passes untouched.
//!
//! Beside the Service rules the node has routes to other nodes' pods ([`PodRoutes`]), which an
//! overlay network programs (upstream's flannel adds one route per other node, read from the
//! Nodes); kube-proxy's [`Netfilter::program`] leaves them alone.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The path on a kubelet's server where its node's rules are read (GET) and replaced as a whole
/// (PUT, a JSON [`Ruleset`]): how a kube-proxy in another process reaches the kernel of a node
/// the kubelet simulates.
pub const KUBELET_PATH: &str = "/kubespec/netfilter";

/// A transport protocol, as a Service port names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    /// `TCP`.
    #[serde(rename = "TCP")]
    Tcp,
    /// `UDP`.
    #[serde(rename = "UDP")]
    Udp,
    /// `SCTP`.
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    /// A Service port's `protocol` (TCP when unset); `None` for one this does not know.
    pub fn parse(protocol: Option<&str>) -> Option<Self> {
        match protocol.unwrap_or("TCP") {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }
}

/// What happens to a connection to a Service port without endpoints to send it to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoEndpoints {
    /// Refused (`REJECT`, the Service has no endpoints).
    Reject,
    /// Dropped (`DROP`, its traffic policy is `Local` and none is on this node).
    Drop,
}

/// The rule of one Service port for one kind of address leading to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRule {
    /// `namespace/name:port-name` (kube-proxy's `ServicePortName`), for messages.
    pub name: String,
    /// The protocol.
    pub protocol: Protocol,
    /// The addresses that lead to it (ClusterIPs and external IPs with the Service port, node
    /// IPs with the NodePort).
    pub frontends: Vec<SocketAddr>,
    /// Where connections go: the chosen endpoints' addresses with their ports.
    pub endpoints: Vec<SocketAddr>,
    /// What happens when `endpoints` is empty.
    pub no_endpoints: NoEndpoints,
    /// `sessionAffinity: ClientIP`'s timeout, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_seconds: Option<u32>,
}

/// All of a node's Service rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruleset {
    /// The rules, in no particular order; no two share a frontend and protocol.
    pub rules: Vec<ServiceRule>,
}

/// Where a new connection goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a Service's address: it goes where it is addressed.
    Pass,
    /// To this endpoint.
    Dnat(SocketAddr),
    /// Refused at once (`ECONNREFUSED`).
    Reject,
    /// Dropped: no answer ever comes.
    Drop,
}

#[derive(Default)]
struct State {
    ruleset: Ruleset,
    /// By (protocol, frontend): the index of its rule.
    index: HashMap<(Protocol, SocketAddr), usize>,
    /// Affinity: by (rule name, client IP), the endpoint last given and when.
    sessions: HashMap<(String, IpAddr), (SocketAddr, DateTime<Utc>)>,
}

/// One node's Service rules, and its routes to other nodes' pods.
#[derive(Default)]
pub struct Netfilter {
    state: Mutex<State>,
    routes: Mutex<PodRoutes>,
}

/// An IPv4 address range (`127.42.0.0/16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The first address (host bits are cleared).
    pub addr: Ipv4Addr,
    /// The prefix length (0 to 32).
    pub prefix: u8,
}

impl Cidr {
    /// The range of `prefix` leading bits of `addr` (`None` for a prefix over 32).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Self {
            addr: Ipv4Addr::from(u32::from(addr) & Self::mask(prefix)),
            prefix,
        })
    }

    fn mask(prefix: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address is its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => return false,
            },
        };
        u32::from(v4) & Self::mask(self.prefix) == u32::from(self.addr)
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let prefix = self.prefix.min(other.prefix);
        u32::from(self.addr) & Self::mask(prefix) == u32::from(other.addr) & Self::mask(prefix)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    /// `a.b.c.d/n`; the address must have no host bits set, as `net.ParseCIDR`'s network is
    /// written.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|_| !prefix.starts_with('+'))
            .ok_or_else(bad)?;
        let cidr = Self::new(addr, prefix).ok_or_else(bad)?;
        if cidr.addr != addr {
            return Err(bad());
        }
        Ok(cidr)
    }
}

/// A route to another node's pods: connections to addresses in `pods` are carried to that
/// node (its kubelet at `via`), which delivers them, as an overlay's tunnel does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRoute {
    /// The node's name, for messages.
    pub node: String,
    /// The node's pod range.
    pub pods: Cidr,
    /// Where the node's end of the tunnel listens (its InternalIP and kubelet port).
    pub via: SocketAddr,
}

/// A node's routes to other nodes' pods, replaced as a whole as the overlay learns of nodes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PodRoutes {
    /// The routes; no two ranges overlap.
    pub routes: Vec<PodRoute>,
    /// The bearer token the other ends want (the cluster's kubelet token), as a tunnel's
    /// peers share a key.
    pub token: Option<String>,
}

impl std::fmt::Debug for PodRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodRoutes")
            .field("routes", &self.routes)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `addr` with an IPv4-mapped IPv6 address written as IPv4 (`[::ffff:10.0.0.1]:80` is
/// `10.0.0.1:80`), as the kernel treats it.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

impl std::fmt::Debug for Netfilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netfilter")
            .field("rules", &self.state.lock().ruleset.rules.len())
            .finish()
    }
}

impl Netfilter {
    /// A node with no rules.
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::default()
    }

    /// Replace every rule with `ruleset`'s. Affinity a client has to an endpoint its Service
    /// still has is kept.
    pub fn program(&self, ruleset: Ruleset) {
        let mut index = HashMap::new();
        for (i, rule) in ruleset.rules.iter().enumerate() {
            for frontend in &rule.frontends {
                index
                    .entry((rule.protocol, canonical(*frontend)))
                    .or_insert(i);
            }
        }
        let mut state = self.state.lock();
        // A Service port's rules (its cluster IP's, its external addresses') share affinity.
        let mut endpoints: HashMap<&str, Vec<SocketAddr>> = HashMap::new();
        for r in ruleset
            .rules
            .iter()
            .filter(|r| r.affinity_seconds.is_some())
        {
            endpoints
                .entry(r.name.as_str())
                .or_default()
                .extend(&r.endpoints);
        }
        state.sessions.retain(|(name, _), (endpoint, _)| {
            endpoints
                .get(name.as_str())
                .is_some_and(|e| e.contains(endpoint))
        });
        state.index = index;
        state.ruleset = ruleset;
    }

    /// The rules as last programmed.
    pub fn ruleset(&self) -> Ruleset {
        self.state.lock().ruleset.clone()
    }

    /// Replace the routes to other nodes' pods (the Service rules stay).
    pub fn set_routes(&self, routes: PodRoutes) {
        *self.routes.lock() = routes;
    }

    /// The routes to other nodes' pods, as last set.
    pub fn routes(&self) -> PodRoutes {
        self.routes.lock().clone()
    }

    /// The route to `ip` when it is another node's pod's (the longest matching range), with
    /// the token its tunnel wants.
    pub fn pod_route(&self, ip: IpAddr) -> Option<(PodRoute, Option<String>)> {
        let routes = self.routes.lock();
        routes
            .routes
            .iter()
            .filter(|r| r.pods.contains(ip))
            .max_by_key(|r| r.pods.prefix)
            .map(|r| (r.clone(), routes.token.clone()))
    }

    /// Where a new `protocol` connection from `client` to `to` goes, at cluster time `now`.
    pub fn translate(
        &self,
        protocol: Protocol,
        client: IpAddr,
        to: SocketAddr,
        now: DateTime<Utc>,
    ) -> Verdict {
        use rand::Rng;
        let mut state = self.state.lock();
        let State {
            ruleset,
            index,
            sessions,
        } = &mut *state;
        let Some(rule) = index
            .get(&(protocol, canonical(to)))
            .and_then(|&i| ruleset.rules.get(i))
        else {
            return Verdict::Pass;
        };
        if rule.endpoints.is_empty() {
            return match rule.no_endpoints {
                NoEndpoints::Reject => Verdict::Reject,
                NoEndpoints::Drop => Verdict::Drop,
            };
        }
        let key = rule.affinity_seconds.map(|s| {
            (
                (rule.name.clone(), client),
                Duration::from_secs(u64::from(s)),
            )
        });
        if let Some((key, timeout)) = &key {
            if let Some((endpoint, at)) = sessions.get(key) {
                let fresh = (now - *at).to_std().is_ok_and(|age| age <= *timeout);
                if fresh && rule.endpoints.contains(endpoint) {
                    let endpoint = *endpoint;
                    sessions.insert(key.clone(), (endpoint, now));
                    return Verdict::Dnat(endpoint);
                }
            }
        }
        let endpoint = rule.endpoints[rand::rng().random_range(0..rule.endpoints.len())];
        if let Some((key, _)) = key {
            sessions.insert(key, (endpoint, now));
        }
        Verdict::Dnat(endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn rule(endpoints: &[&str], affinity: Option<u32>) -> ServiceRule {
        ServiceRule {
            name: "shop/web:http".into(),
            protocol: Protocol::Tcp,
            frontends: vec![addr("10.96.0.10:80"), addr("127.0.0.1:30080")],
            endpoints: endpoints.iter().map(|e| addr(e)).collect(),
            no_endpoints: NoEndpoints::Reject,
            affinity_seconds: affinity,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn connections_spread_over_the_endpoints_and_other_addresses_pass() {
        let nf = Netfilter::new();
        nf.program(Ruleset {
            rules: vec![rule(&["127.1.0.2:8080", "127.1.0.3:8080"], None)],
        });
        let client: IpAddr = "127.1.0.9".parse().unwrap();
        let seen: BTreeSet<_> = (0..64)
            .map(|_| nf.translate(Protocol::Tcp, client, addr("10.96.0.10:80"), at(0)))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|v| format!("{v:?}"))
            .collect();
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["Dnat(127.1.0.2:8080)", "Dnat(127.1.0.3:8080)"]
        );
        // The NodePort frontend leads to the same endpoints; an IPv4-mapped address is the same.
        assert!(matches!(
            nf.translate(
                Protocol::Tcp,
                client,
                addr("[::ffff:127.0.0.1]:30080"),
                at(0)
            ),
            Verdict::Dnat(_)
        ));
        // Another port, another protocol or another address is not the Service's.
        for (p, to) in [
            (Protocol::Tcp, "10.96.0.10:81"),
            (Protocol::Udp, "10.96.0.10:80"),
            (Protocol::Tcp, "10.96.0.11:80"),
        ] {
            assert_eq!(nf.translate(p, client, addr(to), at(0)), Verdict::Pass);
        }
    }

    #[test]
    fn without_endpoints_a_service_rejects_or_drops_as_its_rule_says() {
        let nf = Netfilter::new();
        let mut dropping = rule(&[], None);
        dropping.name = "shop/local:".into();
        dropping.frontends = vec![addr("10.96.0.20:80")];
        dropping.no_endpoints = NoEndpoints::Drop;
        nf.program(Ruleset {
            rules: vec![rule(&[], None), dropping],
        });
        let client: IpAddr = "127.1.0.9".parse().unwrap();
        assert_eq!(
            nf.translate(Protocol::Tcp, client, addr("10.96.0.10:80"), at(0)),
            Verdict::Reject
        );
        assert_eq!(
            nf.translate(Protocol::Tcp, client, addr("10.96.0.20:80"), at(0)),
            Verdict::Drop
        );
    }

    #[test]
    fn client_ip_affinity_keeps_a_client_on_its_endpoint_until_it_stays_away_too_long() {
        let nf = Netfilter::new();
        let endpoints = ["127.1.0.2:8080", "127.1.0.3:8080", "127.1.0.4:8080"];
        nf.program(Ruleset {
            rules: vec![rule(&endpoints, Some(60))],
        });
        let to = addr("10.96.0.10:80");
        let a: IpAddr = "127.1.0.9".parse().unwrap();
        let first = nf.translate(Protocol::Tcp, a, to, at(0));
        // Each connection within the timeout of the last keeps it (and refreshes it).
        for t in [30, 80, 130] {
            assert_eq!(nf.translate(Protocol::Tcp, a, to, at(t)), first);
        }
        // Other clients are spread: across many clients, more than one endpoint is used.
        let others: BTreeSet<String> = (10..60)
            .map(|i| {
                let c: IpAddr = format!("127.1.1.{i}").parse().unwrap();
                format!("{:?}", nf.translate(Protocol::Tcp, c, to, at(0)))
            })
            .collect();
        assert!(others.len() > 1, "{others:?}");
        // After more than the timeout away, the client is spread anew (some later connection
        // lands elsewhere).
        let later: BTreeSet<String> = (0..64)
            .map(|i| {
                format!(
                    "{:?}",
                    nf.translate(Protocol::Tcp, a, to, at(1000 + i * 100))
                )
            })
            .collect();
        assert!(later.len() > 1, "{later:?}");
        // Its endpoint leaving the Service ends the affinity.
        let Verdict::Dnat(current) = nf.translate(Protocol::Tcp, a, to, at(10_000)) else {
            panic!("no endpoint");
        };
        let rest: Vec<String> = endpoints
            .iter()
            .filter(|e| addr(e) != current)
            .map(|e| e.to_string())
            .collect();
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        nf.program(Ruleset {
            rules: vec![rule(&rest, Some(60))],
        });
        let next = nf.translate(Protocol::Tcp, a, to, at(10_001));
        assert_ne!(next, Verdict::Dnat(current));
        assert!(matches!(next, Verdict::Dnat(_)));
    }

    #[test]
    fn cidrs_parse_as_networks_and_contain_their_addresses() {
        let c: Cidr = "127.42.0.0/16".parse().unwrap();
        assert_eq!(c.to_string(), "127.42.0.0/16");
        assert!(c.contains("127.42.255.1".parse().unwrap()));
        assert!(c.contains("::ffff:127.42.0.1".parse().unwrap()));
        assert!(!c.contains("127.43.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        for bad in [
            "127.42.0.1/16",
            "127.42.0.0/33",
            "127.42.0.0",
            "127.42.0.0/+16",
            "x/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(all.overlaps(&c) && c.overlaps(&all));
        let other: Cidr = "127.43.0.0/16".parse().unwrap();
        assert!(!other.overlaps(&c));
    }

    #[test]
    fn kube_proxy_s_rules_leave_the_pod_routes_alone() {
        let nf = Netfilter::new();
        let routes = PodRoutes {
            routes: vec![PodRoute {
                node: "node-b".into(),
                pods: "127.20.0.0/16".parse().unwrap(),
                via: addr("172.18.0.3:10250"),
            }],
            token: Some("secret".into()),
        };
        nf.set_routes(routes.clone());
        nf.program(Ruleset {
            rules: vec![rule(&["127.20.0.2:8080"], None)],
        });
        nf.program(Ruleset::default());
        assert_eq!(nf.routes(), routes);
        let (route, token) = nf.pod_route("127.20.9.9".parse().unwrap()).unwrap();
        assert_eq!(
            (route.node.as_str(), token.as_deref()),
            ("node-b", Some("secret"))
        );
        assert!(nf.pod_route("127.21.0.1".parse().unwrap()).is_none());
        // The token is not printed.
        assert!(!format!("{routes:?}").contains("secret"));
    }
}
