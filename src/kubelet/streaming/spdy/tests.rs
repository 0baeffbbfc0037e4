//! Tests of the SPDY/3.1 session: both roles over in-memory pipes, and a raw peer that speaks
//! frames byte by byte for what a well-behaved session never sends.

use std::future::Future;
use std::time::Duration;

use flate2::{Decompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::frame::{
    adler32, decode_control, encode_frame, encode_header_block, read_frame, Frame, FrameError,
    HeaderDeflater, HeaderInflater, FLAG_FIN, FLAG_UNIDIRECTIONAL, GOAWAY_PROTOCOL_ERROR,
    HEADER_DICTIONARY, TYPE_SYN_STREAM,
};
use super::*;

/// Every wait in these tests ends: a hang fails the test instead.
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(20), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// A client and a server session joined by an in-memory pipe of `buffer` bytes.
fn pair(
    buffer: usize,
) -> (
    Session,
    mpsc::Receiver<Stream>,
    Session,
    mpsc::Receiver<Stream>,
) {
    let (a, b) = tokio::io::duplex(buffer);
    let (client, client_in) = Session::new(a, Role::Client);
    let (server, server_in) = Session::new(b, Role::Server);
    (client, client_in, server, server_in)
}

/// Reads a stream to its end.
async fn read_all(r: &mut StreamReader) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = r.read().await {
        out.extend_from_slice(&chunk);
    }
    out
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn stream_count(s: &Session) -> usize {
    s.shared.state.lock().streams.len()
}

/// The other end of a session, speaking raw frames.
struct RawPeer {
    io: DuplexStream,
    deflater: HeaderDeflater,
    inflater: HeaderInflater,
}

impl RawPeer {
    fn new(io: DuplexStream) -> Self {
        Self {
            io,
            deflater: HeaderDeflater::new().expect("compressor"),
            inflater: HeaderInflater::new(),
        }
    }

    async fn send(&mut self, frame: Frame) {
        let mut buf = Vec::new();
        encode_frame(&frame, &mut self.deflater, &mut buf).expect("encode");
        self.io.write_all(&buf).await.expect("write");
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        // The session may already have hung up on an earlier frame.
        let _ = self.io.write_all(bytes).await;
    }

    async fn next(&mut self) -> Option<Frame> {
        within(
            "raw peer read",
            read_frame(&mut self.io, &mut self.inflater),
        )
        .await
        .expect("well-formed frame from the session")
    }

    /// Frames until the session hangs up.
    async fn rest(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.next().await {
            frames.push(f);
        }
        frames
    }
}

/// A server session and a raw client.
fn raw_client() -> (RawPeer, Session, mpsc::Receiver<Stream>) {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (server, incoming) = Session::new(b, Role::Server);
    (RawPeer::new(a), server, incoming)
}

fn syn_stream(stream_id: u32, flags: u8, headers: Vec<(String, String)>) -> Frame {
    Frame::SynStream {
        stream_id,
        associated_id: 0,
        priority: 0,
        slot: 0,
        flags,
        headers,
    }
}

fn control(frame_type: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, 0x03];
    out.extend_from_slice(&frame_type.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

// ---------------------------------------------------------------------------------------------
// Framing and header compression

#[test]
fn adler32_matches_rfc1950_examples() {
    assert_eq!(adler32(b""), 1);
    assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    // Long input exercises the deferred modulo.
    let long = vec![0xffu8; 100_000];
    let (mut a, mut b) = (1u64, 0u64);
    for &x in &long {
        a = (a + u64::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    assert_eq!(adler32(&long), ((b << 16) | a) as u32);
}

#[test]
fn dictionary_is_the_spdy3_header_dictionary() {
    assert_eq!(HEADER_DICTIONARY.len(), 1423);
    assert!(HEADER_DICTIONARY.starts_with(b"\x00\x00\x00\x07options\x00\x00\x00\x04head"));
    assert!(HEADER_DICTIONARY.ends_with(b"charset=iso-8859-1,utf-,*,enq=0."));
    // The DICTID every SPDY/3 header stream carries.
    assert_eq!(adler32(HEADER_DICTIONARY), 0xe3c6_a7c2);
}

#[test]
fn compressed_header_stream_names_the_dictionary_like_go_zlib() {
    let mut d = HeaderDeflater::new().unwrap();
    let block = encode_header_block(&[h("streamtype", "error")]).unwrap();
    let out = d.compress(&block).unwrap();
    let (cmf, flg) = (out[0], out[1]);
    assert_eq!(cmf, 0x78, "deflate, 32 KiB window");
    assert_eq!(
        (u16::from(cmf) << 8 | u16::from(flg)) % 31,
        0,
        "header check bits"
    );
    assert_ne!(flg & 0x20, 0, "FDICT set");
    assert_eq!(
        flg >> 6,
        3,
        "FLEVEL of best compression, as Go's BestCompression writer"
    );
    assert_eq!(
        u32::from_be_bytes([out[2], out[3], out[4], out[5]]),
        adler32(HEADER_DICTIONARY)
    );
    // Sync flush: the block ends with an empty stored block.
    assert!(out.ends_with(&[0x00, 0x00, 0xff, 0xff]));

    // Without the dictionary the stream does not decode: zlib asks for it by its id.
    let mut plain = Decompress::new(true);
    let mut sink = Vec::with_capacity(4096);
    let err = plain
        .decompress_vec(&out, &mut sink, FlushDecompress::Sync)
        .expect_err("needs the dictionary");
    assert_eq!(err.needs_dictionary(), Some(adler32(HEADER_DICTIONARY)));

    let mut inflater = HeaderInflater::new();
    assert_eq!(inflater.decompress(&out).unwrap(), block);
}

#[test]
fn header_compression_context_carries_across_frames() {
    let headers = vec![
        h("streamtype", "data"),
        h("port", "8080"),
        h("requestid", "0"),
    ];
    let block = encode_header_block(&headers).unwrap();
    let mut d = HeaderDeflater::new().unwrap();
    let first = d.compress(&block).unwrap();
    let second = d.compress(&block).unwrap();
    assert!(
        second.len() < first.len(),
        "second block refers back to the first"
    );

    let mut inflater = HeaderInflater::new();
    assert_eq!(inflater.decompress(&first).unwrap(), block);
    assert_eq!(inflater.decompress(&second).unwrap(), block);
    // A fresh decompressor cannot start in the middle of the stream.
    assert!(HeaderInflater::new().decompress(&second).is_err());
}

#[test]
fn header_block_joins_and_splits_nul_separated_values() {
    let block = encode_header_block(&[h("Accept", "a"), h("x", "1"), h("accept", "b")]).unwrap();
    let mut expected = Vec::new();
    expected.extend_from_slice(&2u32.to_be_bytes());
    expected.extend_from_slice(&6u32.to_be_bytes());
    expected.extend_from_slice(b"accept");
    expected.extend_from_slice(&3u32.to_be_bytes());
    expected.extend_from_slice(b"a\0b");
    expected.extend_from_slice(&1u32.to_be_bytes());
    expected.extend_from_slice(b"x");
    expected.extend_from_slice(&1u32.to_be_bytes());
    expected.extend_from_slice(b"1");
    assert_eq!(block, expected);

    let mut d = HeaderDeflater::new().unwrap();
    let mut body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    body.extend(d.compress(&block).unwrap());
    let frame = decode_control(TYPE_SYN_STREAM, 0, &body, &mut HeaderInflater::new()).unwrap();
    let Frame::SynStream { headers, .. } = frame else {
        panic!("not a SYN_STREAM: {frame:?}")
    };
    assert_eq!(
        headers,
        vec![h("accept", "a"), h("accept", "b"), h("x", "1")]
    );
}

/// The first frame kubectl 1.27 sends after `kubectl exec` is upgraded: the SYN_STREAM of its
/// error stream, as written by spdystream's Go framer (captured from the wire). Its header
/// block uses Huffman codes and back-references into the SPDY/3 dictionary.
const KUBECTL_1_27_ERROR_SYN_STREAM: [u8; 49] = [
    0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x29, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, //
    0x00, 0x00, 0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x62, 0x60, 0x60, 0x60, 0x04, 0xa7, 0xb3,
    0x92, //
    0xa2, 0xd4, 0xc4, 0x5c, 0x68, 0x51, 0xc2, 0x9a, 0x0a, 0x0a, 0x68, 0x00, 0x00, 0x00, 0x00,
    0xff, //
    0xff,
];

#[tokio::test]
async fn decodes_a_syn_stream_captured_from_kubectl() {
    let mut wire = &KUBECTL_1_27_ERROR_SYN_STREAM[..];
    let frame = read_frame(&mut wire, &mut HeaderInflater::new())
        .await
        .unwrap();
    assert_eq!(
        frame,
        Some(syn_stream(1, 0, vec![h("streamtype", "error")]))
    );

    let (mut raw, _server, mut incoming) = raw_client();
    raw.send_raw(&KUBECTL_1_27_ERROR_SYN_STREAM).await;
    let s = within("accept", incoming.recv()).await.unwrap();
    assert_eq!((s.id(), s.header("streamType")), (1, Some("error")));
    assert_eq!(
        raw.next().await,
        Some(Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: vec![]
        })
    );
}

/// A SYN_STREAM laid out by hand from the SPDY/3 spec, as spdystream's framer frames one of
/// kubectl port-forward's streams: version 3, type 1, 10 bytes of ids, priority and slot, then
/// a zlib stream with FDICT and the dictionary's id whose deflate data is a stored block
/// followed by a sync flush (any deflate encoding must decode; this one is checkable by eye).
#[tokio::test]
async fn decodes_a_hand_built_syn_stream() {
    let mut names = Vec::new();
    for (n, v) in [
        ("port", "8080"),
        ("requestid", "0"),
        ("streamtype", "error"),
    ] {
        names.extend_from_slice(&(n.len() as u32).to_be_bytes());
        names.extend_from_slice(n.as_bytes());
        names.extend_from_slice(&(v.len() as u32).to_be_bytes());
        names.extend_from_slice(v.as_bytes());
    }
    let mut block = 3u32.to_be_bytes().to_vec();
    block.extend_from_slice(&names);

    let mut zlib = vec![0x78, 0xf9];
    zlib.extend_from_slice(&0xe3c6_a7c2u32.to_be_bytes());
    zlib.push(0x00); // BFINAL=0, BTYPE=stored
    zlib.extend_from_slice(&(block.len() as u16).to_le_bytes());
    zlib.extend_from_slice(&(!(block.len() as u16)).to_le_bytes());
    zlib.extend_from_slice(&block);
    zlib.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]); // sync flush

    let mut body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0x00, 0x00];
    body.extend_from_slice(&zlib);
    let wire = control(TYPE_SYN_STREAM, 0, &body);
    assert_eq!(
        &wire[..8],
        &[0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, body.len() as u8]
    );

    let (mut raw, _server, mut incoming) = raw_client();
    raw.send_raw(&wire).await;
    let stream = within("stream", incoming.recv())
        .await
        .expect("stream accepted");
    assert_eq!(stream.id(), 1);
    assert_eq!(stream.header("streamType"), Some("error"));
    assert_eq!(stream.header("Port"), Some("8080"));
    assert_eq!(stream.header("requestID"), Some("0"));
    assert_eq!(
        raw.next().await,
        Some(Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: vec![]
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[tokio::test]
async fn streams_carry_headers_and_data_both_ways_with_half_close() {
    let (client, _client_in, server, mut server_in) = pair(1 << 16);
    let mut opened = Vec::new();
    for i in 0..3 {
        let s = within(
            "open",
            client.open(vec![h("streamType", &format!("s{i}")), h("Port", "80")]),
        )
        .await
        .expect("open");
        opened.push(s);
    }
    assert_eq!(
        opened.iter().map(Stream::id).collect::<Vec<_>>(),
        vec![1, 3, 5]
    );

    let mut accepted = Vec::new();
    for i in 0..3 {
        let s = within("accept", server_in.recv()).await.expect("stream");
        assert_eq!(s.id(), [1, 3, 5][i]);
        assert_eq!(s.header("STREAMTYPE"), Some(format!("s{i}").as_str()));
        assert_eq!(s.header("port"), Some("80"));
        accepted.push(s);
    }

    for (i, (c, s)) in opened.into_iter().zip(accepted).enumerate() {
        let (mut cr, cw) = c.split();
        let (mut sr, sw) = s.split();
        cw.write(format!("to server {i}").as_bytes()).await.unwrap();
        // Client half-closes: the server reads to the end, and can still answer.
        cw.close().await.unwrap();
        assert_eq!(
            within("server read", read_all(&mut sr)).await,
            format!("to server {i}").into_bytes()
        );
        assert_eq!(cw.write(b"late").await, Err(SpdyError::WriteClosed));
        assert_eq!(cw.close().await, Err(SpdyError::WriteClosed));
        sw.write(format!("to client {i}").as_bytes()).await.unwrap();
        sw.close().await.unwrap();
        assert_eq!(
            within("client read", read_all(&mut cr)).await,
            format!("to client {i}").into_bytes()
        );
    }
    // Both sides finished every stream: nothing is left tracked.
    within("streams forgotten", async {
        while stream_count(&client) + stream_count(&server) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(!client.is_closed() && !server.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_transfers_both_ways_do_not_stall() {
    // A small pipe so that both directions push back while they cross.
    let (client, _ci, _server, mut server_in) = pair(16 * 1024);
    let c = within("open", client.open(vec![h("streamtype", "stdin")]))
        .await
        .unwrap();
    let s = within("accept", server_in.recv()).await.unwrap();
    let up = pattern(6 << 20, 1);
    let down = pattern(5 << 20, 2);
    let (mut cr, cw) = c.split();
    let (mut sr, sw) = s.split();
    let (up2, down2) = (up.clone(), down.clone());
    let send_up = tokio::spawn(async move {
        for chunk in up2.chunks(32 * 1024) {
            cw.write(chunk).await.unwrap();
        }
        cw.close().await.unwrap();
    });
    let send_down = tokio::spawn(async move {
        // One big write: split into frames by the session.
        sw.write(&down2).await.unwrap();
        sw.close().await.unwrap();
    });
    let got_up = tokio::spawn(async move { read_all(&mut sr).await });
    let got_down = within("client reads", read_all(&mut cr)).await;
    let got_up = within("server reads", got_up).await.unwrap();
    within("senders", send_up).await.unwrap();
    within("senders", send_down).await.unwrap();
    assert_eq!(got_up.len(), up.len());
    assert!(got_up == up, "client to server bytes differ");
    assert_eq!(got_down.len(), down.len());
    assert!(got_down == down, "server to client bytes differ");
}

#[tokio::test]
async fn async_read_write_adapters_copy_through_a_stream() {
    let (client, _ci, _server, mut server_in) = pair(1 << 16);
    let c = within("open", client.open(vec![h("streamtype", "data")]))
        .await
        .unwrap();
    let s = within("accept", server_in.recv()).await.unwrap();
    // The server echoes with tokio's copy over the adapters.
    let echo = tokio::spawn(async move {
        let (mut r, mut w) = s.split();
        let n = tokio::io::copy(&mut r, &mut w).await.unwrap();
        w.shutdown().await.unwrap();
        n
    });
    let payload = pattern(300_000, 7);
    let (mut r, mut w) = c.split();
    let p2 = payload.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&p2).await.unwrap();
        w.shutdown().await.unwrap();
        // A second shutdown is harmless.
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    within("echo", r.read_to_end(&mut back)).await.unwrap();
    within("writer", writer).await.unwrap();
    assert_eq!(
        within("echo task", echo).await.unwrap(),
        payload.len() as u64
    );
    assert!(back == payload);
}

#[tokio::test]
async fn ping_is_echoed_in_both_directions() {
    let (client, _ci, server, _si) = pair(1 << 16);
    within("client ping", client.ping(Duration::from_secs(5)))
        .await
        .expect("client ping echoed");
    within("server ping", server.ping(Duration::from_secs(5)))
        .await
        .expect("server ping echoed");

    // On the wire: the server echoes a client's odd id and answers nothing to its own parity.
    let (mut raw, _server, _in) = raw_client();
    raw.send(Frame::Ping { id: 7 }).await;
    assert_eq!(raw.next().await, Some(Frame::Ping { id: 7 }));
    raw.send(Frame::Ping { id: 8 }).await;
    raw.send(Frame::Ping { id: 9 }).await;
    assert_eq!(raw.next().await, Some(Frame::Ping { id: 9 }));
}

#[tokio::test]
async fn server_pings_use_even_ids() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (server, _in) = Session::new(b, Role::Server);
    let mut raw = RawPeer::new(a);
    let pinger = tokio::spawn(async move { server.ping(Duration::from_secs(5)).await });
    assert_eq!(raw.next().await, Some(Frame::Ping { id: 2 }));
    raw.send(Frame::Ping { id: 2 }).await;
    within("ping", pinger)
        .await
        .unwrap()
        .expect("echo completes the ping");
}

#[tokio::test]
async fn reset_ends_both_directions_on_both_sides() {
    let (client, _ci, server, mut server_in) = pair(1 << 16);
    let c = within("open", client.open(vec![h("streamtype", "stdout")]))
        .await
        .unwrap();
    let s = within("accept", server_in.recv()).await.unwrap();
    let (mut cr, cw) = c.split();
    let (mut sr, sw) = s.split();
    sw.write(b"before reset").await.unwrap();
    assert_eq!(
        within("data", cr.read()).await.as_deref(),
        Some(&b"before reset"[..])
    );

    cw.reset();
    assert_eq!(
        cw.write(b"x").await,
        Err(SpdyError::Reset(RstStatus::Cancel))
    );
    assert_eq!(within("client read after reset", cr.read()).await, None);
    // The server sees the peer's CANCEL: reading ends, writing fails.
    assert_eq!(within("server read after reset", sr.read()).await, None);
    within("server write fails", async {
        loop {
            match sw.write(b"y").await {
                Err(e) => break e,
                Ok(()) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await;
    assert_eq!(
        sw.write(b"y").await,
        Err(SpdyError::Reset(RstStatus::Cancel))
    );
    assert_eq!(stream_count(&client), 0);
    assert_eq!(stream_count(&server), 0);
    // The session itself goes on.
    within(
        "open after reset",
        client.open(vec![h("streamtype", "stdin")]),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn rejected_stream_is_reset_with_cancel_and_open_fails() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (client, _ci) = Session::new(a, Role::Client);
    let (_server, mut server_in) =
        Session::with_acceptor(b, Role::Server, |s: &Stream| match s.header("port") {
            Some(_) => Ok(()),
            None => Err("\"port\" header is required".to_string()),
        });
    let err = within("open", client.open(vec![h("streamtype", "data")]))
        .await
        .unwrap_err();
    assert_eq!(err, SpdyError::Reset(RstStatus::Cancel));
    let ok = within(
        "open",
        client.open(vec![h("streamtype", "data"), h("port", "80")]),
    )
    .await
    .unwrap();
    let got = within("accept", server_in.recv()).await.unwrap();
    assert_eq!((ok.id(), got.id()), (3, 3));
}

#[tokio::test]
async fn rejection_on_the_wire_is_rst_cancel_without_reply() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (_server, _in) =
        Session::with_acceptor(b, Role::Server, |_: &Stream| Err("no".to_string()));
    let mut raw = RawPeer::new(a);
    raw.send(syn_stream(1, 0, vec![h("streamtype", "data")]))
        .await;
    assert_eq!(
        raw.next().await,
        Some(Frame::RstStream {
            stream_id: 1,
            status: RstStatus::Cancel.code()
        })
    );
}

#[tokio::test]
async fn reply_precedes_data_and_ids_must_increase() {
    let (mut raw, server, mut incoming) = raw_client();
    raw.send(syn_stream(3, 0, vec![h("streamtype", "stdout")]))
        .await;
    let s = within("accept", incoming.recv()).await.unwrap();
    s.write(b"hello").await.unwrap();
    assert_eq!(
        raw.next().await,
        Some(Frame::SynReply {
            stream_id: 3,
            flags: 0,
            headers: vec![]
        })
    );
    assert_eq!(
        raw.next().await,
        Some(Frame::Data {
            stream_id: 3,
            flags: 0,
            data: Bytes::from_static(b"hello")
        })
    );
    // An id below one already used is refused with PROTOCOL_ERROR; the session goes on.
    raw.send(syn_stream(1, 0, vec![h("streamtype", "stdin")]))
        .await;
    assert_eq!(
        raw.next().await,
        Some(Frame::RstStream {
            stream_id: 1,
            status: RstStatus::ProtocolError.code()
        })
    );
    raw.send(syn_stream(5, 0, vec![h("streamtype", "stdin")]))
        .await;
    assert_eq!(within("accept", incoming.recv()).await.unwrap().id(), 5);
    assert!(!server.is_closed());
}

#[tokio::test]
async fn fin_and_unidirectional_on_syn_stream() {
    let (mut raw, _server, mut incoming) = raw_client();
    raw.send(syn_stream(1, FLAG_FIN, vec![h("streamtype", "error")]))
        .await;
    let mut s = within("accept", incoming.recv()).await.unwrap();
    // Nothing will come from the peer; this side may still write.
    assert_eq!(within("read", s.read()).await, None);
    s.write(b"status").await.unwrap();

    raw.send(syn_stream(
        3,
        FLAG_UNIDIRECTIONAL,
        vec![h("streamtype", "stdin")],
    ))
    .await;
    let u = within("accept", incoming.recv()).await.unwrap();
    assert_eq!(u.write(b"x").await, Err(SpdyError::WriteClosed));
}

#[tokio::test]
async fn no_flow_control_windows_are_ignored() {
    // spdystream never sends WINDOW_UPDATE: a sender that waited for one would stall after the
    // SPDY/3 default window of 64 KiB. SETTINGS announcing a small window change nothing.
    let (mut raw, _server, mut incoming) = raw_client();
    let mut settings = 1u32.to_be_bytes().to_vec();
    settings.extend_from_slice(&7u32.to_be_bytes()); // SETTINGS_INITIAL_WINDOW_SIZE
    settings.extend_from_slice(&1024u32.to_be_bytes());
    raw.send_raw(&control(4, 0, &settings)).await;
    for stream_id in [0, 1] {
        // Stream 0 is SPDY/3.1's session window.
        raw.send(Frame::WindowUpdate {
            stream_id,
            delta: 10,
        })
        .await;
    }
    raw.send(syn_stream(1, 0, vec![h("streamtype", "stdout")]))
        .await;
    let s = within("accept", incoming.recv()).await.unwrap();
    let payload = pattern(1 << 20, 3);
    let p2 = payload.clone();
    let writer = tokio::spawn(async move {
        s.write(&p2).await.unwrap();
        s.close().await.unwrap();
    });
    let mut got = Vec::new();
    loop {
        match raw.next().await {
            Some(Frame::Data { data, flags, .. }) => {
                got.extend_from_slice(&data);
                if flags & FLAG_FIN != 0 {
                    break;
                }
            }
            Some(Frame::SynReply { .. }) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    within("writer", writer).await.unwrap();
    assert!(got == payload);
}

#[tokio::test]
async fn big_data_frames_from_the_peer_are_accepted() {
    let (mut raw, _server, mut incoming) = raw_client();
    raw.send(syn_stream(1, 0, vec![h("streamtype", "stdin")]))
        .await;
    let s = within("accept", incoming.recv()).await.unwrap();
    let payload = pattern(3 << 20, 9);
    let p2 = payload.clone();
    // One 3 MiB frame, as spdystream writes one frame per Write call.
    let sender = tokio::spawn(async move {
        raw.send(Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: Bytes::from(p2),
        })
        .await;
        raw
    });
    let (mut r, _w) = s.split();
    let got = within("read", read_all(&mut r)).await;
    within("sender", sender).await.unwrap();
    assert!(got == payload);
}

#[tokio::test]
async fn a_reader_left_behind_does_not_hold_back_a_stream_that_is_read() {
    // One stream's reader is dropped: what arrives for it is discarded, so the connection is
    // not blocked on it and the other stream gets all its data.
    let (client, _ci, _server, mut server_in) = pair(16 * 1024);
    let a = within("open", client.open(vec![h("streamtype", "a")]))
        .await
        .unwrap();
    let b = within("open", client.open(vec![h("streamtype", "b")]))
        .await
        .unwrap();
    let sa = within("accept", server_in.recv()).await.unwrap();
    let sb = within("accept", server_in.recv()).await.unwrap();
    let (sa_reader, _sa_writer) = sa.split();
    drop(sa_reader);
    let (mut sb_reader, _sb_writer) = sb.split();
    let big = pattern(4 << 20, 5);
    let big2 = big.clone();
    let writer = tokio::spawn(async move {
        a.write(&big2).await.unwrap();
        b.write(&big2).await.unwrap();
        b.close().await.unwrap();
    });
    let got = within("read b", read_all(&mut sb_reader)).await;
    within("writer", writer).await.unwrap();
    assert!(got == big);
}

#[tokio::test]
async fn close_sends_resets_and_goaway_and_ends_the_peer_session() {
    let (mut raw_server, client, _ci) = {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (client, ci) = Session::new(a, Role::Client);
        (RawPeer::new(b), client, ci)
    };
    let opener = {
        let client = client.clone();
        tokio::spawn(async move { client.open(vec![h("streamtype", "stdin")]).await })
    };
    let Some(Frame::SynStream {
        stream_id, headers, ..
    }) = raw_server.next().await
    else {
        panic!("expected SYN_STREAM")
    };
    assert_eq!((stream_id, headers), (1, vec![h("streamtype", "stdin")]));
    raw_server
        .send(Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: vec![],
        })
        .await;
    let stream = within("open", opener).await.unwrap().unwrap();
    within("close", client.close()).await;
    assert!(client.is_closed());
    assert_eq!(stream.write(b"x").await, Err(SpdyError::SessionClosed));
    assert_eq!(
        raw_server.rest().await,
        vec![
            Frame::RstStream {
                stream_id: 1,
                status: RstStatus::Cancel.code()
            },
            Frame::GoAway {
                last_good_stream_id: 0,
                status: 0
            },
        ]
    );
}

#[tokio::test]
async fn goaway_from_the_peer_ends_the_session() {
    let (client, _ci, server, mut server_in) = pair(1 << 16);
    let c = within("open", client.open(vec![h("streamtype", "stdout")]))
        .await
        .unwrap();
    let s = within("accept", server_in.recv()).await.unwrap();
    s.write(b"last words").await.unwrap();
    let (mut cr, _cw) = c.split();
    // Data sent before the GOAWAY is still read.
    assert_eq!(
        within("data", cr.read()).await.as_deref(),
        Some(&b"last words"[..])
    );
    within("server close", server.close()).await;
    within("client sees the end", client.closed()).await;
    assert_eq!(within("read", cr.read()).await, None);
    assert_eq!(
        client.open(vec![h("streamtype", "x")]).await.unwrap_err(),
        SpdyError::SessionClosed
    );
    assert_eq!(
        client.ping(Duration::from_secs(1)).await,
        Err(SpdyError::SessionClosed)
    );
}

#[tokio::test]
async fn last_good_stream_id_is_the_last_accepted() {
    let (mut raw, server, mut incoming) = raw_client();
    raw.send(syn_stream(1, 0, vec![])).await;
    raw.send(syn_stream(5, 0, vec![])).await;
    within("accept", incoming.recv()).await.unwrap();
    within("accept", incoming.recv()).await.unwrap();
    within("close", server.close()).await;
    let frames = raw.rest().await;
    assert_eq!(
        frames.last(),
        Some(&Frame::GoAway {
            last_good_stream_id: 5,
            status: 0
        })
    );
}

#[tokio::test]
async fn end_of_connection_ends_the_session() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (server, mut incoming) = Session::new(b, Role::Server);
    let mut raw = RawPeer::new(a);
    raw.send(syn_stream(1, 0, vec![h("streamtype", "stdin")]))
        .await;
    let s = within("accept", incoming.recv()).await.unwrap();
    drop(raw);
    within("closed", server.closed()).await;
    let (mut r, w) = s.split();
    assert_eq!(within("read", r.read()).await, None);
    assert_eq!(w.write(b"x").await, Err(SpdyError::SessionClosed));
    assert!(within("no more streams", incoming.recv()).await.is_none());
}

#[tokio::test]
async fn open_times_out_without_reply() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (client, _ci) = Session::new(a, Role::Client);
    let mut raw = RawPeer::new(b);
    client.set_open_timeout(Duration::from_millis(200));
    let err = within("open", client.open(vec![h("streamtype", "error")]))
        .await
        .unwrap_err();
    assert_eq!(err, SpdyError::Timeout);
    assert!(matches!(
        raw.next().await,
        Some(Frame::SynStream { stream_id: 1, .. })
    ));
    // The stream given up on is cancelled.
    assert_eq!(
        raw.next().await,
        Some(Frame::RstStream {
            stream_id: 1,
            status: RstStatus::Cancel.code()
        })
    );
}

#[tokio::test]
async fn idle_timeout_closes_an_idle_session_but_not_a_live_one() {
    let (client, _ci, server, _si) = pair(1 << 16);
    server.set_idle_timeout(Some(Duration::from_secs(1)));
    // Pings every 100 ms (kubectl pings every 5 s) keep it open well past the timeout.
    for _ in 0..20 {
        client.ping(Duration::from_secs(5)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!server.is_closed());
    within("idle close", server.closed()).await;
    within("client sees GOAWAY", client.closed()).await;
}

// ---------------------------------------------------------------------------------------------
// Malformed input ends the session, with GOAWAY PROTOCOL_ERROR, never a panic.

async fn expect_protocol_error(bytes: Vec<u8>) {
    let (mut raw, server, _incoming) = raw_client();
    raw.send_raw(&bytes).await;
    within("session ends", server.closed()).await;
    let frames = raw.rest().await;
    assert_eq!(
        frames.last(),
        Some(&Frame::GoAway {
            last_good_stream_id: 0,
            status: GOAWAY_PROTOCOL_ERROR
        }),
        "frames: {frames:?}"
    );
}

#[tokio::test]
async fn bad_version_ends_the_session() {
    let mut bytes = control(6, 0, &1u32.to_be_bytes());
    bytes[1] = 2;
    expect_protocol_error(bytes).await;
}

#[tokio::test]
async fn oversized_control_frame_ends_the_session() {
    // 16 MiB - 1 declared; nothing else needs to arrive.
    expect_protocol_error(vec![0x80, 0x03, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff]).await;
}

#[tokio::test]
async fn garbage_header_block_ends_the_session() {
    let mut body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(b"\x12\x34not zlib at all");
    expect_protocol_error(control(TYPE_SYN_STREAM, 0, &body)).await;
}

#[tokio::test]
async fn header_stream_naming_another_dictionary_ends_the_session() {
    // FDICT with an id that is not the SPDY/3 dictionary's (Go's zlib reader: ErrDictionary).
    let mut d = HeaderDeflater::new().unwrap();
    let mut compressed = d
        .compress(&encode_header_block(&[h("streamtype", "error")]).unwrap())
        .unwrap();
    compressed[2..6].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    let mut body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&compressed);
    expect_protocol_error(control(TYPE_SYN_STREAM, 0, &body)).await;
}

#[tokio::test]
async fn header_stream_without_a_preset_dictionary_is_read() {
    // Without FDICT, Go's zlib reader ignores the dictionary it was given; so does this one.
    let mut z = flate2::Compress::new(flate2::Compression::best(), true);
    let block = encode_header_block(&[h("streamtype", "error")]).unwrap();
    let mut out = Vec::with_capacity(1024);
    z.compress_vec(&block, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    assert_eq!(out[1] & 0x20, 0, "no FDICT");
    let mut body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&out);
    let (mut raw, _server, mut incoming) = raw_client();
    raw.send_raw(&control(TYPE_SYN_STREAM, 0, &body)).await;
    let s = within("accept", incoming.recv()).await.expect("stream");
    assert_eq!(s.header("streamtype"), Some("error"));
}

#[tokio::test]
async fn truncated_header_block_ends_the_session() {
    let mut d = HeaderDeflater::new().unwrap();
    let mut block = encode_header_block(&[h("streamtype", "error")]).unwrap();
    block.truncate(block.len() - 3); // the value is cut short
    let mut body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    body.extend(d.compress(&block).unwrap());
    expect_protocol_error(control(TYPE_SYN_STREAM, 0, &body)).await;

    // A header count far beyond the block's content.
    let mut d = HeaderDeflater::new().unwrap();
    let mut body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    body.extend(d.compress(&u32::MAX.to_be_bytes()).unwrap());
    expect_protocol_error(control(TYPE_SYN_STREAM, 0, &body)).await;
}

#[tokio::test]
async fn compressed_header_bomb_ends_the_session() {
    // A few KiB that inflate past the header block limit.
    let mut d = HeaderDeflater::new().unwrap();
    let mut block = 1u32.to_be_bytes().to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    block.push(b'x');
    let len = 4 << 20;
    block.extend_from_slice(&(len as u32).to_be_bytes());
    block.extend(std::iter::repeat_n(b'a', len));
    let compressed = d.compress(&block).unwrap();
    assert!(compressed.len() < 64 * 1024);
    let mut body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    body.extend(compressed);
    expect_protocol_error(control(TYPE_SYN_STREAM, 0, &body)).await;
}

#[tokio::test]
async fn invalid_headers_and_fields_end_the_session() {
    // Upper-case names and hop-by-hop headers are refused by spdystream's framer.
    for headers in [
        vec![h("StreamType", "error")],
        vec![h("connection", "close")],
        vec![h("host", "x")],
    ] {
        let mut d = HeaderDeflater::new().unwrap();
        let mut raw_block = Vec::new();
        raw_block.extend_from_slice(&1u32.to_be_bytes());
        raw_block.extend_from_slice(&(headers[0].0.len() as u32).to_be_bytes());
        raw_block.extend_from_slice(headers[0].0.as_bytes());
        raw_block.extend_from_slice(&(headers[0].1.len() as u32).to_be_bytes());
        raw_block.extend_from_slice(headers[0].1.as_bytes());
        let mut body = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        body.extend(d.compress(&raw_block).unwrap());
        expect_protocol_error(control(TYPE_SYN_STREAM, 0, &body)).await;
    }
    // Zero stream ids, short fixed fields, a PING with flags, a zero RST status.
    expect_protocol_error(vec![0, 0, 0, 0, 0x01, 0, 0, 0]).await;
    expect_protocol_error(control(TYPE_SYN_STREAM, 0, &[0, 0, 0, 1])).await;
    expect_protocol_error(control(6, 1, &1u32.to_be_bytes())).await;
    expect_protocol_error(control(3, 0, &[0, 0, 0, 1, 0, 0, 0, 0])).await;
    expect_protocol_error(control(7, 0, &[0, 0, 0, 1])).await;
}

#[tokio::test]
async fn truncated_frame_at_end_of_connection_ends_the_session() {
    let (mut raw, server, _incoming) = raw_client();
    raw.send_raw(&[0x80, 0x03, 0x00, 0x06, 0x00, 0x00]).await;
    drop(raw);
    within("session ends", server.closed()).await;
}

#[tokio::test]
async fn unknown_control_frames_are_skipped() {
    let (mut raw, server, mut incoming) = raw_client();
    raw.send_raw(&control(0x0a, 0, b"credential frame body"))
        .await;
    raw.send(syn_stream(1, 0, vec![h("streamtype", "data")]))
        .await;
    assert_eq!(within("accept", incoming.recv()).await.unwrap().id(), 1);
    assert!(!server.is_closed());
}

#[tokio::test]
async fn random_bytes_never_panic() {
    for seed in 1..40u32 {
        let mut bytes = pattern(2000, seed);
        // Half of them look like SPDY/3 control frames at first.
        if seed % 2 == 0 {
            bytes[0] = 0x80;
            bytes[1] = 0x03;
            bytes[5] = 0;
        }
        let (mut raw, server, _incoming) = raw_client();
        raw.send_raw(&bytes).await;
        drop(raw);
        within("session ends", server.closed()).await;
    }
}

#[test]
fn frame_errors_are_reported_not_panicked() {
    let mut inflater = HeaderInflater::new();
    for ty in 1..12u16 {
        for len in 0..12usize {
            let body = vec![0xffu8; len];
            let _ = decode_control(ty, 0, &body, &mut inflater);
            let _ = decode_control(ty, 0xff, &body, &mut inflater);
        }
    }
    assert!(matches!(
        decode_control(TYPE_SYN_STREAM, 0, &[0; 3], &mut HeaderInflater::new()),
        Err(FrameError::InvalidControlFrame(1))
    ));
}

// ---------------------------------------------------------------------------------------------
// Interoperability with real kubectl binaries (client-go over moby/spdystream): 1.27, and 1.33
// (which tries WebSockets first and falls back to SPDY when the upgrade is refused), from
// KUBESPEC_KUBECTL_DIR or where the google-cloud-cli package installs them, as the CLI tests.
// A stand-in apiserver on loopback answers discovery and the pod, upgrades exec and
// port-forward requests to SPDY/3.1 and serves them with a server session: exec runs `cat`
// (stdin copied to stdout, then a v4 Success status on the error stream), port-forward echoes.

mod kubectl_interop {
    use std::process::Stdio;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const POD: &str = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"foo","namespace":"default","uid":"0b5e6a1c-0000-4000-8000-000000000001"},"spec":{"containers":[{"name":"c","image":"busybox"}]},"status":{"phase":"Running","containerStatuses":[{"name":"c","ready":true,"restartCount":0,"image":"busybox","imageID":"","state":{"running":{}}}]}}"#;
    const API_V1: &str = r#"{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list"],"shortNames":["po"]},{"name":"pods/exec","singularName":"","namespaced":true,"kind":"PodExecOptions","verbs":["create","get"]},{"name":"pods/portforward","singularName":"","namespaced":true,"kind":"PodPortForwardOptions","verbs":["create","get"]}]}"#;

    async fn respond(conn: &mut TcpStream, status: &str, body: &str) {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(head.as_bytes()).await;
        let _ = conn.write_all(body.as_bytes()).await;
    }

    /// Reads a request head byte by byte, so nothing after it is consumed.
    async fn request_head(conn: &mut TcpStream) -> Option<String> {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            if conn.read(&mut b).await.ok()? == 0 || head.len() > 64 * 1024 {
                return None;
            }
            head.push(b[0]);
        }
        Some(String::from_utf8_lossy(&head).into_owned())
    }

    async fn serve_exec(session: Session, mut incoming: mpsc::Receiver<Stream>) {
        let mut streams: HashMap<String, Stream> = HashMap::new();
        while streams.len() < 4 {
            let Some(s) = incoming.recv().await else {
                return;
            };
            let ty = s.header("streamtype").unwrap_or_default().to_string();
            streams.insert(ty, s);
        }
        let (mut stdin, _) = streams.remove("stdin").expect("stdin").split();
        let (_, stdout) = streams.remove("stdout").expect("stdout").split();
        let error = streams.remove("error").expect("error");
        while let Some(chunk) = stdin.read().await {
            stdout.write(&chunk).await.expect("stdout");
        }
        stdout.close().await.expect("close stdout");
        error
            .write(br#"{"metadata":{},"status":"Success"}"#)
            .await
            .expect("status");
        error.close().await.expect("close error");
        session.close().await;
    }

    async fn serve_port_forward(session: Session, mut incoming: mpsc::Receiver<Stream>) {
        let mut tasks = Vec::new();
        while let Some(s) =
            tokio::select! { s = incoming.recv() => s, _ = session.closed() => None }
        {
            match s.header("streamtype") {
                Some("data") => tasks.push(tokio::spawn(async move {
                    let (mut r, w) = s.split();
                    while let Some(chunk) = r.read().await {
                        if w.write(&chunk).await.is_err() {
                            return;
                        }
                    }
                    let _ = w.close().await;
                })),
                _ => {
                    let _ = s.close().await;
                }
            }
        }
    }

    async fn apiserver(listener: TcpListener) {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Some(head) = request_head(&mut conn).await else {
                    return;
                };
                let line = head.lines().next().unwrap_or_default().to_string();
                let path = line.split(' ').nth(1).unwrap_or_default();
                let path = path.split('?').next().unwrap_or_default().to_string();
                let upgrade = head.to_ascii_lowercase().contains("upgrade: spdy/3.1");
                match path.as_str() {
                    "/api" => respond(&mut conn, "200 OK", r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]}"#).await,
                    "/apis" => respond(&mut conn, "200 OK", r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#).await,
                    "/api/v1" => respond(&mut conn, "200 OK", API_V1).await,
                    "/api/v1/namespaces/default/pods/foo" => respond(&mut conn, "200 OK", POD).await,
                    p if upgrade && (p.ends_with("/exec") || p.ends_with("/portforward")) => {
                        let protocol = if p.ends_with("/exec") { "v4.channel.k8s.io" } else { "portforward.k8s.io" };
                        let head = format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\n\r\n");
                        if conn.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let (session, incoming) = Session::new(conn, Role::Server);
                        session.set_idle_timeout(Some(Duration::from_secs(60)));
                        if p.ends_with("/exec") {
                            serve_exec(session, incoming).await;
                        } else {
                            serve_port_forward(session, incoming).await;
                        }
                    }
                    _ => respond(&mut conn, "404 Not Found", r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#).await,
                }
            });
        }
    }

    const KUBECTL_VERSIONS: [&str; 2] = ["1.27", "1.33"];

    fn kubectl_binary(version: &str) -> std::path::PathBuf {
        let dir = std::env::var("KUBESPEC_KUBECTL_DIR")
            .unwrap_or_else(|_| "/usr/lib/google-cloud-sdk/bin".into());
        let path = std::path::Path::new(&dir).join(format!("kubectl.{version}"));
        assert!(
            path.exists(),
            "kubectl {version} is missing at {}: install google-cloud-cli with the 'kubectl' component, \
             or set KUBESPEC_KUBECTL_DIR to a directory holding kubectl.<version> binaries",
            path.display()
        );
        path
    }

    async fn start() -> (tempfile::TempDir, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: default\nusers:\n- name: u\n  user: {{}}\ncurrent-context: c\n"
        );
        std::fs::write(dir.path().join("config"), kubeconfig).unwrap();
        (dir, tokio::spawn(apiserver(listener)))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kubectl_exec_streams_stdin_through_cat() {
        let (dir, server) = start().await;
        for (kubectl, size) in KUBECTL_VERSIONS
            .iter()
            .flat_map(|v| [(kubectl_binary(v), 6usize), (kubectl_binary(v), 5 << 20)])
        {
            let input = if size == 6 {
                b"hello\n".to_vec()
            } else {
                pattern(size, 11)
            };
            let mut child = tokio::process::Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(dir.path().join("config"))
                .args(["exec", "-i", "foo", "-c", "c", "--", "cat"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("kubectl runs");
            let mut stdin = child.stdin.take().unwrap();
            let input2 = input.clone();
            let feeder = tokio::spawn(async move {
                stdin.write_all(&input2).await.unwrap();
                drop(stdin);
            });
            let out = within("kubectl exec", child.wait_with_output())
                .await
                .unwrap();
            within("feeder", feeder).await.unwrap();
            assert!(
                out.status.success(),
                "{} exec failed: {}",
                kubectl.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout.len(), input.len());
            assert!(out.stdout == input, "output differs from input");
        }
        server.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kubectl_port_forward_echoes() {
        let (dir, server) = start().await;
        for version in KUBECTL_VERSIONS {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let local = probe.local_addr().unwrap().port();
            drop(probe);
            let mut child = tokio::process::Command::new(kubectl_binary(version))
                .arg("--kubeconfig")
                .arg(dir.path().join("config"))
                .args(["port-forward", "pod/foo", &format!("{local}:80")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("kubectl runs");
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let first = within("forwarding starts", lines.next_line())
                .await
                .unwrap()
                .unwrap_or_default();
            assert!(
                first.starts_with("Forwarding from"),
                "kubectl {version}: {first}"
            );
            // Several connections over the one session, each a pair of streams.
            for (i, size) in [5usize, 3 << 20, 1000].into_iter().enumerate() {
                let data = pattern(size, 20 + i as u32);
                let conn = within("connect", TcpStream::connect(("127.0.0.1", local)))
                    .await
                    .unwrap();
                let (mut r, mut w) = conn.into_split();
                let d2 = data.clone();
                let writer = tokio::spawn(async move {
                    w.write_all(&d2).await.unwrap();
                    w.shutdown().await.unwrap();
                });
                let mut back = Vec::new();
                within("echo", r.read_to_end(&mut back)).await.unwrap();
                within("writer", writer).await.unwrap();
                assert_eq!(back.len(), data.len(), "kubectl {version}");
                assert!(back == data, "kubectl {version}: echo differs");
            }
            child.start_kill().unwrap();
            let _ = within("kubectl exits", child.wait()).await;
        }
        server.abort();
    }
}
