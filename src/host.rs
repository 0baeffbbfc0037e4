//! The machine a component runs on: whether it is a container, and the address it is reached
//! at. The reference cluster listens only on loopback on the machine it runs on; inside a
//! container the containers target starts, a component's own network namespace is its machine, and
//! other containers reach it over a private Docker network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The variable the containers target sets in the containers it starts: a component that sees
/// it is the only thing in its network namespace, on a private network.
pub const CONTAINER_ENV: &str = "KUBESPEC_CONTAINER";

/// Whether this process runs in a container the containers target started ([`CONTAINER_ENV`]
/// is `1`). Not "in any container": a development machine may itself be one, and there only
/// loopback is private.
pub fn in_container() -> bool {
    std::env::var(CONTAINER_ENV).is_ok_and(|v| v == "1")
}

/// The address this machine sends from towards `peer`: the address of the interface its route
/// to `peer` leaves by (a UDP "connect" chooses it and sends nothing). `None` when there is no
/// route.
pub fn source_address_towards(peer: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = match peer {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect((peer, 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// The address of the interface of this machine's default route (upstream's
/// `ChooseHostInterface`), or loopback when it has none.
pub fn default_address() -> IpAddr {
    // A documentation address (TEST-NET-1): never answers, and the "connect" sends nothing.
    source_address_towards(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Refuse to listen on `ip` unless it is loopback or this process runs in a container (whose
/// interfaces are on a private network). `flag` names the option for the message.
///
/// # Errors
/// A message saying why and what to pass instead.
pub fn check_listen_address(ip: IpAddr, flag: &str) -> Result<(), String> {
    if ip.is_loopback() || in_container() {
        return Ok(());
    }
    Err(format!(
        "{flag} {ip} is not a loopback address: outside a container the reference cluster only \
         listens on 127.0.0.0/8 or ::1 (pass e.g. {flag} 127.0.0.1)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_reached_from_loopback() {
        let from = source_address_towards(IpAddr::V4(Ipv4Addr::new(127, 3, 4, 5)));
        assert!(from.is_some_and(|ip| ip.is_loopback()), "{from:?}");
    }

    #[test]
    fn outside_a_container_only_loopback_may_be_listened_on() {
        if in_container() {
            return;
        }
        assert!(check_listen_address(IpAddr::V4(Ipv4Addr::LOCALHOST), "--address").is_ok());
        let err = check_listen_address(IpAddr::V4(Ipv4Addr::UNSPECIFIED), "--address")
            .expect_err("0.0.0.0 is refused outside a container");
        assert!(
            err.contains("--address 0.0.0.0 is not a loopback address"),
            "{err}"
        );
    }
}
