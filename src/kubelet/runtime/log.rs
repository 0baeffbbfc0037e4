//! A container's log as a node keeps it, and the kubelet's reading of it for `kubectl logs`.
//!
//! The runtime writes the CRI log format containerd writes: one entry per line of output,
//! `<time> <stdout|stderr> <F|P> <text>`, stamped with the cluster clock when the line is
//! complete. Output not ended by a newline stays in the runtime until the newline comes, the
//! line reaches containerd's 16 KiB line limit, or the process ends; it is then written as a
//! partial (`P`) entry. The file is rotated once it reaches its size limit, as the kubelet
//! rotates container logs (`containerLogMaxSize`, 10 MiB by default). `kubectl logs` reads only
//! the current file upstream, so rotated files are not kept (only how many rotations there
//! were): a container that writes without end holds at most one file's worth of memory, and its
//! local storage usage is its current file.
//!
//! [`Writer`] is the kubelet's reading of entries (`tailLines`, `sinceSeconds`/`sinceTime`,
//! `timestamps`, `limitBytes`), as upstream's `ReadLogs` applies them.

use chrono::{DateTime, Utc};

use crate::clock::Clock;

/// Upstream's `containerLogMaxSize` default (10 MiB).
pub const DEFAULT_MAX_SIZE: usize = 10 * 1024 * 1024;

/// containerd's `max_container_log_line_size` (16 KiB): a longer line is written as partial
/// entries of this size.
pub const MAX_LINE_SIZE: usize = 16 * 1024;

/// A container's output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Stdout => 0,
            Self::Stderr => 1,
        }
    }
}

/// One container's log.
#[derive(Debug)]
pub struct Log {
    clock: Clock,
    /// The current file, in the CRI format.
    file: Vec<u8>,
    /// Output of each stream not ended by a newline yet (still in the runtime's pipe).
    pending: [Vec<u8>; 2],
    max_size: usize,
    /// Bytes ever written to the file (the end of the current file, as an offset into the
    /// whole stream).
    written: u64,
    rotations: u64,
}

impl Default for Log {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SIZE, Clock::default())
    }
}

impl Log {
    /// An empty log rotated at `max_size` bytes (at least 1 KiB), stamped by `clock`.
    pub fn new(max_size: usize, clock: Clock) -> Self {
        Self {
            clock,
            file: Vec::new(),
            pending: [Vec::new(), Vec::new()],
            max_size: max_size.max(1024),
            written: 0,
            rotations: 0,
        }
    }

    /// Output on stdout.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.write(Stream::Stdout, data);
    }

    /// Output on `stream`: every line it completes becomes an entry.
    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let at = self.clock.now();
        let i = stream.index();
        let mut pending = std::mem::take(&mut self.pending[i]);
        pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &pending[start..]) {
            let mut line = &pending[start..start + nl];
            while line.len() > MAX_LINE_SIZE {
                self.append(stream, true, &line[..MAX_LINE_SIZE], at);
                line = &line[MAX_LINE_SIZE..];
            }
            self.append(stream, false, line, at);
            start += nl + 1;
        }
        let mut rest = &pending[start..];
        while rest.len() > MAX_LINE_SIZE {
            self.append(stream, true, &rest[..MAX_LINE_SIZE], at);
            rest = &rest[MAX_LINE_SIZE..];
        }
        self.pending[i] = rest.to_vec();
    }

    /// The process ended: what it left without a newline is written as partial entries.
    pub fn close(&mut self) {
        let at = self.clock.now();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream.index()]);
            if !rest.is_empty() {
                self.append(stream, true, &rest, at);
            }
        }
    }

    /// Write one entry, rotating the file first when the entry would take it past its limit.
    fn append(&mut self, stream: Stream, partial: bool, text: &[u8], at: DateTime<Utc>) {
        let stamp = crate::k8s::go::format_rfc3339_nano_fixed(at);
        let tag = if partial { "P" } else { "F" };
        let header = format!("{stamp} {} {tag} ", stream.name());
        let size = header.len() + text.len() + 1;
        if !self.file.is_empty() && self.file.len().saturating_add(size) > self.max_size {
            self.file.clear();
            self.rotations = self.rotations.saturating_add(1);
        }
        self.file.extend_from_slice(header.as_bytes());
        self.file.extend_from_slice(text);
        self.file.push(b'\n');
        self.written = self.written.saturating_add(size as u64);
    }

    /// The output in the current file (entries' text, full lines with their newline).
    pub fn contents(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.file.len());
        for e in entries(&self.file) {
            out.extend_from_slice(e.text);
            if !e.partial {
                out.push(b'\n');
            }
        }
        out
    }

    /// The current file's size in bytes.
    pub fn len(&self) -> usize {
        self.file.len()
    }

    /// Whether nothing was written to the current file.
    pub fn is_empty(&self) -> bool {
        self.file.is_empty()
    }

    /// How many times the file was rotated.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// The stream offset where the last `lines` entries of the current file start (the file's
    /// start for `None`), as the kubelet finds where `tailLines` starts.
    pub fn tail_offset(&self, lines: Option<usize>) -> u64 {
        let file_start = self.written - self.file.len() as u64;
        let Some(n) = lines else {
            return file_start;
        };
        if n == 0 {
            return self.written;
        }
        // Scan back from the end for the n-th entry start (a final newline ends the last one).
        let body = self.file.strip_suffix(b"\n").unwrap_or(&self.file);
        let start = memchr::memrchr_iter(b'\n', body)
            .nth(n - 1)
            .map_or(0, |i| i + 1);
        file_start + start as u64
    }

    /// The entries written after stream offset `offset` (an offset [`Log::end`] or
    /// [`Log::tail_offset`] gave), and the new end. After a rotation, what was rotated away is
    /// skipped, as a reader of the current file upstream would.
    pub fn read_from(&self, offset: u64) -> (Vec<u8>, u64) {
        let start = self.written - self.file.len() as u64;
        let from = offset.clamp(start, self.written);
        let at = usize::try_from(from - start).unwrap_or(self.file.len());
        (self.file[at..].to_vec(), self.written)
    }

    /// The stream offset of the end of the log.
    pub fn end(&self) -> u64 {
        self.written
    }
}

/// One entry of a log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// When the runtime wrote it.
    pub time: DateTime<Utc>,
    /// Its stream.
    pub stream: Stream,
    /// A partial line (`P`): its text ends without a newline.
    pub partial: bool,
    /// The text, without the line's newline.
    pub text: &'a [u8],
}

/// The entries of whole lines of a log file (as [`Log::read_from`] returns them); lines that
/// are not entries are skipped, as the kubelet skips lines it cannot parse.
pub fn entries(file: &[u8]) -> impl Iterator<Item = Entry<'_>> {
    file.split(|b| *b == b'\n').filter_map(|line| {
        let mut parts = line.splitn(4, |b| *b == b' ');
        let time = std::str::from_utf8(parts.next()?).ok()?;
        let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
        let stream = match parts.next()? {
            b"stdout" => Stream::Stdout,
            b"stderr" => Stream::Stderr,
            _ => return None,
        };
        let partial = parts.next()? == b"P";
        let text = parts.next()?;
        Some(Entry {
            time,
            stream,
            partial,
            text,
        })
    })
}

/// How the kubelet writes entries to a `kubectl logs` reader (upstream's `logWriter`): entries
/// older than `since` are skipped, `timestamps` puts the entry's time (nine fractional digits)
/// before each line (not before the continuation of a partial line), and `limitBytes` cuts the
/// output, mid-line if need be, and ends it.
#[derive(Clone, Debug)]
pub struct Writer {
    since: Option<DateTime<Utc>>,
    timestamps: bool,
    remaining: Option<u64>,
    new_line: bool,
}

impl Writer {
    /// A writer for these options (a `limit_bytes` below 1 is no limit).
    pub fn new(since: Option<DateTime<Utc>>, timestamps: bool, limit_bytes: Option<i64>) -> Self {
        Self {
            since,
            timestamps,
            remaining: limit_bytes
                .filter(|n| *n > 0)
                .and_then(|n| u64::try_from(n).ok()),
            new_line: true,
        }
    }

    /// Write the entries of `chunk` (whole lines of a log file) to `out`; false once the byte
    /// limit is reached (the reader gets nothing more).
    pub fn write(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        for e in entries(chunk) {
            let new_line = std::mem::replace(&mut self.new_line, !e.partial);
            if self.since.is_some_and(|since| e.time < since) {
                continue;
            }
            let mut line = Vec::with_capacity(e.text.len() + 32);
            if self.timestamps && new_line {
                line.extend_from_slice(
                    crate::k8s::go::format_rfc3339_nano_fixed(e.time).as_bytes(),
                );
                line.push(b' ');
            }
            line.extend_from_slice(e.text);
            if !e.partial {
                line.push(b'\n');
            }
            match &mut self.remaining {
                None => out.extend_from_slice(&line),
                Some(remaining) => {
                    let n = line
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    out.extend_from_slice(&line[..n]);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        return false;
                    }
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(max: usize) -> Log {
        Log::new(max, Clock::new(1.0))
    }

    fn read_all(log: &Log, writer: &mut Writer) -> String {
        let (chunk, _) = log.read_from(0);
        let mut out = Vec::new();
        writer.write(&chunk, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn endless_output_is_rotated_not_kept() {
        let mut log = log(4096);
        for i in 0..100_000 {
            log.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        assert!(log.len() <= 4096);
        assert!(log.rotations() > 100);
        assert!(log.contents().ends_with(b"line 99999\n"));
    }

    #[test]
    fn lines_become_entries_when_complete() {
        let mut log = log(4096);
        log.extend_from_slice(b"a\nb");
        assert_eq!(log.contents(), b"a\n");
        log.write(Stream::Stderr, b"err\n");
        log.extend_from_slice(b"c\nd");
        assert_eq!(log.contents(), b"a\nerr\nbc\n");
        log.close();
        assert_eq!(log.contents(), b"a\nerr\nbc\nd");
        let long = vec![b'x'; MAX_LINE_SIZE + 10];
        let mut log = Log::new(DEFAULT_MAX_SIZE, Clock::new(1.0));
        log.extend_from_slice(&long);
        let (chunk, _) = log.read_from(0);
        let parsed: Vec<_> = entries(&chunk).collect();
        assert_eq!(parsed.len(), 1);
        assert!(parsed[0].partial && parsed[0].text.len() == MAX_LINE_SIZE);
    }

    #[test]
    fn tail_starts_at_the_last_entries() {
        let mut log = log(4096);
        log.extend_from_slice(b"a\nb\nc\n");
        let tail = |n| {
            let (chunk, _) = log.read_from(log.tail_offset(n));
            let mut out = Vec::new();
            Writer::new(None, false, None).write(&chunk, &mut out);
            out
        };
        assert_eq!(tail(Some(2)), b"b\nc\n");
        assert_eq!(tail(Some(10)), b"a\nb\nc\n");
        assert_eq!(tail(Some(0)), b"");
        assert_eq!(tail(None), b"a\nb\nc\n");
    }

    #[test]
    fn timestamps_since_and_limits_apply_per_entry() {
        let mut log = log(4096);
        log.extend_from_slice(b"one\n");
        std::thread::sleep(std::time::Duration::from_millis(5));
        let between = Utc::now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        log.extend_from_slice(b"two\nthree");
        log.close();
        let stamped = read_all(&log, &mut Writer::new(None, true, None));
        let lines: Vec<&str> = stamped.split_inclusive('\n').collect();
        assert_eq!(lines.len(), 3, "{stamped}");
        assert!(lines[0].ends_with("Z one\n") && lines[0].len() == 31 + 4);
        assert!(lines[2].ends_with("Z three"));
        assert_eq!(
            read_all(&log, &mut Writer::new(Some(between), false, None)),
            "two\nthree"
        );
        assert_eq!(
            read_all(&log, &mut Writer::new(None, false, Some(6))),
            "one\ntw"
        );
        // A partial line's continuation carries no second timestamp.
        let mut log = Log::new(DEFAULT_MAX_SIZE, Clock::new(1.0));
        log.extend_from_slice(&vec![b'y'; MAX_LINE_SIZE + 2]);
        log.extend_from_slice(b"\n");
        let out = read_all(&log, &mut Writer::new(None, true, None));
        assert_eq!(out.matches('Z').count(), 1);
        assert_eq!(out.len(), 31 + MAX_LINE_SIZE + 2 + 1);
    }

    #[test]
    fn followers_continue_across_a_rotation() {
        let mut log = log(1024);
        log.extend_from_slice(&[b'a'; 900]);
        log.extend_from_slice(b"\n");
        let (first, end) = log.read_from(0);
        assert_eq!(entries(&first).count(), 1);
        log.extend_from_slice(&[b'b'; 100]);
        log.extend_from_slice(b"\n"); // rotates: the file now holds only the b's
        assert_eq!(log.rotations(), 1);
        let (next, end2) = log.read_from(end);
        let next: Vec<_> = entries(&next).collect();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].text, &[b'b'; 100][..]);
        assert!(end2 > end);
    }
}
