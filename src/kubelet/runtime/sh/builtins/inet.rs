//! Addresses as busybox's networking applets (`wget`, `nc`) read and print them: `HOST[:PORT]`
//! and `[V6]:PORT` operands (libbb's `str2sockaddr`), numeric addresses as `inet_aton` reads
//! them, names from the container's `/etc/hosts` (the simulation has no DNS: other names do
//! not resolve), IPv4 preferred; ports; and the C library's texts for socket errors.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::super::interp::Interp;

/// The C library's `strerror` text of a socket error.
pub(super) fn strerror(e: &std::io::Error) -> String {
    if let Some(code) = e.raw_os_error() {
        let text = match code {
            1 => "Operation not permitted",
            2 => "No such file or directory",
            4 => "Interrupted system call",
            9 => "Bad file descriptor",
            11 => "Resource temporarily unavailable",
            13 => "Permission denied",
            22 => "Invalid argument",
            24 => "Too many open files",
            32 => "Broken pipe",
            90 => "Message too long",
            97 => "Address family not supported by protocol",
            98 => "Address already in use",
            99 => "Cannot assign requested address",
            100 => "Network is down",
            101 => "Network is unreachable",
            103 => "Software caused connection abort",
            104 => "Connection reset by peer",
            107 => "Transport endpoint is not connected",
            110 => "Connection timed out",
            111 => "Connection refused",
            112 => "Host is down",
            113 => "No route to host",
            _ => "",
        };
        if !text.is_empty() {
            return text.to_string();
        }
        return format!("Unknown error {code}");
    }
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "Connection refused",
        K::ConnectionReset => "Connection reset by peer",
        K::ConnectionAborted => "Software caused connection abort",
        K::NotConnected => "Transport endpoint is not connected",
        K::AddrInUse => "Address already in use",
        K::AddrNotAvailable => "Cannot assign requested address",
        K::BrokenPipe => "Broken pipe",
        K::TimedOut => "Connection timed out",
        K::PermissionDenied => "Permission denied",
        K::InvalidInput => "Invalid argument",
        _ => "Input/output error",
    }
    .to_string()
}

/// Whether `e` is `ECONNREFUSED`.
pub(super) fn is_refused(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(111) || e.kind() == std::io::ErrorKind::ConnectionRefused
}

/// `ETIMEDOUT`.
pub(super) fn timed_out() -> std::io::Error {
    std::io::Error::from_raw_os_error(110)
}

/// An address as libbb's `xmalloc_sockaddr2dotted` prints it: `1.2.3.4:80`, `[::1]:80`.
pub(super) fn dotted(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => format!("{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// An IPv4 address as it shows on a dual-stack socket (`[::ffff:1.2.3.4]:80`).
pub(super) fn dotted_v6(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => format!("[::ffff:{}]:{}", v4.ip(), v4.port()),
        SocketAddr::V6(_) => dotted(a),
    }
}

/// A port as libbb's `bb_lookup_port` reads it: a decimal number up to 65535 (the busybox
/// image has no `/etc/services`, so names are bad ports).
pub(super) fn lookup_port(port: &str) -> Result<u16, String> {
    bb_strtou(port)
        .filter(|&p| p <= 65535)
        .map(|p| p as u16)
        .ok_or_else(|| format!("bad port '{port}'"))
}

/// libbb's `bb_strtou`: all decimal digits, no sign or blanks.
fn bb_strtou(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|&n| n <= u64::from(u32::MAX))
}

/// glibc's `inet_aton`: one to four parts, each decimal, octal (`0...`) or hexadecimal
/// (`0x...`); the last part fills the bytes left (`10.1` is 10.0.0.1); it may be followed by
/// blanks and anything after them.
pub(super) fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
    let s = &s[..end];
    if s.is_empty() {
        return None;
    }
    let mut parts: Vec<u64> = Vec::new();
    for part in s.split('.') {
        if parts.len() == 4 {
            return None;
        }
        let (digits, radix) =
            if let Some(h) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (h, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else {
                (part, 10)
            };
        if part.is_empty() || (digits.is_empty() && radix != 16) {
            return None;
        }
        let value = if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        if value > u64::from(u32::MAX) {
            return None;
        }
        parts.push(value);
    }
    let (last, head) = parts.split_last()?;
    if head.iter().any(|&p| p > 255) {
        return None;
    }
    let room = 32 - 8 * head.len() as u32;
    if room < 32 && *last >= 1u64 << room {
        return None;
    }
    let mut n: u32 = 0;
    for (i, &p) in head.iter().enumerate() {
        n |= (p as u32) << (24 - 8 * i as u32);
    }
    n |= *last as u32;
    Some(Ipv4Addr::from(n))
}

impl Interp<'_> {
    /// libbb's `str2sockaddr`: `host` is `1.2.3.4[:PORT]`, `[V6][:PORT]`, a V6 address, or a
    /// name; `port` when it names none. `Err` is libbb's message (`bad address 'x'`).
    pub(super) fn host_to_addr(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        let org = host;
        let mut port = port;
        let mut name = host;
        if let Some(rest) = host.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return Err(format!("bad address '{org}'"));
            };
            let after = &rest[end + 1..];
            if !after.is_empty() && !after.starts_with(':') {
                return Err(format!("bad address '{org}'"));
            }
            name = &rest[..end];
            if let Some(p) = after.strip_prefix(':') {
                port = bb_strtou(p)
                    .filter(|&n| n <= 0xffff)
                    .map(|n| n as u16)
                    .ok_or_else(|| format!("bad port '{p}'"))?;
            }
        } else if let Some(i) = host.rfind(':') {
            if host.find(':') == Some(i) {
                let p = &host[i + 1..];
                name = &host[..i];
                port = bb_strtou(p)
                    .filter(|&n| n <= 0xffff)
                    .map(|n| n as u16)
                    .ok_or_else(|| format!("bad port '{p}'"))?;
            }
        }
        if let Some(v4) = inet_aton(name) {
            return Ok(SocketAddr::new(IpAddr::V4(v4), port));
        }
        if let Ok(v6) = name.parse::<Ipv6Addr>() {
            return Ok(SocketAddr::new(IpAddr::V6(v6), port));
        }
        match self.resolve_name(name) {
            Some(ip) => Ok(SocketAddr::new(ip, port)),
            None => Err(format!("bad address '{org}'")),
        }
    }

    /// A name as the container resolves it without DNS: its `/etc/hosts` (the first IPv4
    /// address listed for it, else the first IPv6 one), and `localhost`.
    fn resolve_name(&self, name: &str) -> Option<IpAddr> {
        if name.is_empty() || name.len() > 253 {
            return None;
        }
        let mut v6 = None;
        if let Some(hosts) = self.read("/etc/hosts") {
            for line in String::from_utf8_lossy(&hosts).lines() {
                let line = line.split('#').next().unwrap_or("");
                let mut fields = line.split_ascii_whitespace();
                let Some(addr) = fields.next() else { continue };
                if !fields.any(|n| n.eq_ignore_ascii_case(name)) {
                    continue;
                }
                match addr.parse::<IpAddr>() {
                    Ok(ip @ IpAddr::V4(_)) => return Some(ip),
                    Ok(ip) => {
                        v6.get_or_insert(ip);
                    }
                    Err(_) => {}
                }
            }
        }
        if name.eq_ignore_ascii_case("localhost") {
            return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        v6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_reads_glibc_s_forms() {
        let a = |s: &str| inet_aton(s).map(|ip| ip.to_string());
        assert_eq!(a("10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(a("10.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(a("127.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(a("0x7f.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(a("010.0.0.1").as_deref(), Some("8.0.0.1"));
        assert_eq!(a("2130706433").as_deref(), Some("127.0.0.1"));
        for bad in [
            "",
            "1.2.3.4.5",
            "256.1.1.1",
            "1..2",
            "a.b",
            "1.2.3.256",
            "08",
            "-1",
        ] {
            assert_eq!(inet_aton(bad), None, "{bad}");
        }
    }

    #[test]
    fn ports_and_errors() {
        assert_eq!(lookup_port("80"), Ok(80));
        assert_eq!(lookup_port("http"), Err("bad port 'http'".into()));
        assert_eq!(lookup_port("65536"), Err("bad port '65536'".into()));
        assert_eq!(
            strerror(&std::io::Error::from_raw_os_error(111)),
            "Connection refused"
        );
        assert_eq!(dotted(&"[::1]:8".parse().unwrap()), "[::1]:8");
        assert_eq!(
            dotted_v6(&"10.0.0.1:8".parse().unwrap()),
            "[::ffff:10.0.0.1]:8"
        );
    }
}
