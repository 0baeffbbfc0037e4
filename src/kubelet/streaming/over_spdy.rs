//! The remote command and port-forward protocols over a [`spdy`](super::spdy) session, as the
//! kubelet serves them: remote commands get one stream per channel (named by its `streamType`
//! header) and the kubelet waits for every stream the options call for; port-forward gets a pair
//! of streams per connection (`error` and `data`, tied by `requestID`, for `port`), each pair
//! dialing the pod's port.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::spdy::{Role, Session, Stream, StreamWriter};
use super::{Channel, Conn, Out, Output, Wants, STREAM_CREATION_TIMEOUT};

/// Serve a remote command session on `io` (an upgraded connection): wait for the streams of
/// `wants`, then run `session` over them; the connection ends after the session's last write.
pub(crate) async fn remote_command<T, F, Fut>(io: T, protocol: String, wants: Wants, session: F)
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    F: FnOnce(Conn) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (spdy, mut incoming) = Session::new(io, Role::Server);
    spdy.set_idle_timeout(Some(IDLE_TIMEOUT));
    let expected = wants.channels(&protocol);
    let mut streams: HashMap<Channel, Stream> = HashMap::new();
    let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
    tokio::pin!(deadline);
    while streams.len() < expected.len() {
        tokio::select! {
            stream = incoming.recv() => {
                let Some(stream) = stream else { return };
                let channel = stream
                    .header("streamtype")
                    .and_then(Channel::from_stream_type)
                    .filter(|c| expected.contains(c) && !streams.contains_key(c));
                match channel {
                    Some(c) => {
                        streams.insert(c, stream);
                    }
                    None => stream.reset(),
                }
            }
            () = &mut deadline => {
                tracing::debug!("timed out waiting for the client to create its streams");
                spdy.close().await;
                return;
            }
        }
    }
    let gone = CancellationToken::new();
    let watcher = (spdy.clone(), gone.clone());
    tokio::spawn(async move {
        watcher.0.closed().await;
        watcher.1.cancel();
    });
    let input = |channel: Channel, streams: &mut HashMap<Channel, Stream>| {
        let stream = streams.remove(&channel)?;
        let (mut reader, writer) = stream.split();
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        tokio::spawn(async move {
            while let Some(data) = reader.read().await {
                if tx.send(data).await.is_err() {
                    break;
                }
            }
            drop(writer);
        });
        Some(rx)
    };
    let stdin = input(Channel::Stdin, &mut streams);
    let resize = input(Channel::Resize, &mut streams);
    let writers: HashMap<Channel, StreamWriter> = streams
        .into_iter()
        .map(|(c, s)| {
            let (_reader, writer) = s.split();
            (c, writer)
        })
        .collect();
    let (out, mut queue) = Output::new(gone.clone());
    let writer_gone = gone.clone();
    tokio::spawn(async move {
        while let Some(Out::Data(channel, data)) = queue.recv().await {
            let Some(writer) = writers.get(&channel) else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            if writer.write(&data).await.is_err() {
                writer_gone.cancel();
                break;
            }
        }
        // Half-close what this side wrote, then end the connection, as the kubelet does once
        // the status is written.
        for writer in writers.values() {
            let _ = writer.close().await;
        }
        spdy.close().await;
    });
    session(Conn {
        protocol,
        stdin,
        resize,
        out,
        gone,
    })
    .await;
}

/// Where port-forwarded connections go: the pod's address, and the names its errors carry.
#[derive(Clone, Debug)]
pub(crate) struct PortForwardTarget {
    /// The pod's IP (its containers' servers listen there).
    pub ip: IpAddr,
    /// The pod sandbox's id (as containerd names it in its errors).
    pub sandbox: String,
}

/// A session with no frame either way for this long is closed (the kubelet's
/// `streamingConnectionIdleTimeout`, 4 h; kubectl pings every 5 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);

/// How long dialing the pod's port may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve port-forwarding on `io`: every `error`+`data` stream pair the client opens (tied by
/// `requestID`) is one connection to the pod's `port`; a port nothing listens on is reported on
/// the pair's error stream in containerd's words, wrapped as the kubelet wraps it.
pub(crate) async fn port_forward<T>(io: T, target: PortForwardTarget)
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (spdy, mut incoming) = Session::new(io, Role::Server);
    spdy.set_idle_timeout(Some(IDLE_TIMEOUT));
    // requestID -> (error stream, data stream), until both arrived.
    let mut pending: HashMap<String, (Option<Stream>, Option<Stream>)> = HashMap::new();
    while let Some(stream) = incoming.recv().await {
        let kind = stream.header("streamtype").map(str::to_string);
        let request = stream
            .header("requestid")
            .map(str::to_string)
            .unwrap_or_default();
        let entry = pending.entry(request.clone()).or_default();
        match kind.as_deref() {
            Some("error") if entry.0.is_none() => entry.0 = Some(stream),
            Some("data") if entry.1.is_none() => entry.1 = Some(stream),
            _ => {
                stream.reset();
                continue;
            }
        }
        if let (Some(_), Some(_)) = (&entry.0, &entry.1) {
            if let Some((Some(error), Some(data))) = pending.remove(&request) {
                tokio::spawn(forward(error, data, target.clone()));
            }
        }
    }
    spdy.close().await;
}

/// One forwarded connection.
async fn forward(error: Stream, data: Stream, target: PortForwardTarget) {
    let port_text = data.header("port").unwrap_or_default().to_string();
    let (_error_reader, error_writer) = error.split();
    let port: u16 = match port_text.parse() {
        Ok(p) if p > 0 => p,
        _ => {
            let _ = error_writer
                .write(format!("invalid port header {port_text:?}").as_bytes())
                .await;
            let _ = error_writer.close().await;
            data.reset();
            return;
        }
    };
    let address = SocketAddr::new(target.ip, port);
    let dialed = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(address)).await;
    let mut socket = match dialed {
        Ok(Ok(socket)) => socket,
        Ok(Err(e)) => {
            let cause = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                "connect: connection refused".to_string()
            } else {
                e.to_string()
            };
            let message = format!(
                "error forwarding port {port} to pod {sandbox}, uid : failed to execute portforward in network namespace \"/var/run/netns/cni-{sandbox}\": failed to connect to localhost:{port} inside namespace \"{sandbox}\", IPv4: dial tcp4 127.0.0.1:{port}: {cause} IPv6 dial tcp6 [::1]:{port}: {cause} ",
                sandbox = target.sandbox
            );
            let _ = error_writer.write(message.as_bytes()).await;
            let _ = error_writer.close().await;
            let _ = data.close().await;
            return;
        }
        Err(_) => {
            let message = format!(
                "error forwarding port {port} to pod {}, uid : failed to connect to localhost:{port}: i/o timeout",
                target.sandbox
            );
            let _ = error_writer.write(message.as_bytes()).await;
            let _ = error_writer.close().await;
            let _ = data.close().await;
            return;
        }
    };
    let mut data = data;
    if let Err(e) = tokio::io::copy_bidirectional(&mut data, &mut socket).await {
        tracing::trace!(cause = %e, "a forwarded connection ended");
    }
    let _ = data.close().await;
    let _ = error_writer.close().await;
}
