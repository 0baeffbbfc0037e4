//! Streams into containers, as the kubelet serves them for `kubectl exec`, `attach`, `cp` and
//! `port-forward` (which the apiserver proxies here, byte for byte, once both sides upgraded).
//!
//! Two transports carry the same channels:
//! - **WebSocket** (`ws`): the channel protocols `v5.channel.k8s.io` (kubectl 1.30+: v4 plus a
//!   close signal for stdin), `v4.channel.k8s.io` (exit codes as a `Status` on the error channel),
//!   `v3`, `v2` and `channel.k8s.io`, binary framed (first byte: the channel);
//! - **SPDY/3.1** (`spdy`): what kubectl 1.27 speaks (and 1.33 falls back to), one SPDY stream per
//!   channel, named by its `streamType` header.
//!
//! Either way the session handler sees a [`Conn`]: stdin and resize as receivers, and one ordered
//! queue for everything it writes (stdout, stderr, then the final status on the error channel).
//! The connection ends when the handler drops its queue (after the status is written), or when
//! the client goes away ([`Conn::gone`]).

pub(crate) mod over_spdy;
pub(crate) mod remotecommand;
pub mod spdy;
pub(crate) mod ws;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long the kubelet waits for a client to open the streams it asked for (upstream's
/// `DefaultStreamCreationTimeout`).
pub(crate) const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How much output may wait for a slow client before the session is ended (a real pipe would
/// block the writer; the simulated shell writes without waiting, so the queue is bounded here).
pub(crate) const MAX_QUEUED_OUTPUT: usize = 16 * 1024 * 1024;

/// The remote command channels (their WebSocket channel numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Channel {
    /// The process's standard input.
    Stdin = 0,
    /// Its standard output.
    Stdout = 1,
    /// Its standard error.
    Stderr = 2,
    /// The outcome (a `Status` from v4 on; plain text before).
    Error = 3,
    /// Terminal size changes (JSON `{"Width":..,"Height":..}`), v3 on.
    Resize = 4,
}

impl Channel {
    /// The `streamType` header value SPDY streams carry.
    pub(crate) fn stream_type(self) -> &'static str {
        match self {
            Self::Stdin => "stdin",
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Error => "error",
            Self::Resize => "resize",
        }
    }

    /// The channel a `streamType` names.
    pub(crate) fn from_stream_type(t: &str) -> Option<Self> {
        [
            Self::Stdin,
            Self::Stdout,
            Self::Stderr,
            Self::Error,
            Self::Resize,
        ]
        .into_iter()
        .find(|c| c.stream_type() == t)
    }
}

/// The remote command protocol versions, newest first.
pub(crate) const V5: &str = "v5.channel.k8s.io";
pub(crate) const V4: &str = "v4.channel.k8s.io";
pub(crate) const V3: &str = "v3.channel.k8s.io";
pub(crate) const V2: &str = "v2.channel.k8s.io";
pub(crate) const V1: &str = "channel.k8s.io";

/// Which streams a request asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Wants {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Wants {
    /// The channels a client of `protocol` opens for these options (a TTY merges stderr into
    /// stdout; resize exists from v3 on).
    pub(crate) fn channels(self, protocol: &str) -> Vec<Channel> {
        let mut v = vec![Channel::Error];
        if self.stdin {
            v.push(Channel::Stdin);
        }
        if self.stdout {
            v.push(Channel::Stdout);
        }
        if self.stderr && !self.tty {
            v.push(Channel::Stderr);
        }
        if self.tty && !matches!(protocol, V1 | V2) {
            v.push(Channel::Resize);
        }
        v
    }
}

/// What a session handler writes.
#[derive(Debug)]
pub(crate) enum Out {
    /// Bytes on a channel.
    Data(Channel, Bytes),
}

/// An open remote command connection, whatever its transport.
pub(crate) struct Conn {
    /// The negotiated protocol version.
    pub protocol: String,
    /// Standard input, when asked for; ends when the client closes it.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Terminal size changes, when a TTY was asked for.
    pub resize: Option<mpsc::Receiver<Bytes>>,
    /// Everything the handler writes, in order.
    pub out: Output,
    /// Cancelled when the client went away (or fell too far behind).
    pub gone: CancellationToken,
}

/// The writing side of a [`Conn`]: an ordered queue to the transport, bounded in bytes.
#[derive(Clone)]
pub(crate) struct Output {
    tx: mpsc::UnboundedSender<Out>,
    queued: Arc<AtomicUsize>,
    gone: CancellationToken,
}

impl Output {
    /// A queue and its receiving end, for a transport.
    pub(crate) fn new(gone: CancellationToken) -> (Self, Input) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        (
            Self {
                tx,
                queued: queued.clone(),
                gone,
            },
            Input { rx, queued },
        )
    }

    /// Queue `data` on `channel`. A client that is more than [`MAX_QUEUED_OUTPUT`] behind is
    /// treated as gone.
    pub(crate) fn send(&self, channel: Channel, data: &[u8]) {
        if data.is_empty() && channel != Channel::Stdout && channel != Channel::Stderr {
            return;
        }
        let before = self.queued.fetch_add(data.len(), Ordering::Relaxed);
        if before + data.len() > MAX_QUEUED_OUTPUT {
            tracing::debug!("a streaming client fell too far behind; ending its session");
            self.gone.cancel();
            return;
        }
        if self
            .tx
            .send(Out::Data(channel, Bytes::copy_from_slice(data)))
            .is_err()
        {
            self.gone.cancel();
        }
    }
}

/// The transport's end of an [`Output`].
pub(crate) struct Input {
    rx: mpsc::UnboundedReceiver<Out>,
    queued: Arc<AtomicUsize>,
}

impl Input {
    /// The next thing to write; None once every [`Output`] is dropped and all was read.
    pub(crate) async fn recv(&mut self) -> Option<Out> {
        let out = self.rx.recv().await?;
        let Out::Data(_, data) = &out;
        self.queued.fetch_sub(data.len(), Ordering::Relaxed);
        Some(out)
    }
}

/// How a request asks to upgrade its connection.
#[derive(Debug, PartialEq)]
pub(crate) enum Upgrade {
    /// `Upgrade: websocket`, with its key and the protocols the client offers (in its order).
    WebSocket { key: String, protocols: Vec<String> },
    /// `Upgrade: SPDY/3.1`, with the `X-Stream-Protocol-Version`s the client offers.
    Spdy { protocols: Vec<String> },
}

/// The upgrade a request asks for, if any.
pub(crate) fn upgrade_of(headers: &HeaderMap) -> Option<Upgrade> {
    let connection_upgrade = headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return None;
    }
    let upgrade = headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())?
        .trim()
        .to_string();
    if upgrade.eq_ignore_ascii_case("websocket") {
        let key = headers
            .get("sec-websocket-key")
            .and_then(|v| v.to_str().ok())?
            .trim()
            .to_string();
        let protocols = list(headers, "sec-websocket-protocol");
        return Some(Upgrade::WebSocket { key, protocols });
    }
    if upgrade.to_ascii_lowercase().starts_with("spdy/3.1") {
        let protocols = list(headers, "x-stream-protocol-version");
        return Some(Upgrade::Spdy { protocols });
    }
    None
}

/// The comma-separated values of every `name` header, in order.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The first protocol the client offers that the server supports (upstream's handshake takes
/// the client's order); `None` when there is none in common.
pub(crate) fn negotiate<'a>(client: &'a [String], server: &[&str]) -> Option<&'a str> {
    client
        .iter()
        .map(String::as_str)
        .find(|p| server.contains(p))
}

/// A TTY's output processing (`onlcr`): a newline goes out as CR LF.
pub(crate) fn onlcr(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn upgrades_are_recognised_by_their_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(upgrade_of(&h), None);
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("SPDY/3.1"));
        h.append(
            "x-stream-protocol-version",
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        h.append(
            "x-stream-protocol-version",
            HeaderValue::from_static("v3.channel.k8s.io"),
        );
        assert_eq!(
            upgrade_of(&h),
            Some(Upgrade::Spdy {
                protocols: vec![V4.into(), V3.into()]
            })
        );
        let mut w = HeaderMap::new();
        w.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        w.insert("upgrade", HeaderValue::from_static("websocket"));
        w.insert("sec-websocket-key", HeaderValue::from_static("abc"));
        w.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("v5.channel.k8s.io, v4.channel.k8s.io"),
        );
        assert_eq!(
            upgrade_of(&w),
            Some(Upgrade::WebSocket {
                key: "abc".into(),
                protocols: vec![V5.into(), V4.into()]
            })
        );
    }

    #[test]
    fn the_clients_order_wins_the_negotiation() {
        let client = vec![V5.to_string(), V4.to_string()];
        assert_eq!(negotiate(&client, &[V4, V5]), Some(V5));
        assert_eq!(negotiate(&client, &[V4, V3]), Some(V4));
        assert_eq!(negotiate(&client, &[V2]), None);
    }

    #[test]
    fn a_tty_turns_newlines_into_cr_lf() {
        assert_eq!(onlcr(b"a\nb\r\nc"), b"a\r\nb\r\nc");
    }

    #[test]
    fn channels_follow_the_options_and_the_version() {
        let tty = Wants {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: true,
        };
        assert_eq!(
            tty.channels(V4),
            vec![
                Channel::Error,
                Channel::Stdin,
                Channel::Stdout,
                Channel::Resize
            ]
        );
        assert_eq!(
            tty.channels(V2),
            vec![Channel::Error, Channel::Stdin, Channel::Stdout]
        );
    }
}
