//! Where commands read and write: the file descriptors 0, 1 and 2 of a running command
//! ([`Fds`]), the in-memory pipes between the stages of a pipeline, and the buffers that collect
//! a command substitution's output or a whole input.
//!
//! Writes never wait: a pipe takes whatever is written and the writer waits for its reader at
//! the end of each simple command (and between the chunks of a long output) while the pipe
//! holds more than [`PIPE_HIGH_WATER`] bytes. A write to a pipe whose reader has finished is a
//! broken pipe: the writing subshell stops with status 141 (SIGPIPE), as on a real node.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// A pipe's writer waits while the pipe holds more than this (Linux's default pipe capacity).
pub(super) const PIPE_HIGH_WATER: usize = 64 * 1024;
/// Largest command substitution output, here-document, and input a command reads whole
/// (`sort`, `wc`, `tail -n`, `tar -x` ...). A command substitution stops its command as a
/// broken pipe would past it; a command reading more fails with "out of memory".
pub(super) const MAX_BUFFER: usize = 16 << 20;
/// Largest archive `tar -x`/`tar -t` reads (the files it holds go to the container's memory
/// anyway).
pub(super) const MAX_ARCHIVE: usize = 256 << 20;

/// Where a file descriptor writes.
#[derive(Debug, Clone)]
pub(super) enum Sink {
    /// The script's standard output.
    Out,
    /// The script's standard error.
    Err,
    Null,
    File(String),
    /// The write end of a pipe to the next stage of a pipeline.
    Pipe(Arc<Pipe>),
    /// A command substitution's output.
    Buffer(Arc<Mutex<Vec<u8>>>),
}

/// Where file descriptor 0 reads.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// The standard input of the script ([`Shell::read_stdin`](super::Shell::read_stdin)).
    Stdin,
    /// Nothing (`< /dev/null`).
    Null,
    /// The read end of a pipe from the previous stage of a pipeline.
    Pipe(Arc<Pipe>),
    /// A file's content (`< file`) or a here-document, read from a shared offset.
    Data(Arc<Data>),
}

/// The file descriptors of a running command.
#[derive(Debug, Clone)]
pub(super) struct Fds {
    pub(super) inp: Source,
    pub(super) out: Sink,
    pub(super) err: Sink,
}

impl Fds {
    pub(super) fn base() -> Fds {
        Fds {
            inp: Source::Stdin,
            out: Sink::Out,
            err: Sink::Err,
        }
    }
}

/// Bytes read from a shared offset.
#[derive(Debug)]
pub(super) struct Data {
    bytes: Vec<u8>,
    pos: Mutex<usize>,
}

impl Data {
    pub(super) fn new(bytes: Vec<u8>) -> Data {
        Data {
            bytes,
            pos: Mutex::new(0),
        }
    }

    /// The rest of the bytes (None at the end).
    fn take(&self) -> Option<Vec<u8>> {
        let mut pos = self.pos.lock();
        let rest = self.bytes.get(*pos..).unwrap_or(&[]);
        if rest.is_empty() {
            return None;
        }
        *pos = self.bytes.len();
        Some(rest.to_vec())
    }

    /// Give back the last `n` bytes taken.
    fn unread(&self, n: usize) {
        let mut pos = self.pos.lock();
        *pos = pos.saturating_sub(n);
    }
}

#[derive(Debug, Default)]
struct PipeState {
    data: VecDeque<u8>,
    write_closed: bool,
    read_closed: bool,
}

/// An in-memory pipe between two stages of a pipeline.
#[derive(Debug, Default)]
pub(super) struct Pipe {
    state: Mutex<PipeState>,
    /// Data arrived or the writer finished.
    readable: Notify,
    /// Data was read or the reader finished.
    writable: Notify,
}

impl Pipe {
    pub(super) fn new() -> Pipe {
        Pipe::default()
    }

    /// Append `data`; false when the reader has finished (a broken pipe).
    pub(super) fn write(&self, data: &[u8]) -> bool {
        {
            let mut st = self.state.lock();
            if st.read_closed {
                return false;
            }
            st.data.extend(data);
        }
        self.readable.notify_waiters();
        true
    }

    /// The next bytes, waiting for them; None once the writer has finished and all is read.
    pub(super) async fn read(&self) -> Option<Vec<u8>> {
        loop {
            let notified = self.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.state.lock();
                if !st.data.is_empty() {
                    let chunk: Vec<u8> = st.data.drain(..).collect();
                    drop(st);
                    self.writable.notify_waiters();
                    return Some(chunk);
                }
                if st.write_closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Put bytes read but not used back in front.
    fn unread(&self, data: Vec<u8>) {
        let mut st = self.state.lock();
        if st.read_closed {
            return;
        }
        for b in data.into_iter().rev() {
            st.data.push_front(b);
        }
    }

    /// Wait until the pipe holds at most [`PIPE_HIGH_WATER`] bytes or its reader has finished.
    pub(super) async fn wait_writable(&self) {
        loop {
            let notified = self.writable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.state.lock();
                if st.read_closed || st.data.len() <= PIPE_HIGH_WATER {
                    return;
                }
            }
            notified.await;
        }
    }

    /// The writing stage has finished.
    pub(super) fn close_write(&self) {
        self.state.lock().write_closed = true;
        self.readable.notify_waiters();
    }

    /// The reading stage has finished: what is left is dropped, later writes fail.
    pub(super) fn close_read(&self) {
        {
            let mut st = self.state.lock();
            st.read_closed = true;
            st.data.clear();
        }
        self.writable.notify_waiters();
    }
}

/// Reading from a [`Source`] (the part that needs no interpreter state).
impl Source {
    /// Give back bytes read but not used (`read` stops at a newline).
    pub(super) fn unread_into(&self, stdin_pushback: &Mutex<Vec<u8>>, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        match self {
            Source::Stdin => {
                let mut p = stdin_pushback.lock();
                let mut v = data;
                v.extend_from_slice(&p);
                *p = v;
            }
            Source::Null => {}
            Source::Pipe(pipe) => pipe.unread(data),
            Source::Data(d) => d.unread(data.len()),
        }
    }

    pub(super) fn take_data(d: &Data) -> Option<Vec<u8>> {
        d.take()
    }
}
