//! The WebSocket transport of the remote command protocols: binary messages whose first byte is
//! the channel; from `v5.channel.k8s.io` on, `[255, channel]` closes a channel (stdin's end).
//! The server first sends an empty message on the lowest channel it writes (stdout, stderr, or
//! the error channel), as the kubelet does, and ends the session with a normal close.

use std::future::Future;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{Channel, Conn, Output, Wants, STREAM_CREATION_TIMEOUT, V5};

/// The close signal of `v5.channel.k8s.io`.
const STREAM_CLOSE: u8 = 255;

/// The largest message accepted from a client.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The `101 Switching Protocols` answer to a WebSocket upgrade for `protocol`.
pub(crate) fn switching(key: &str, protocol: &str) -> Response {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    if let Ok(v) = HeaderValue::from_str(protocol) {
        h.insert("sec-websocket-protocol", v);
    }
    response
}

/// Once the connection is upgraded, run `session` over it as a remote command connection of
/// `protocol` with the channels `wants` names.
pub(crate) fn spawn<F, Fut>(on_upgrade: OnUpgrade, protocol: String, wants: Wants, session: F)
where
    F: FnOnce(Conn) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let Some(socket) = accept(on_upgrade).await else {
            return;
        };
        let (mut sink, mut stream) = socket.split();
        let gone = CancellationToken::new();
        let (out, mut input) = Output::new(gone.clone());
        let channels = wants.channels(&protocol);
        let (stdin_tx, stdin) = pipe(channels.contains(&Channel::Stdin));
        let (resize_tx, resize) = pipe(channels.contains(&Channel::Resize));
        let closes = protocol == V5;

        // Reader: client messages to their channels, until the client closes.
        let reader_gone = gone.clone();
        tokio::spawn(async move {
            let mut stdin_tx = stdin_tx;
            let mut resize_tx = resize_tx;
            while let Some(message) = stream.next().await {
                let data = match message {
                    Ok(Message::Binary(data)) => data,
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => continue,
                };
                let Some((&first, rest)) = data.split_first() else {
                    continue;
                };
                if closes && first == STREAM_CLOSE {
                    match rest {
                        [c] if *c == Channel::Stdin as u8 => stdin_tx = None,
                        [c] if *c == Channel::Resize as u8 => resize_tx = None,
                        [_] => {}
                        _ => break,
                    }
                    continue;
                }
                let target = if first == Channel::Stdin as u8 {
                    stdin_tx.as_ref()
                } else if first == Channel::Resize as u8 {
                    resize_tx.as_ref()
                } else {
                    None
                };
                if let Some(tx) = target {
                    if tx.send(data.slice(1..)).await.is_err() {
                        continue;
                    }
                }
            }
            reader_gone.cancel();
        });

        // Writer: the session's output in order, then a normal close.
        let first = [Channel::Stdout, Channel::Stderr]
            .into_iter()
            .find(|c| channels.contains(c))
            .unwrap_or(Channel::Error);
        let writer_gone = gone.clone();
        tokio::spawn(async move {
            if sink.send(frame(first, &[])).await.is_err() {
                writer_gone.cancel();
                return;
            }
            while let Some(super::Out::Data(channel, data)) = input.recv().await {
                if sink.send(frame(channel, &data)).await.is_err() {
                    writer_gone.cancel();
                    return;
                }
            }
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                })))
                .await;
            let _ = sink.flush().await;
        });

        // client-go creates its streams after the upgrade, while its reader already runs, and
        // drops messages for a stream it has not created yet (and fails to create one once the
        // connection closed). Upstream's apiserver starts the command only after its own SPDY
        // round trips to the kubelet; this settle time stands in for them.
        tokio::time::sleep(CLIENT_SETTLE).await;
        session(Conn {
            protocol,
            stdin,
            resize,
            out,
            gone,
        })
        .await;
    });
}

/// How long a WebSocket session waits before its command starts (wall time; see [`spawn`]).
const CLIENT_SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// The server's end of the WebSocket once the connection is upgraded (None when the upgrade
/// never completes).
async fn accept(
    on_upgrade: OnUpgrade,
) -> Option<tokio_tungstenite::WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>> {
    let upgraded = match tokio::time::timeout(STREAM_CREATION_TIMEOUT, on_upgrade).await {
        Ok(Ok(upgraded)) => upgraded,
        Ok(Err(e)) => {
            tracing::debug!(cause = %e, "a WebSocket upgrade failed");
            return None;
        }
        Err(_) => return None,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    Some(
        tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(config),
        )
        .await,
    )
}

fn pipe(wanted: bool) -> (Option<mpsc::Sender<Bytes>>, Option<mpsc::Receiver<Bytes>>) {
    if wanted {
        let (tx, rx) = mpsc::channel(64);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    }
}

fn frame(channel: Channel, data: &[u8]) -> Message {
    let mut b = BytesMut::with_capacity(data.len() + 1);
    b.put_u8(channel as u8);
    b.extend_from_slice(data);
    Message::Binary(b.freeze())
}

/// The WebSocket subprotocol kubectl 1.31+ tunnels port-forwarding's SPDY in.
pub(crate) const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// Once the connection is upgraded, carry a byte stream in its binary messages (each message
/// is the next bytes, as client-go's tunneling connection frames them) and hand the other end
/// to `session`.
pub(crate) fn spawn_tunnel<F, Fut>(on_upgrade: OnUpgrade, session: F)
where
    F: FnOnce(tokio::io::DuplexStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::spawn(async move {
        let Some(socket) = accept(on_upgrade).await else {
            return;
        };
        let (mut sink, mut stream) = socket.split();
        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        let (mut from_tunnel, mut to_tunnel) = tokio::io::split(ours);
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Binary(data) if to_tunnel.write_all(&data).await.is_err() => break,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = to_tunnel.shutdown().await;
        });
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match from_tunnel.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                        if sink.send(Message::Binary(data)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                })))
                .await;
        });
        session(theirs).await;
    });
}
