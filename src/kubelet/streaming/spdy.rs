//! SPDY/3.1 sessions as moby/spdystream (client-go's `httpstream/spdy`) speaks them, for the
//! kubelet's exec, attach and port-forward streams after the HTTP upgrade to `SPDY/3.1`.
//!
//! A [`Session`] runs over an upgraded connection in either [`Role`]: the client opens odd
//! stream ids and sends odd ping ids, the server even ones. Frames are read by one task and
//! written by another; header blocks go through one zlib stream per direction primed with the
//! SPDY/3 dictionary (see `frame`).
//!
//! Behaviour follows spdystream rather than the letter of SPDY/3.1 where they differ:
//! - streams the peer opens get a SYN_REPLY with empty headers once accepted, before anything
//!   else is sent on them (spdystream's server replies right after its stream handler returns);
//!   a rejected stream is reset with CANCEL, as `Stream.Reset` does;
//! - no flow control: WINDOW_UPDATE and SETTINGS are read and ignored, never sent. A stream
//!   whose reader falls behind stops the reading of the whole connection (TCP pushes back on
//!   the peer), as spdystream's unbuffered hand-off does; buffers are bounded per stream and
//!   per session;
//! - a PING with the peer's parity is echoed; GOAWAY or the end of the connection ends the
//!   session: readers see the end of their streams after the data already received;
//! - a local reset sends RST_STREAM CANCEL unless this side already sent FIN (spdystream's
//!   `resetStream`); [`Session::close`] resets every stream not finished here, then sends
//!   GOAWAY, as apimachinery's `connection.Close`;
//! - a SYN_STREAM whose id is lower than one already seen is answered with RST_STREAM
//!   PROTOCOL_ERROR and ignored; a frame that cannot be parsed (wrong version, bad lengths,
//!   a header block that does not decompress, upper-case or hop-by-hop header names, stream id
//!   zero) ends the session with GOAWAY PROTOCOL_ERROR, where spdystream stops reading and its
//!   owner closes. Control frames of a type SPDY/3 does not define are skipped, as the spec
//!   says (spdystream's framer fails on them; client-go sends none).
//!
//! Limits keep a hostile peer from growing memory: control frames up to 1 MiB, header blocks up
//! to 1 MiB decompressed, data frames up to the format's 16 MiB, 1024 streams, and received
//! data buffered up to 1 MiB per stream and 32 MiB per session before reading pauses.

mod frame;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::{CancellationToken, PollSender};
use tracing::{debug, trace, warn};

use self::frame::{
    encode_frame, read_frame, Frame, FrameError, HeaderDeflater, HeaderInflater, FLAG_FIN,
    FLAG_UNIDIRECTIONAL, GOAWAY_OK, GOAWAY_PROTOCOL_ERROR,
};

/// How long [`Session::open`] waits for the peer's SYN_REPLY unless changed with
/// [`Session::set_open_timeout`] (client-go's `createStreamResponseTimeout`).
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Streams tracked at once; a SYN_STREAM beyond this is refused with REFUSED_STREAM.
const MAX_STREAMS: usize = 1024;
/// Received bytes a stream buffers before the connection stops being read.
const STREAM_RECV_BUDGET: usize = 1 << 20;
/// Received bytes all streams of a session buffer before the connection stops being read.
const SESSION_RECV_BUDGET: usize = 32 << 20;
/// The largest data frame this side sends; bigger writes are split.
const WRITE_CHUNK: usize = 64 * 1024;
/// Frames queued for the writer task.
const WRITE_QUEUE: usize = 128;
/// Bytes gathered into one write on the connection.
const WRITE_BATCH: usize = 256 * 1024;
/// Streams opened by the peer waiting for the owner to take them.
const INCOMING_QUEUE: usize = 64;
/// How long an ending session may take to write what it queued before the connection is
/// dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The highest stream id (31 bits).
const MAX_STREAM_ID: u32 = 0x7fff_ffff;

/// Which end of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that accepted the upgrade (the kubelet): even stream and ping ids.
    Server,
    /// The end that asked for the upgrade (kubectl): odd stream and ping ids.
    Client,
}

impl Role {
    fn first_own_id(self) -> u32 {
        match self {
            Role::Server => 2,
            Role::Client => 1,
        }
    }

    fn first_peer_id(self) -> u32 {
        match self {
            Role::Server => 1,
            Role::Client => 2,
        }
    }
}

/// A RST_STREAM status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RstStatus {
    /// 1: PROTOCOL_ERROR.
    ProtocolError,
    /// 2: INVALID_STREAM.
    InvalidStream,
    /// 3: REFUSED_STREAM.
    RefusedStream,
    /// 4: UNSUPPORTED_VERSION.
    UnsupportedVersion,
    /// 5: CANCEL, what spdystream sends when a stream is reset.
    Cancel,
    /// 6: INTERNAL_ERROR.
    InternalError,
    /// 7: FLOW_CONTROL_ERROR.
    FlowControlError,
    /// 8: STREAM_IN_USE.
    StreamInUse,
    /// 9: STREAM_ALREADY_CLOSED.
    StreamAlreadyClosed,
    /// 10: INVALID_CREDENTIALS.
    InvalidCredentials,
    /// 11: FRAME_TOO_LARGE.
    FrameTooLarge,
    /// A code SPDY/3.1 does not define.
    Other(u32),
}

impl RstStatus {
    /// The status as it travels.
    pub fn code(self) -> u32 {
        match self {
            RstStatus::ProtocolError => 1,
            RstStatus::InvalidStream => 2,
            RstStatus::RefusedStream => 3,
            RstStatus::UnsupportedVersion => 4,
            RstStatus::Cancel => 5,
            RstStatus::InternalError => 6,
            RstStatus::FlowControlError => 7,
            RstStatus::StreamInUse => 8,
            RstStatus::StreamAlreadyClosed => 9,
            RstStatus::InvalidCredentials => 10,
            RstStatus::FrameTooLarge => 11,
            RstStatus::Other(code) => code,
        }
    }

    /// The status for a code read from the wire.
    pub fn from_code(code: u32) -> Self {
        match code {
            1 => RstStatus::ProtocolError,
            2 => RstStatus::InvalidStream,
            3 => RstStatus::RefusedStream,
            4 => RstStatus::UnsupportedVersion,
            5 => RstStatus::Cancel,
            6 => RstStatus::InternalError,
            7 => RstStatus::FlowControlError,
            8 => RstStatus::StreamInUse,
            9 => RstStatus::StreamAlreadyClosed,
            10 => RstStatus::InvalidCredentials,
            11 => RstStatus::FrameTooLarge,
            other => RstStatus::Other(other),
        }
    }
}

impl fmt::Display for RstStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

/// Why a session or stream operation failed. The messages of the cases spdystream also has
/// are spdystream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpdyError {
    /// The session has ended (closed here, GOAWAY or end of connection from the peer, or a
    /// protocol error).
    #[error("connection closed")]
    SessionClosed,
    /// The stream was reset, by the peer (with its status) or here (CANCEL).
    #[error("Stream reset")]
    Reset(RstStatus),
    /// This side already sent FIN on the stream.
    #[error("Write on closed stream")]
    WriteClosed,
    /// The peer did not answer in time (SYN_REPLY for [`Session::open`], PING for
    /// [`Session::ping`]).
    #[error("Timeout occurred")]
    Timeout,
    /// Every stream id of this side has been used.
    #[error("Unable to get new stream id")]
    StreamIdsExhausted,
    /// Too many streams are open on the session.
    #[error("too many open streams")]
    TooManyStreams,
}

/// What the writer task is asked to do.
enum Cmd {
    Frame(Frame),
    /// Write `goaway` if given, then everything queued before, then shut the connection down.
    Shutdown(Option<Frame>),
}

/// Decides whether a stream the peer opened is accepted; `Err` carries the reason logged when
/// it is rejected (reset with CANCEL), as a `httpstream.NewStreamHandler` returning an error.
pub type Acceptor = Box<dyn Fn(&Stream) -> Result<(), String> + Send + Sync>;

/// A SPDY/3.1 session over one connection. Cheap to clone; every clone is the same session.
///
/// The session runs until [`Session::close`], an idle timeout, GOAWAY from the peer, the end of
/// the connection or a protocol error; dropping the handles does not close it.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.shared.role)
            .field("closed", &self.shared.ending.is_cancelled())
            .finish()
    }
}

struct Shared {
    role: Role,
    tx: mpsc::Sender<Cmd>,
    state: Mutex<State>,
    /// Bytes received and not yet read, over all streams.
    buffered: AtomicUsize,
    /// Signalled when a reader takes data (or a stream stops wanting it).
    space: Notify,
    /// Cancelled when the session ends: no frames are read any more, writes fail.
    ending: CancellationToken,
    /// Cancelled when the writer task has finished with the connection.
    done: CancellationToken,
    started: Instant,
    last_activity_ms: AtomicU64,
    idle_timeout: watch::Sender<Option<Duration>>,
}

struct State {
    streams: HashMap<u32, Arc<StreamShared>>,
    next_stream_id: u32,
    /// The lowest id the peer may open next (spdystream's `receivedStreamId`).
    next_peer_stream_id: u32,
    next_ping_id: u32,
    pings: HashMap<u32, oneshot::Sender<()>>,
    replies: HashMap<u32, oneshot::Sender<Result<(), SpdyError>>>,
    open_timeout: Duration,
    ended: bool,
}

impl State {
    /// The id GOAWAY reports as the last stream accepted from the peer.
    fn last_good_stream_id(&self) -> u32 {
        self.next_peer_stream_id.saturating_sub(2)
    }
}

struct StreamShared {
    id: u32,
    headers: Vec<(String, String)>,
    recv: Mutex<Recv>,
    send: Mutex<SendState>,
}

#[derive(Default)]
struct Recv {
    queue: VecDeque<Bytes>,
    buffered: usize,
    /// No more data will arrive: FIN, a reset or the end of the session.
    closed: bool,
    /// Nobody reads any more: data that arrives is dropped.
    reader_gone: bool,
    waker: Option<Waker>,
}

#[derive(Default)]
struct SendState {
    /// FIN was queued (or the peer opened the stream unidirectional).
    fin: bool,
    reset: Option<RstStatus>,
}

impl StreamShared {
    fn new(id: u32, headers: Vec<(String, String)>, recv_closed: bool, send_fin: bool) -> Self {
        Self {
            id,
            headers,
            recv: Mutex::new(Recv {
                closed: recv_closed,
                ..Recv::default()
            }),
            send: Mutex::new(SendState {
                fin: send_fin,
                reset: None,
            }),
        }
    }

    fn is_done(&self) -> bool {
        let send_done = {
            let send = self.send.lock();
            send.fin || send.reset.is_some()
        };
        send_done && self.recv.lock().closed
    }

    /// Marks the receiving side closed; with `discard`, drops what was buffered. Returns the
    /// number of bytes dropped.
    fn close_recv(&self, discard: bool) -> usize {
        let mut recv = self.recv.lock();
        recv.closed = true;
        let dropped = if discard {
            recv.queue.clear();
            std::mem::take(&mut recv.buffered)
        } else {
            0
        };
        if let Some(w) = recv.waker.take() {
            w.wake();
        }
        dropped
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Shared {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Queues a command from a context that cannot wait; if the queue is full, a task waits.
    fn enqueue_nowait(&self, cmd: Cmd) {
        match self.tx.try_send(cmd) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    let tx = self.tx.clone();
                    let done = self.done.clone();
                    handle.spawn(async move {
                        tokio::select! {
                            _ = tx.send(cmd) => {}
                            _ = done.cancelled() => {}
                        }
                    });
                }
            }
        }
    }

    async fn send(&self, cmd: Cmd) -> Result<(), SpdyError> {
        self.tx
            .send(cmd)
            .await
            .map_err(|_| SpdyError::SessionClosed)
    }

    fn stream(&self, id: u32) -> Option<Arc<StreamShared>> {
        self.state.lock().streams.get(&id).cloned()
    }

    /// Forgets `st` once neither side will send on it any more.
    fn remove_if_done(&self, st: &Arc<StreamShared>) {
        let mut state = self.state.lock();
        if st.is_done()
            && state
                .streams
                .get(&st.id)
                .is_some_and(|cur| Arc::ptr_eq(cur, st))
        {
            state.streams.remove(&st.id);
            trace!(stream = st.id, "SPDY stream finished");
        }
    }

    fn forget(&self, st: &Arc<StreamShared>) {
        let mut state = self.state.lock();
        if state
            .streams
            .get(&st.id)
            .is_some_and(|cur| Arc::ptr_eq(cur, st))
        {
            state.streams.remove(&st.id);
        }
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.buffered.fetch_sub(bytes, Ordering::AcqRel);
            self.space.notify_one();
        }
    }

    /// Resets `st` from this side: RST_STREAM with `status` unless this side already finished.
    fn local_reset(&self, st: &Arc<StreamShared>, status: RstStatus) {
        let send_rst = {
            let mut send = st.send.lock();
            let send_rst = !send.fin && send.reset.is_none();
            send.reset.get_or_insert(status);
            send_rst
        };
        let dropped = st.close_recv(true);
        self.release(dropped);
        self.space.notify_one();
        self.forget(st);
        if send_rst && !self.ending.is_cancelled() {
            debug!(stream = st.id, %status, "resetting SPDY stream");
            self.enqueue_nowait(Cmd::Frame(Frame::RstStream {
                stream_id: st.id,
                status: status.code(),
            }));
        }
    }

    fn peer_reset(&self, id: u32, status: RstStatus) {
        let (st, reply) = {
            let mut state = self.state.lock();
            (state.streams.remove(&id), state.replies.remove(&id))
        };
        if let Some(reply) = reply {
            let _ = reply.send(Err(SpdyError::Reset(status)));
        }
        let Some(st) = st else {
            trace!(stream = id, "RST_STREAM for an unknown stream");
            return;
        };
        debug!(stream = id, %status, "SPDY stream reset by peer");
        st.send.lock().reset.get_or_insert(status);
        // What already arrived stays readable: spdystream hands data over before it handles
        // the reset that followed it.
        st.close_recv(false);
        self.space.notify_one();
    }

    fn remote_fin(&self, st: &Arc<StreamShared>) {
        st.close_recv(false);
        self.remove_if_done(st);
    }

    /// Hands a data frame to its stream, waiting while buffers are full.
    async fn deliver(&self, id: u32, data: Bytes, fin: bool) {
        let Some(st) = self.stream(id) else {
            trace!(
                stream = id,
                len = data.len(),
                "data for an unknown stream dropped"
            );
            return;
        };
        if !data.is_empty() {
            let len = data.len();
            let mut data = Some(data);
            while let Some(chunk) = data.take() {
                {
                    let mut recv = st.recv.lock();
                    if recv.closed || recv.reader_gone {
                        trace!(stream = id, len, "data for a closed stream dropped");
                        break;
                    }
                    let session = self.buffered.load(Ordering::Acquire);
                    let stream_fits =
                        recv.buffered == 0 || recv.buffered + len <= STREAM_RECV_BUDGET;
                    let session_fits = session == 0 || session + len <= SESSION_RECV_BUDGET;
                    if stream_fits && session_fits {
                        recv.queue.push_back(chunk);
                        recv.buffered += len;
                        self.buffered.fetch_add(len, Ordering::AcqRel);
                        if let Some(w) = recv.waker.take() {
                            w.wake();
                        }
                        break;
                    }
                }
                data = Some(chunk);
                self.space.notified().await;
            }
        }
        if fin {
            self.remote_fin(&st);
        }
    }

    /// Ends the session (once): streams stop receiving, pending opens and pings fail, and the
    /// writer is told to send `goaway` (if given) after what it has queued and shut down.
    fn end(&self, goaway_status: Option<u32>, reason: &str) {
        let (streams, goaway) = {
            let mut state = self.state.lock();
            if state.ended {
                return;
            }
            state.ended = true;
            state.replies.clear();
            state.pings.clear();
            let goaway = goaway_status.map(|status| Frame::GoAway {
                last_good_stream_id: state.last_good_stream_id(),
                status,
            });
            (std::mem::take(&mut state.streams), goaway)
        };
        debug!(role = ?self.role, reason, "SPDY session ending");
        self.ending.cancel();
        for st in streams.values() {
            st.close_recv(false);
        }
        self.space.notify_one();
        self.enqueue_nowait(Cmd::Shutdown(goaway));
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let done = self.done.clone();
            handle.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(SHUTDOWN_GRACE) => done.cancel(),
                    _ = done.cancelled() => {}
                }
            });
        } else {
            self.done.cancel();
        }
    }

    /// As apimachinery's `connection.Close`: reset every stream this side has not finished,
    /// then GOAWAY and shut down.
    async fn close(&self) {
        let streams: Vec<Arc<StreamShared>> = {
            let state = self.state.lock();
            if state.ended {
                return;
            }
            state.streams.values().cloned().collect()
        };
        let resets = async {
            for st in &streams {
                let send_rst = {
                    let mut send = st.send.lock();
                    let send_rst = !send.fin && send.reset.is_none();
                    send.reset.get_or_insert(RstStatus::Cancel);
                    send_rst
                };
                if send_rst {
                    let rst = Frame::RstStream {
                        stream_id: st.id,
                        status: RstStatus::Cancel.code(),
                    };
                    if self.send(Cmd::Frame(rst)).await.is_err() {
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, resets).await;
        self.end(Some(GOAWAY_OK), "closed locally");
    }
}

impl Session {
    /// Runs a session over `io` (an upgraded connection); frames are read and written by tasks
    /// it spawns on the current tokio runtime. Streams the peer opens are all accepted (a
    /// SYN_REPLY is sent before they are handed out) and arrive on the receiver; if the
    /// receiver is dropped, they are reset.
    pub fn new<T>(io: T, role: Role) -> (Session, mpsc::Receiver<Stream>)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Self::start(io, role, None)
    }

    /// As [`Session::new`], but each stream the peer opens is first given to `acceptor`; a
    /// stream it rejects is reset with CANCEL (and the reason logged), never handed out.
    pub fn with_acceptor<T, F>(io: T, role: Role, acceptor: F) -> (Session, mpsc::Receiver<Stream>)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
        F: Fn(&Stream) -> Result<(), String> + Send + Sync + 'static,
    {
        Self::start(io, role, Some(Box::new(acceptor)))
    }

    fn start<T>(io: T, role: Role, acceptor: Option<Acceptor>) -> (Session, mpsc::Receiver<Stream>)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let (idle_tx, idle_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            role,
            tx,
            state: Mutex::new(State {
                streams: HashMap::new(),
                next_stream_id: role.first_own_id(),
                next_peer_stream_id: role.first_peer_id(),
                next_ping_id: role.first_own_id(),
                pings: HashMap::new(),
                replies: HashMap::new(),
                open_timeout: DEFAULT_OPEN_TIMEOUT,
                ended: false,
            }),
            buffered: AtomicUsize::new(0),
            space: Notify::new(),
            ending: CancellationToken::new(),
            done: CancellationToken::new(),
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
            idle_timeout: idle_tx,
        });
        let (read_half, write_half) = tokio::io::split(io);
        let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_QUEUE);
        tokio::spawn(write_loop(shared.clone(), write_half, rx));
        tokio::spawn(read_loop(shared.clone(), read_half, incoming_tx, acceptor));
        tokio::spawn(idle_monitor(shared.clone(), idle_rx));
        (Session { shared }, incoming_rx)
    }

    /// This session's role.
    pub fn role(&self) -> Role {
        self.shared.role
    }

    /// Opens a stream with `headers` (names are sent lowercase) and waits for the peer's
    /// SYN_REPLY, at most the open timeout ([`DEFAULT_OPEN_TIMEOUT`] unless changed); on
    /// timeout the stream is reset. A RST_STREAM instead of the reply fails with
    /// [`SpdyError::Reset`].
    pub async fn open(&self, headers: Vec<(String, String)>) -> Result<Stream, SpdyError> {
        let shared = &self.shared;
        let permit = shared
            .tx
            .reserve()
            .await
            .map_err(|_| SpdyError::SessionClosed)?;
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect();
        let (st, reply, timeout) = {
            let mut state = shared.state.lock();
            if state.ended {
                return Err(SpdyError::SessionClosed);
            }
            let id = state.next_stream_id;
            if id > MAX_STREAM_ID {
                return Err(SpdyError::StreamIdsExhausted);
            }
            if state.streams.len() >= MAX_STREAMS {
                return Err(SpdyError::TooManyStreams);
            }
            state.next_stream_id = id + 2;
            let st = Arc::new(StreamShared::new(id, headers.clone(), false, false));
            state.streams.insert(id, st.clone());
            let (reply_tx, reply_rx) = oneshot::channel();
            state.replies.insert(id, reply_tx);
            // Queued under the lock: ids go on the wire in increasing order.
            permit.send(Cmd::Frame(Frame::SynStream {
                stream_id: id,
                associated_id: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                headers,
            }));
            (st, reply_rx, state.open_timeout)
        };
        match tokio::time::timeout(timeout, reply).await {
            Ok(Ok(Ok(()))) => Ok(Stream::new(shared.clone(), st)),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(SpdyError::SessionClosed),
            Err(_) => {
                shared.state.lock().replies.remove(&st.id);
                shared.local_reset(&st, RstStatus::Cancel);
                Err(SpdyError::Timeout)
            }
        }
    }

    /// Sends a PING and waits for its echo, at most `timeout`; returns the round trip.
    pub async fn ping(&self, timeout: Duration) -> Result<Duration, SpdyError> {
        let shared = &self.shared;
        let permit = shared
            .tx
            .reserve()
            .await
            .map_err(|_| SpdyError::SessionClosed)?;
        let (id, echo) = {
            let mut state = shared.state.lock();
            if state.ended {
                return Err(SpdyError::SessionClosed);
            }
            let id = state.next_ping_id;
            state.next_ping_id = if id > 0x7fff_fffe {
                id - 0x7fff_fffe
            } else {
                id + 2
            };
            let (tx, rx) = oneshot::channel();
            state.pings.insert(id, tx);
            permit.send(Cmd::Frame(Frame::Ping { id }));
            (id, rx)
        };
        let start = Instant::now();
        match tokio::time::timeout(timeout, echo).await {
            Ok(Ok(())) => Ok(start.elapsed()),
            Ok(Err(_)) => Err(SpdyError::SessionClosed),
            Err(_) => {
                shared.state.lock().pings.remove(&id);
                Err(SpdyError::Timeout)
            }
        }
    }

    /// Changes how long [`Session::open`] waits for SYN_REPLY.
    pub fn set_open_timeout(&self, timeout: Duration) {
        self.shared.state.lock().open_timeout = timeout;
    }

    /// Closes the session after `timeout` without a frame read or written (spdystream's
    /// `SetIdleTimeout`; the kubelet passes its streaming connection idle timeout, 4h by
    /// default). `None` turns it off. kubectl pings every 5 s, so a live session is never idle.
    pub fn set_idle_timeout(&self, timeout: Option<Duration>) {
        self.shared
            .idle_timeout
            .send_replace(timeout.filter(|t| !t.is_zero()));
    }

    /// Resets every stream this side has not finished (RST_STREAM CANCEL), sends GOAWAY and
    /// closes the connection once queued frames are written; returns when the connection is
    /// closed (at most a few seconds if the peer stops reading).
    pub async fn close(&self) {
        self.shared.close().await;
        let _ = tokio::time::timeout(
            SHUTDOWN_GRACE + Duration::from_secs(1),
            self.shared.done.cancelled(),
        )
        .await;
    }

    /// Resolves when the session has ended: closed here, GOAWAY or end of connection from the
    /// peer, idle timeout or a protocol error (spdystream's `CloseChan`).
    pub async fn closed(&self) {
        self.shared.ending.cancelled().await;
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.ending.is_cancelled()
    }
}

/// One stream: its headers, and both directions until [`Stream::split`].
pub struct Stream {
    reader: StreamReader,
    writer: StreamWriter,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id())
            .field("headers", &self.headers())
            .finish()
    }
}

impl Stream {
    fn new(shared: Arc<Shared>, st: Arc<StreamShared>) -> Self {
        let poll_tx = PollSender::new(shared.tx.clone());
        Self {
            reader: StreamReader {
                shared: shared.clone(),
                st: st.clone(),
                leftover: Bytes::new(),
            },
            writer: StreamWriter {
                shared,
                st,
                poll_tx,
            },
        }
    }

    /// The stream id (odd when the client opened it).
    pub fn id(&self) -> u32 {
        self.reader.st.id
    }

    /// The headers of the SYN_STREAM that opened the stream (names lowercase; a value holding
    /// several NUL-separated values appears once per value).
    pub fn headers(&self) -> &[(String, String)] {
        &self.reader.st.headers
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.reader.st.headers, name)
    }

    /// Splits the stream so that two tasks can read and write it.
    pub fn split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }

    /// See [`StreamReader::read`].
    pub async fn read(&mut self) -> Option<Bytes> {
        self.reader.read().await
    }

    /// See [`StreamWriter::write`].
    pub async fn write(&self, data: &[u8]) -> Result<(), SpdyError> {
        self.writer.write(data).await
    }

    /// See [`StreamWriter::close`].
    pub async fn close(&self) -> Result<(), SpdyError> {
        self.writer.close().await
    }

    /// See [`StreamWriter::reset`].
    pub fn reset(&self) {
        self.writer.reset()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

/// The receiving half of a stream. Dropping it discards what arrives afterwards.
pub struct StreamReader {
    shared: Arc<Shared>,
    st: Arc<StreamShared>,
    leftover: Bytes,
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("id", &self.st.id)
            .finish()
    }
}

impl StreamReader {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.st.id
    }

    /// The first value of the stream's header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.st.headers, name)
    }

    /// The next data the peer sent, one data frame (or what is left of one) at a time; `None`
    /// after the peer's FIN, a reset or the end of the session, once everything received before
    /// has been read.
    pub async fn read(&mut self) -> Option<Bytes> {
        if !self.leftover.is_empty() {
            return Some(std::mem::take(&mut self.leftover));
        }
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut recv = self.st.recv.lock();
        if let Some(chunk) = recv.queue.pop_front() {
            recv.buffered -= chunk.len();
            drop(recv);
            self.shared.release(chunk.len());
            return Poll::Ready(Some(chunk));
        }
        if recv.closed {
            return Poll::Ready(None);
        }
        if !recv.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            recv.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl AsyncRead for StreamReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.leftover.is_empty() {
            match ready!(this.poll_chunk(cx)) {
                Some(chunk) => this.leftover = chunk,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.leftover.len().min(buf.remaining());
        buf.put_slice(&this.leftover.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        let dropped = {
            let mut recv = self.st.recv.lock();
            recv.reader_gone = true;
            recv.queue.clear();
            std::mem::take(&mut recv.buffered)
        };
        self.shared.release(dropped);
    }
}

/// The sending half of a stream. Dropping it sends nothing: [`StreamWriter::close`] sends FIN,
/// [`StreamWriter::reset`] RST_STREAM, and [`Session::close`] resets what is left open.
pub struct StreamWriter {
    shared: Arc<Shared>,
    st: Arc<StreamShared>,
    poll_tx: PollSender<Cmd>,
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("id", &self.st.id)
            .finish()
    }
}

fn writable(shared: &Shared, send: &SendState) -> Result<(), SpdyError> {
    if shared.ending.is_cancelled() {
        return Err(SpdyError::SessionClosed);
    }
    if let Some(status) = send.reset {
        return Err(SpdyError::Reset(status));
    }
    if send.fin {
        return Err(SpdyError::WriteClosed);
    }
    Ok(())
}

fn io_error(e: SpdyError) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, e)
}

impl StreamWriter {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.st.id
    }

    /// Sends `data` in data frames of at most 64 KiB, waiting while the connection pushes
    /// back. Nothing is sent for empty data.
    pub async fn write(&self, data: &[u8]) -> Result<(), SpdyError> {
        for chunk in data.chunks(WRITE_CHUNK) {
            let permit = self
                .shared
                .tx
                .reserve()
                .await
                .map_err(|_| SpdyError::SessionClosed)?;
            let send = self.st.send.lock();
            writable(&self.shared, &send)?;
            permit.send(Cmd::Frame(Frame::Data {
                stream_id: self.st.id,
                flags: 0,
                data: Bytes::copy_from_slice(chunk),
            }));
        }
        Ok(())
    }

    /// Sends FIN (an empty data frame with FLAG_FIN): this side is done sending; reading goes
    /// on. Fails with [`SpdyError::WriteClosed`] the second time, as spdystream.
    pub async fn close(&self) -> Result<(), SpdyError> {
        let permit = self
            .shared
            .tx
            .reserve()
            .await
            .map_err(|_| SpdyError::SessionClosed)?;
        {
            let mut send = self.st.send.lock();
            writable(&self.shared, &send)?;
            send.fin = true;
            permit.send(Cmd::Frame(Frame::Data {
                stream_id: self.st.id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            }));
        }
        self.shared.remove_if_done(&self.st);
        Ok(())
    }

    /// Resets the stream (RST_STREAM CANCEL unless this side already sent FIN): both directions
    /// end at once, data not yet read is dropped.
    pub fn reset(&self) {
        self.shared.local_reset(&self.st, RstStatus::Cancel);
    }
}

impl AsyncWrite for StreamWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = &mut *self;
        if let Err(e) = writable(&this.shared, &this.st.send.lock()) {
            return Poll::Ready(Err(io_error(e)));
        }
        if ready!(this.poll_tx.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(io_error(SpdyError::SessionClosed)));
        }
        let n = buf.len().min(WRITE_CHUNK);
        let send = this.st.send.lock();
        if let Err(e) = writable(&this.shared, &send) {
            this.poll_tx.abort_send();
            return Poll::Ready(Err(io_error(e)));
        }
        let frame = Frame::Data {
            stream_id: this.st.id,
            flags: 0,
            data: Bytes::copy_from_slice(&buf[..n]),
        };
        if this.poll_tx.send_item(Cmd::Frame(frame)).is_err() {
            return Poll::Ready(Err(io_error(SpdyError::SessionClosed)));
        }
        Poll::Ready(Ok(n))
    }

    /// Frames are handed to the writer task in order; there is nothing to flush here.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Sends FIN; a stream already finished or reset shuts down without error.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        {
            let send = this.st.send.lock();
            if send.fin || send.reset.is_some() {
                return Poll::Ready(Ok(()));
            }
        }
        if this.shared.ending.is_cancelled() {
            return Poll::Ready(Err(io_error(SpdyError::SessionClosed)));
        }
        if ready!(this.poll_tx.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(io_error(SpdyError::SessionClosed)));
        }
        {
            let mut send = this.st.send.lock();
            if send.fin || send.reset.is_some() {
                this.poll_tx.abort_send();
                return Poll::Ready(Ok(()));
            }
            send.fin = true;
            let frame = Frame::Data {
                stream_id: this.st.id,
                flags: FLAG_FIN,
                data: Bytes::new(),
            };
            if this.poll_tx.send_item(Cmd::Frame(frame)).is_err() {
                return Poll::Ready(Err(io_error(SpdyError::SessionClosed)));
            }
        }
        this.shared.remove_if_done(&this.st);
        Poll::Ready(Ok(()))
    }
}

/// Writes queued frames, several per write when they are ready together, until told to shut
/// down or the session is dropped.
async fn write_loop<W: AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    mut io: W,
    mut rx: mpsc::Receiver<Cmd>,
) {
    let mut deflater = match HeaderDeflater::new() {
        Ok(d) => Some(d),
        Err(e) => {
            warn!(error = %e, "SPDY header compressor could not start");
            None
        }
    };
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BATCH + WRITE_CHUNK + 64);
    'outer: while let Some(deflater) = deflater.as_mut() {
        let first = tokio::select! {
            biased;
            _ = shared.done.cancelled() => break,
            cmd = rx.recv() => cmd,
        };
        let Some(mut cmd) = first else { break };
        let mut shutdown = false;
        let mut failed = false;
        loop {
            let frame = match cmd {
                Cmd::Frame(f) => Some(f),
                Cmd::Shutdown(goaway) => {
                    shutdown = true;
                    goaway
                }
            };
            if let Some(frame) = frame {
                trace!(?frame, "SPDY frame out");
                if let Err(e) = encode_frame(&frame, deflater, &mut buf) {
                    warn!(error = %e, "SPDY frame could not be encoded");
                    failed = true;
                    break;
                }
            }
            if shutdown || buf.len() >= WRITE_BATCH {
                break;
            }
            match rx.try_recv() {
                Ok(next) => cmd = next,
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            let result = tokio::select! {
                biased;
                _ = shared.done.cancelled() => break 'outer,
                r = async {
                    io.write_all(&buf).await?;
                    io.flush().await
                } => r,
            };
            buf.clear();
            if let Err(e) = result {
                debug!(error = %e, "SPDY connection write failed");
                failed = true;
            } else {
                shared.touch();
            }
        }
        if failed {
            shared.end(None, "write failed");
            break;
        }
        if shutdown {
            tokio::select! {
                biased;
                _ = shared.done.cancelled() => {}
                _ = io.shutdown() => {}
            }
            break;
        }
    }
    rx.close();
    shared.end(None, "writer stopped");
    shared.done.cancel();
}

/// How the reading of the connection stopped.
enum ReadEnd {
    Eof,
    Io(io::Error),
    Protocol(FrameError),
    GoAway,
}

async fn read_loop<R: AsyncRead + Unpin>(
    shared: Arc<Shared>,
    io: R,
    incoming: mpsc::Sender<Stream>,
    acceptor: Option<Acceptor>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, io);
    let mut inflater = HeaderInflater::new();
    let end = tokio::select! {
        biased;
        _ = shared.ending.cancelled() => return,
        end = async {
            loop {
                let frame = match read_frame(&mut reader, &mut inflater).await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break ReadEnd::Eof,
                    Err(FrameError::Io(e)) => break ReadEnd::Io(e),
                    Err(e) => break ReadEnd::Protocol(e),
                };
                shared.touch();
                if !matches!(frame, Frame::Data { .. }) {
                    trace!(?frame, "SPDY frame in");
                }
                if let Frame::GoAway { last_good_stream_id, status } = frame {
                    debug!(last_good_stream_id, status, "SPDY GOAWAY received");
                    break ReadEnd::GoAway;
                }
                handle_frame(&shared, frame, &incoming, acceptor.as_ref()).await;
            }
        } => end,
    };
    match end {
        ReadEnd::Eof => shared.end(None, "connection closed by peer"),
        ReadEnd::Io(e) => {
            debug!(error = %e, "SPDY connection read failed");
            shared.end(None, "read failed")
        }
        ReadEnd::Protocol(e) => {
            warn!(error = %e, "SPDY protocol error");
            shared.end(Some(GOAWAY_PROTOCOL_ERROR), "protocol error")
        }
        ReadEnd::GoAway => shared.end(None, "GOAWAY received"),
    }
}

async fn handle_frame(
    shared: &Arc<Shared>,
    frame: Frame,
    incoming: &mpsc::Sender<Stream>,
    acceptor: Option<&Acceptor>,
) {
    match frame {
        Frame::SynStream {
            stream_id,
            flags,
            headers,
            ..
        } => accept_stream(shared, stream_id, flags, headers, incoming, acceptor).await,
        Frame::SynReply {
            stream_id, flags, ..
        } => {
            let (reply, st) = {
                let mut state = shared.state.lock();
                (
                    state.replies.remove(&stream_id),
                    state.streams.get(&stream_id).cloned(),
                )
            };
            if let Some(reply) = reply {
                let _ = reply.send(Ok(()));
            }
            if flags & FLAG_FIN != 0 {
                if let Some(st) = st {
                    shared.remote_fin(&st);
                }
            }
        }
        Frame::Headers {
            stream_id, flags, ..
        } => {
            if flags & FLAG_FIN != 0 {
                if let Some(st) = shared.stream(stream_id) {
                    shared.remote_fin(&st);
                }
            }
        }
        Frame::RstStream { stream_id, status } => {
            shared.peer_reset(stream_id, RstStatus::from_code(status))
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => shared.deliver(stream_id, data, flags & FLAG_FIN != 0).await,
        Frame::Ping { id } => {
            let own_parity = shared.role.first_own_id() & 1;
            if id & 1 != own_parity {
                let _ = shared.send(Cmd::Frame(Frame::Ping { id })).await;
            } else if let Some(waiter) = shared.state.lock().pings.remove(&id) {
                let _ = waiter.send(());
            }
        }
        Frame::Settings { .. }
        | Frame::WindowUpdate { .. }
        | Frame::Unknown { .. }
        | Frame::GoAway { .. } => {}
    }
}

/// A SYN_STREAM from the peer: checks its id, asks the acceptor, replies and hands it out.
async fn accept_stream(
    shared: &Arc<Shared>,
    stream_id: u32,
    flags: u8,
    headers: Vec<(String, String)>,
    incoming: &mpsc::Sender<Stream>,
    acceptor: Option<&Acceptor>,
) {
    let refusal = {
        let mut state = shared.state.lock();
        if state.ended {
            return;
        }
        if stream_id < state.next_peer_stream_id {
            Err(RstStatus::ProtocolError)
        } else {
            state.next_peer_stream_id = stream_id + 2;
            if state.streams.len() >= MAX_STREAMS {
                Err(RstStatus::RefusedStream)
            } else {
                let st = Arc::new(StreamShared::new(
                    stream_id,
                    headers,
                    flags & FLAG_FIN != 0,
                    flags & FLAG_UNIDIRECTIONAL != 0,
                ));
                if !st.is_done() {
                    state.streams.insert(stream_id, st.clone());
                }
                Ok(st)
            }
        }
    };
    let st = match refusal {
        Ok(st) => st,
        Err(status) => {
            warn!(stream = stream_id, %status, "SPDY stream refused");
            let rst = Frame::RstStream {
                stream_id,
                status: status.code(),
            };
            let _ = shared.send(Cmd::Frame(rst)).await;
            return;
        }
    };
    let stream = Stream::new(shared.clone(), st);
    if let Some(acceptor) = acceptor {
        if let Err(reason) = acceptor(&stream) {
            warn!(stream = stream_id, reason, "Stream rejected");
            stream.reset();
            return;
        }
    }
    // The reply is queued before the stream is handed out, so it precedes any data sent on it
    // (spdystream drops data that arrives before a stream's reply).
    let reply = Frame::SynReply {
        stream_id,
        flags: 0,
        headers: Vec::new(),
    };
    if shared.send(Cmd::Frame(reply)).await.is_err() {
        return;
    }
    debug!(stream = stream_id, headers = ?stream.headers(), "SPDY stream accepted");
    if let Err(mpsc::error::SendError(stream)) = incoming.send(stream).await {
        stream.reset();
    }
}

/// Ends the session after the idle timeout without a frame in either direction, as
/// spdystream's idle-aware framer: resets the streams and closes.
async fn idle_monitor(shared: Arc<Shared>, mut timeout_rx: watch::Receiver<Option<Duration>>) {
    loop {
        let timeout = *timeout_rx.borrow_and_update();
        let wait = match timeout {
            Some(t) => {
                let idle = shared.idle_for();
                if idle >= t {
                    debug!(timeout = ?t, "SPDY session idle, closing");
                    shared.close().await;
                    return;
                }
                Some(t - idle)
            }
            None => None,
        };
        tokio::select! {
            _ = shared.ending.cancelled() => return,
            changed = timeout_rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
}
