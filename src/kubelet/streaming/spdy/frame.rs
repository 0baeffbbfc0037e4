//! SPDY/3 frames on the wire: their layout, name/value header blocks, and the one zlib stream
//! per direction that compresses those blocks against the SPDY/3 header dictionary.
//!
//! Control frame: `1 | version(15) | type(16) | flags(8) | length(24) | body`.
//! Data frame: `0 | stream id(31) | flags(8) | length(24) | payload`.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The protocol version this module speaks (SPDY/3, as moby/spdystream).
pub(super) const VERSION: u16 = 3;

pub(super) const TYPE_SYN_STREAM: u16 = 1;
pub(super) const TYPE_SYN_REPLY: u16 = 2;
pub(super) const TYPE_RST_STREAM: u16 = 3;
pub(super) const TYPE_SETTINGS: u16 = 4;
pub(super) const TYPE_PING: u16 = 6;
pub(super) const TYPE_GOAWAY: u16 = 7;
pub(super) const TYPE_HEADERS: u16 = 8;
pub(super) const TYPE_WINDOW_UPDATE: u16 = 9;

/// FLAG_FIN on data frames and on SYN_STREAM, SYN_REPLY and HEADERS.
pub(super) const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL on SYN_STREAM: the receiver may not send on the stream.
pub(super) const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// The largest payload a data frame can carry (24-bit length).
pub(super) const MAX_DATA_LENGTH: usize = (1 << 24) - 1;
/// The largest control frame body accepted from a peer. Control frames carry at most a
/// compressed header block; clients send a few hundred bytes.
pub(super) const MAX_CONTROL_LENGTH: usize = 1 << 20;
/// The largest header block accepted from a peer once decompressed.
pub(super) const MAX_HEADER_BLOCK: usize = 1 << 20;

/// GOAWAY status codes.
pub(super) const GOAWAY_OK: u32 = 0;
pub(super) const GOAWAY_PROTOCOL_ERROR: u32 = 1;

/// The SPDY/3 header compression dictionary (a protocol constant of SPDY/3, section 2.6.10.1):
/// length-prefixed common header names and values, then common status lines, dates and media
/// types.
pub(super) const HEADER_DICTIONARY: &[u8; 1423] = b"\
    \x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\
    \x00\x00\x00\x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\
    \x00\x00\x00\x0eaccept-charset\x00\x00\x00\x0faccept-encoding\
    \x00\x00\x00\x0faccept-language\x00\x00\x00\x0daccept-ranges\x00\x00\x00\x03age\
    \x00\x00\x00\x05allow\x00\x00\x00\x0dauthorization\x00\x00\x00\x0dcache-control\
    \x00\x00\x00\x0aconnection\x00\x00\x00\x0ccontent-base\
    \x00\x00\x00\x10content-encoding\x00\x00\x00\x10content-language\
    \x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-location\
    \x00\x00\x00\x0bcontent-md5\x00\x00\x00\x0dcontent-range\x00\x00\x00\x0ccontent-type\
    \x00\x00\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\
    \x00\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\x04host\
    \x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since\
    \x00\x00\x00\x0dif-none-match\x00\x00\x00\x08if-range\
    \x00\x00\x00\x13if-unmodified-since\x00\x00\x00\x0dlast-modified\
    \x00\x00\x00\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\
    \x00\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization\
    \x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-after\
    \x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07trailer\
    \x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\x0auser-agent\
    \x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07warning\
    \x00\x00\x00\x10www-authenticate\x00\x00\x00\x06method\x00\x00\x00\x03get\
    \x00\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\
    \x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url\x00\x00\x00\x06public\
    \x00\x00\x00\x0aset-cookie\x00\x00\x00\x0akeep-alive\x00\x00\x00\x06origin\
    100101201202205206300302303304305306307402405406407408409410411412413414415416417502\
    504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Re\
    quest401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Impl\
    emented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00\
    :00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,imag\
    e/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivate\
    max-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// Header names a SYN_STREAM may not carry (spdystream's framer rejects the frame).
const INVALID_REQUEST_HEADERS: [&str; 5] = [
    "connection",
    "host",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];
/// Header names a SYN_REPLY may not carry.
const INVALID_RESPONSE_HEADERS: [&str; 4] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];

/// Header name/value pairs as they travel: names lowercase; a name whose value held several
/// NUL-separated values appears once per value, in order.
pub(super) type HeaderList = Vec<(String, String)>;

/// One frame, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Frame {
    SynStream {
        stream_id: u32,
        associated_id: u32,
        priority: u8,
        slot: u8,
        flags: u8,
        headers: HeaderList,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: HeaderList,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    /// SETTINGS: validated and ignored (spdystream neither sends nor obeys them).
    Settings {
        count: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: HeaderList,
    },
    /// WINDOW_UPDATE: parsed and ignored (spdystream has no flow control).
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type SPDY/3 does not define; its body was skipped.
    Unknown {
        frame_type: u16,
    },
}

/// Why a frame could not be read or written. Every one of these ends the session.
#[derive(Debug, thiserror::Error)]
pub(super) enum FrameError {
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("control frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("invalid control frame (type {0})")]
    InvalidControlFrame(u16),
    #[error("stream id zero is disallowed")]
    ZeroStreamId,
    #[error("header block: {0}")]
    HeaderBlock(&'static str),
    #[error("header compression: {0}")]
    Compression(String),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
}

fn be32(b: &[u8], at: usize) -> u32 {
    // Callers check the length first; a short slice reads as zeros instead of panicking.
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_be_bytes(w)
}

/// Adler-32 (RFC 1950), the checksum zlib uses as a preset dictionary's id.
pub(super) fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// The compressing half: one zlib stream for every header block this side sends, primed with
/// the SPDY/3 dictionary, best compression and a sync flush after each block (as Go's
/// `zlib.NewWriterLevelDict(…, BestCompression, dict)` plus `Flush` in spdystream's framer).
pub(super) struct HeaderDeflater {
    z: Compress,
}

impl HeaderDeflater {
    pub(super) fn new() -> Result<Self, FrameError> {
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(HEADER_DICTIONARY)
            .map_err(|e| FrameError::Compression(e.to_string()))?;
        Ok(Self { z })
    }

    /// Compresses one encoded header block, ending with a sync flush so that the peer can
    /// decode it from this frame's bytes alone.
    pub(super) fn compress(&mut self, block: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(block.len() / 2 + 64);
        let start = self.z.total_in();
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let consumed = usize::try_from(self.z.total_in() - start).unwrap_or(usize::MAX);
            let rest = block.get(consumed..).unwrap_or_default();
            self.z
                .compress_vec(rest, &mut out, FlushCompress::Sync)
                .map_err(|e| FrameError::Compression(e.to_string()))?;
            let consumed = usize::try_from(self.z.total_in() - start).unwrap_or(usize::MAX);
            // Done once all input is in and the flush did not fill the output buffer.
            if consumed >= block.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The decompressing half: one zlib stream across every header block the peer sends; its
/// state carries over from frame to frame.
pub(super) struct HeaderInflater {
    z: Decompress,
    dictionary_id: u32,
    ended: bool,
}

impl HeaderInflater {
    pub(super) fn new() -> Self {
        Self {
            z: Decompress::new(true),
            dictionary_id: adler32(HEADER_DICTIONARY),
            ended: false,
        }
    }

    /// Decompresses the header block carried by one frame, at most [`MAX_HEADER_BLOCK`] bytes.
    pub(super) fn decompress(&mut self, input: &[u8]) -> Result<Vec<u8>, FrameError> {
        if self.ended {
            return Err(FrameError::Compression(
                "header stream already ended".into(),
            ));
        }
        let mut out: Vec<u8> = Vec::with_capacity((input.len() * 4).clamp(256, 16 * 1024));
        let mut pos = 0usize;
        loop {
            if out.len() == out.capacity() {
                if out.len() > MAX_HEADER_BLOCK {
                    return Err(FrameError::HeaderBlock(
                        "decompressed header block too large",
                    ));
                }
                out.reserve(out.len().max(256));
            }
            let rest = input.get(pos..).unwrap_or_default();
            let (in_before, out_before) = (self.z.total_in(), out.len());
            let result = self.z.decompress_vec(rest, &mut out, FlushDecompress::Sync);
            let consumed = usize::try_from(self.z.total_in() - in_before).unwrap_or(usize::MAX);
            pos = pos.saturating_add(consumed);
            match result {
                Ok(Status::StreamEnd) => {
                    self.ended = true;
                    if pos < input.len() {
                        return Err(FrameError::Compression(
                            "data after the end of the header stream".into(),
                        ));
                    }
                    break;
                }
                Ok(_) => {
                    let produced = out.len() - out_before;
                    if pos >= input.len() && out.len() < out.capacity() {
                        break;
                    }
                    if consumed == 0 && produced == 0 && out.len() < out.capacity() {
                        // No progress with input left and room to write: corrupt or truncated.
                        return Err(FrameError::Compression(
                            "header block does not decompress".into(),
                        ));
                    }
                }
                Err(e) => match e.needs_dictionary() {
                    Some(id) if id == self.dictionary_id => {
                        self.z
                            .set_dictionary(HEADER_DICTIONARY)
                            .map_err(|e| FrameError::Compression(e.to_string()))?;
                    }
                    Some(id) => {
                        return Err(FrameError::Compression(format!(
                            "header stream asks for unknown dictionary {id:#010x}"
                        )))
                    }
                    None => return Err(FrameError::Compression(e.to_string())),
                },
            }
        }
        if out.len() > MAX_HEADER_BLOCK {
            return Err(FrameError::HeaderBlock(
                "decompressed header block too large",
            ));
        }
        Ok(out)
    }
}

/// Encodes a name/value header block: u32 count, then per name u32 length + lowercase name and
/// u32 length + values joined with NUL. Pairs sharing a name (case-insensitively) are joined.
pub(super) fn encode_header_block(headers: &[(String, String)]) -> Result<Vec<u8>, FrameError> {
    let mut grouped: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    let too_long = || FrameError::HeaderBlock("header too long");
    let mut out = Vec::new();
    out.extend_from_slice(
        &u32::try_from(grouped.len())
            .map_err(|_| too_long())?
            .to_be_bytes(),
    );
    for (name, values) in grouped {
        let value = values.join("\0");
        out.extend_from_slice(
            &u32::try_from(name.len())
                .map_err(|_| too_long())?
                .to_be_bytes(),
        );
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(
            &u32::try_from(value.len())
                .map_err(|_| too_long())?
                .to_be_bytes(),
        );
        out.extend_from_slice(value.as_bytes());
    }
    Ok(out)
}

/// Which frame a header block came in: decides the header names that are refused.
#[derive(Clone, Copy)]
enum BlockKind {
    Request,
    Response,
}

/// Parses a decompressed name/value block. As spdystream's framer, a name that is not lowercase
/// or a hop-by-hop name (`connection`, `host` in a request, …) makes the frame invalid. Bytes
/// left after the last pair are an error too: they would corrupt the next block.
fn parse_header_block(block: &[u8], kind: BlockKind) -> Result<HeaderList, FrameError> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8], FrameError> {
        let end = pos
            .checked_add(n)
            .ok_or(FrameError::HeaderBlock("truncated header block"))?;
        let s = block
            .get(pos..end)
            .ok_or(FrameError::HeaderBlock("truncated header block"))?;
        pos = end;
        Ok(s)
    };
    let count = be32(take(4)?, 0);
    let mut headers = HeaderList::new();
    for _ in 0..count {
        let len = be32(take(4)?, 0) as usize;
        let name = String::from_utf8_lossy(take(len)?).into_owned();
        if name != name.to_lowercase() {
            return Err(FrameError::HeaderBlock("header was not lowercased"));
        }
        let len = be32(take(4)?, 0) as usize;
        let value = String::from_utf8_lossy(take(len)?).into_owned();
        let invalid: &[&str] = match kind {
            BlockKind::Request => &INVALID_REQUEST_HEADERS,
            BlockKind::Response => &INVALID_RESPONSE_HEADERS,
        };
        if invalid.contains(&name.as_str()) {
            return Err(FrameError::HeaderBlock("frame contained invalid header"));
        }
        for v in value.split('\0') {
            headers.push((name.clone(), v.to_string()));
        }
    }
    if pos != block.len() {
        return Err(FrameError::HeaderBlock("bytes left after the header block"));
    }
    Ok(headers)
}

/// Reads one frame. `Ok(None)` is a clean end of the connection at a frame boundary.
pub(super) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    inflater: &mut HeaderInflater,
) -> Result<Option<Frame>, FrameError> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        let n = r.read(&mut head[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        got += n;
    }
    let first = be32(&head, 0);
    let flags = head[4];
    let length = (be32(&head, 4) & 0x00ff_ffff) as usize;
    let control = first & 0x8000_0000 != 0;
    if control {
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        if length > MAX_CONTROL_LENGTH {
            return Err(FrameError::TooLarge(length));
        }
    }
    // Grows with what actually arrives, so a declared length costs nothing up front.
    let mut body = Vec::new();
    let n = r.take(length as u64).read_to_end(&mut body).await?;
    if n != length {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    if control {
        let frame_type = (first & 0xffff) as u16;
        decode_control(frame_type, flags, &body, inflater).map(Some)
    } else {
        let stream_id = first & 0x7fff_ffff;
        if stream_id == 0 {
            return Err(FrameError::ZeroStreamId);
        }
        Ok(Some(Frame::Data {
            stream_id,
            flags,
            data: Bytes::from(body),
        }))
    }
}

/// Decodes a control frame's body (after the 8-byte header).
pub(super) fn decode_control(
    frame_type: u16,
    flags: u8,
    body: &[u8],
    inflater: &mut HeaderInflater,
) -> Result<Frame, FrameError> {
    let invalid = || FrameError::InvalidControlFrame(frame_type);
    let stream_id = be32(body, 0) & 0x7fff_ffff;
    let frame = match frame_type {
        TYPE_SYN_STREAM => {
            if body.len() < 10 {
                return Err(invalid());
            }
            let block = inflater.decompress(&body[10..])?;
            let headers = parse_header_block(&block, BlockKind::Request)?;
            Frame::SynStream {
                stream_id,
                associated_id: be32(body, 4) & 0x7fff_ffff,
                priority: body[8] >> 5,
                slot: body[9],
                flags,
                headers,
            }
        }
        TYPE_SYN_REPLY | TYPE_HEADERS => {
            if body.len() < 4 {
                return Err(invalid());
            }
            let block = inflater.decompress(&body[4..])?;
            // spdystream checks a HEADERS frame on an even (server-initiated) stream against
            // the request list, on an odd one against the response list.
            let kind = if frame_type == TYPE_HEADERS && stream_id.is_multiple_of(2) {
                BlockKind::Request
            } else {
                BlockKind::Response
            };
            let headers = parse_header_block(&block, kind)?;
            if frame_type == TYPE_SYN_REPLY {
                Frame::SynReply {
                    stream_id,
                    flags,
                    headers,
                }
            } else {
                Frame::Headers {
                    stream_id,
                    flags,
                    headers,
                }
            }
        }
        TYPE_RST_STREAM => {
            if body.len() != 8 {
                return Err(invalid());
            }
            let status = be32(body, 4);
            if status == 0 {
                return Err(invalid());
            }
            Frame::RstStream { stream_id, status }
        }
        TYPE_SETTINGS => {
            if body.len() < 4 {
                return Err(invalid());
            }
            let count = be32(body, 0);
            if (body.len() - 4) as u64 != u64::from(count) * 8 {
                return Err(invalid());
            }
            Frame::Settings { count }
        }
        TYPE_PING => {
            if body.len() != 4 || flags != 0 {
                return Err(invalid());
            }
            let id = be32(body, 0);
            if id == 0 {
                return Err(FrameError::ZeroStreamId);
            }
            return Ok(Frame::Ping { id });
        }
        TYPE_GOAWAY => {
            if body.len() != 8 || flags != 0 {
                return Err(invalid());
            }
            return Ok(Frame::GoAway {
                last_good_stream_id: stream_id,
                status: be32(body, 4),
            });
        }
        TYPE_WINDOW_UPDATE => {
            if body.len() != 8 || flags != 0 {
                return Err(invalid());
            }
            Frame::WindowUpdate {
                stream_id,
                delta: be32(body, 4) & 0x7fff_ffff,
            }
        }
        other => return Ok(Frame::Unknown { frame_type: other }),
    };
    // SETTINGS has no stream; SPDY/3.1 uses WINDOW_UPDATE on stream 0 for the session window.
    if matches!(frame, Frame::Settings { .. } | Frame::WindowUpdate { .. }) {
        return Ok(frame);
    }
    if stream_id == 0 {
        return Err(FrameError::ZeroStreamId);
    }
    Ok(frame)
}

fn control_header(
    out: &mut Vec<u8>,
    frame_type: u16,
    flags: u8,
    length: usize,
) -> Result<(), FrameError> {
    if length > MAX_DATA_LENGTH {
        return Err(FrameError::TooLarge(length));
    }
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&frame_type.to_be_bytes());
    out.extend_from_slice(&((u32::from(flags) << 24) | length as u32).to_be_bytes());
    Ok(())
}

/// Appends the wire form of `frame` to `out`, compressing any header block with `deflater`.
/// Frames must be encoded in the order they are written: the header stream is shared.
pub(super) fn encode_frame(
    frame: &Frame,
    deflater: &mut HeaderDeflater,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    match frame {
        Frame::SynStream {
            stream_id,
            associated_id,
            priority,
            slot,
            flags,
            headers,
        } => {
            let block = deflater.compress(&encode_header_block(headers)?)?;
            control_header(out, TYPE_SYN_STREAM, *flags, 10 + block.len())?;
            out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
            out.extend_from_slice(&(associated_id & 0x7fff_ffff).to_be_bytes());
            out.push((priority & 0x07) << 5);
            out.push(*slot);
            out.extend_from_slice(&block);
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        }
        | Frame::Headers {
            stream_id,
            flags,
            headers,
        } => {
            let ty = if matches!(frame, Frame::SynReply { .. }) {
                TYPE_SYN_REPLY
            } else {
                TYPE_HEADERS
            };
            let block = deflater.compress(&encode_header_block(headers)?)?;
            control_header(out, ty, *flags, 4 + block.len())?;
            out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
            out.extend_from_slice(&block);
        }
        Frame::RstStream { stream_id, status } => {
            control_header(out, TYPE_RST_STREAM, 0, 8)?;
            out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
            out.extend_from_slice(&status.to_be_bytes());
        }
        Frame::Settings { .. } => {
            // Never sent: spdystream ignores SETTINGS. An empty one is still well-formed.
            control_header(out, TYPE_SETTINGS, 0, 4)?;
            out.extend_from_slice(&0u32.to_be_bytes());
        }
        Frame::Ping { id } => {
            control_header(out, TYPE_PING, 0, 4)?;
            out.extend_from_slice(&id.to_be_bytes());
        }
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            control_header(out, TYPE_GOAWAY, 0, 8)?;
            out.extend_from_slice(&(last_good_stream_id & 0x7fff_ffff).to_be_bytes());
            out.extend_from_slice(&status.to_be_bytes());
        }
        Frame::WindowUpdate { stream_id, delta } => {
            control_header(out, TYPE_WINDOW_UPDATE, 0, 8)?;
            out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
            out.extend_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            if *stream_id == 0 {
                return Err(FrameError::ZeroStreamId);
            }
            if data.len() > MAX_DATA_LENGTH {
                return Err(FrameError::TooLarge(data.len()));
            }
            out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
            out.extend_from_slice(&((u32::from(*flags) << 24) | data.len() as u32).to_be_bytes());
            out.extend_from_slice(data);
        }
        Frame::Unknown { .. } => {}
    }
    Ok(())
}
