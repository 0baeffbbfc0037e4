//! A container's log as a node keeps it: the current file, rotated once it reaches its size
//! limit, as the kubelet rotates container logs (`containerLogMaxSize`, 10 MiB by default).
//! `kubectl logs` reads only the current file upstream, so rotated files are not kept (only how
//! many rotations there were): a container that writes without end holds at most one file's
//! worth of memory, and its local storage usage is its current file.

/// Upstream's `containerLogMaxSize` default (10 MiB).
pub const DEFAULT_MAX_SIZE: usize = 10 * 1024 * 1024;

/// One container's log.
#[derive(Debug)]
pub struct Log {
    current: Vec<u8>,
    max_size: usize,
    /// Bytes ever written (the end of the current file, as an offset into the whole stream).
    written: u64,
    rotations: u64,
}

impl Default for Log {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SIZE)
    }
}

impl Log {
    /// An empty log rotated at `max_size` bytes (at least 1 KiB).
    pub fn new(max_size: usize) -> Self {
        Self {
            current: Vec::new(),
            max_size: max_size.max(1024),
            written: 0,
            rotations: 0,
        }
    }

    /// Append output. A write that would take the file past its limit rotates it first (a
    /// write larger than the limit keeps only its end).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.written = self.written.saturating_add(data.len() as u64);
        if self.current.len().saturating_add(data.len()) > self.max_size {
            self.current.clear();
            self.rotations = self.rotations.saturating_add(1);
        }
        let keep = data.len().saturating_sub(self.max_size);
        self.current.extend_from_slice(&data[keep..]);
    }

    /// The current file.
    pub fn contents(&self) -> Vec<u8> {
        self.current.clone()
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.current.len()
    }

    /// Whether nothing was written to the current file.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// How many times the file was rotated.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// The last `lines` lines of the current file (all of it for `None`), copying only those.
    pub fn tail(&self, lines: Option<usize>) -> Vec<u8> {
        let Some(n) = lines else {
            return self.current.clone();
        };
        if n == 0 {
            return Vec::new();
        }
        // Scan back from the end for the n-th line start (a final newline ends the last line).
        let body = self.current.strip_suffix(b"\n").unwrap_or(&self.current);
        let start = memchr::memrchr_iter(b'\n', body)
            .nth(n - 1)
            .map_or(0, |i| i + 1);
        self.current[start..].to_vec()
    }

    /// What was written after `offset` (an offset into the whole stream, as [`Log::end`] gives),
    /// and the new end. After a rotation, what was rotated away is skipped, as a reader of the
    /// current file upstream would.
    pub fn read_from(&self, offset: u64) -> (Vec<u8>, u64) {
        let start = self.written - self.current.len() as u64;
        let from = offset.clamp(start, self.written);
        let at = usize::try_from(from - start).unwrap_or(self.current.len());
        (self.current[at..].to_vec(), self.written)
    }

    /// The stream offset of the end of the log.
    pub fn end(&self) -> u64 {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_output_is_rotated_not_kept() {
        let mut log = Log::new(4096);
        for i in 0..100_000 {
            log.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        assert!(log.len() <= 4096);
        assert!(log.rotations() > 100);
        assert!(log.contents().ends_with(b"line 99999\n"));
    }

    #[test]
    fn tail_copies_only_the_last_lines() {
        let mut log = Log::new(4096);
        log.extend_from_slice(b"a\nb\nc\n");
        assert_eq!(log.tail(Some(2)), b"b\nc\n");
        assert_eq!(log.tail(Some(10)), b"a\nb\nc\n");
        assert_eq!(log.tail(Some(0)), b"");
        assert_eq!(log.tail(None), b"a\nb\nc\n");
        log.extend_from_slice(b"partial");
        assert_eq!(log.tail(Some(1)), b"partial");
    }

    #[test]
    fn followers_continue_across_a_rotation() {
        let mut log = Log::new(1024);
        log.extend_from_slice(&[b'a'; 1000]);
        let (first, end) = log.read_from(0);
        assert_eq!(first.len(), 1000);
        log.extend_from_slice(&[b'b'; 100]); // rotates: the file now holds only the b's
        let (next, end2) = log.read_from(end);
        assert_eq!(next, vec![b'b'; 100]);
        assert_eq!(end2, 1100);
        let huge = vec![b'c'; 5000];
        log.extend_from_slice(&huge);
        assert_eq!(log.len(), 1024);
    }
}
