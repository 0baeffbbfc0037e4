//! Background jobs (`cmd &`, `wait`, `$!`, `kill` of a job) and the signals a container's main
//! shell receives (`trap`).
//!
//! A background job is a subshell's future. The futures of one script (its nested shells and
//! subshells included) are polled by one runner, [`Jobs::run`], alongside the script's own
//! future: they run at once, in the same task, and are dropped with it (a container's processes
//! die with its PID 1).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(super) const SIGINT: i32 = 2;
/// Background jobs that may run at once in one script (a process limit).
const MAX_RUNNING: usize = 1024;
/// Finished jobs kept for `wait` (the oldest go first).
const MAX_FINISHED: usize = 1024;
pub(super) const SIGKILL: i32 = 9;

/// A background job as the shells see it.
struct Job {
    /// The shell that started it (only that shell may `wait` for it).
    owner: u64,
    /// Its exit status, once it has finished.
    status: Option<i32>,
    kill: CancellationToken,
    /// The signal that killed it.
    signal: Arc<AtomicI32>,
}

/// The jobs' records, shared with the jobs' own futures.
#[derive(Default)]
struct Table {
    jobs: Mutex<BTreeMap<i64, Job>>,
    /// A job finished.
    done: Notify,
}

/// The background jobs of one script.
pub(super) struct Jobs<'s> {
    /// Jobs started and not yet taken by the runner.
    incoming: Mutex<Vec<BoxFut<'s, ()>>>,
    arrived: Notify,
    table: Arc<Table>,
    next_pid: AtomicI64,
    next_owner: AtomicU64,
}

/// What `wait` found.
pub(super) enum Waited {
    /// The job's status.
    Done(i32),
    /// No such job of this shell.
    Unknown,
}

impl<'s> Jobs<'s> {
    pub(super) fn new() -> Arc<Jobs<'s>> {
        Arc::new(Jobs {
            incoming: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            table: Arc::default(),
            // PID 1 is the container's main process.
            next_pid: AtomicI64::new(2),
            next_owner: AtomicU64::new(1),
        })
    }

    /// An identity for a new shell (or subshell).
    pub(super) fn new_owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed)
    }

    /// Start `job` for shell `owner`: its process ID, or None when too many run already.
    pub(super) fn spawn(&self, owner: u64, job: BoxFut<'s, i32>) -> Option<i64> {
        {
            let mut jobs = self.table.jobs.lock();
            let running = jobs.values().filter(|j| j.status.is_none()).count();
            if running >= MAX_RUNNING {
                return None;
            }
            let finished: Vec<i64> = jobs
                .iter()
                .filter(|(_, j)| j.status.is_some())
                .map(|(p, _)| *p)
                .collect();
            for p in finished
                .iter()
                .take(finished.len().saturating_sub(MAX_FINISHED))
            {
                jobs.remove(p);
            }
        }
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        let kill = CancellationToken::new();
        let signal = Arc::new(AtomicI32::new(0));
        self.table.jobs.lock().insert(
            pid,
            Job {
                owner,
                status: None,
                kill: kill.clone(),
                signal: Arc::clone(&signal),
            },
        );
        let table = Arc::clone(&self.table);
        let fut = async move {
            let code = tokio::select! {
                code = job => code & 255,
                () = kill.cancelled() => 128 + signal.load(Ordering::Relaxed),
            };
            if let Some(j) = table.jobs.lock().get_mut(&pid) {
                j.status = Some(code);
            }
            table.done.notify_waiters();
        };
        self.incoming.lock().push(Box::pin(fut));
        self.arrived.notify_waiters();
        Some(pid)
    }

    /// Poll the jobs as they are started; never returns.
    pub(super) async fn run(&self) {
        let mut running = FuturesUnordered::new();
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            running.extend(self.incoming.lock().drain(..));
            if running.is_empty() {
                arrived.await;
                continue;
            }
            tokio::select! {
                () = &mut arrived => {}
                _ = running.next() => {}
            }
        }
    }

    /// Send `signal` to job `pid`: None when there is no such job. A signal whose default
    /// action ends a process ends the job (status 128+signal); the others are ignored.
    pub(super) fn signal(&self, pid: i64, signal: i32) -> Option<()> {
        let jobs = self.table.jobs.lock();
        let job = jobs.get(&pid)?;
        if job.status.is_some() {
            return None;
        }
        // SIGCHLD, SIGCONT, SIGURG and SIGWINCH are ignored; the stop signals would stop it.
        let harmless = matches!(signal, 0 | 17..=23 | 28);
        if !harmless {
            job.signal.store(signal, Ordering::Relaxed);
            job.kill.cancel();
        }
        Some(())
    }

    /// Whether `owner` has a job still running.
    fn running_of(&self, owner: u64) -> bool {
        self.table
            .jobs
            .lock()
            .values()
            .any(|j| j.owner == owner && j.status.is_none())
    }

    /// Forget `owner`'s finished jobs (`wait` without operands has waited for them).
    fn forget_finished(&self, owner: u64) {
        self.table
            .jobs
            .lock()
            .retain(|_, j| j.owner != owner || j.status.is_none());
    }

    /// Wait for all of `owner`'s jobs.
    pub(super) async fn wait_all(&self, owner: u64) {
        loop {
            let done = self.table.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if !self.running_of(owner) {
                self.forget_finished(owner);
                return;
            }
            done.await;
        }
    }

    /// Wait for `owner`'s job `pid` (or, with None, for any one of its jobs): its status, and
    /// the job is forgotten.
    pub(super) async fn wait_one(&self, owner: u64, pid: Option<i64>) -> Waited {
        loop {
            let done = self.table.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            {
                let mut jobs = self.table.jobs.lock();
                let mine: Vec<(i64, Option<i32>)> = jobs
                    .iter()
                    .filter(|(p, j)| j.owner == owner && pid.is_none_or(|want| **p == want))
                    .map(|(p, j)| (*p, j.status))
                    .collect();
                if mine.is_empty() {
                    return Waited::Unknown;
                }
                if let Some((p, Some(code))) = mine.iter().find(|(_, s)| s.is_some()) {
                    jobs.remove(p);
                    return Waited::Done(*code);
                }
            }
            done.await;
        }
    }
}

/// The signals a container's main process running `sh` receives (the kubelet's SIGTERM, a
/// `kill 1` from `kubectl exec`), and which of them it takes: as PID 1 of its PID namespace, it
/// gets only the signals it has a handler for; the kernel drops the others. `sh` has a handler
/// for the signals its script traps (`trap ACTION SIG`; `trap '' SIG` ignores one), and for
/// SIGINT when it runs a script (`sh -c` or a file), which stops it with status 130.
#[derive(Debug, Default)]
pub struct Signals {
    state: Mutex<SigState>,
    arrived: Notify,
}

#[derive(Debug, Default)]
struct SigState {
    /// Bit `n - 1`: signal `n` has a trap action.
    caught: u64,
    /// Bit `n - 1`: signal `n` is ignored (`trap '' SIG`).
    ignored: u64,
    /// Bit `n - 1`: signal `n` arrived and its trap has not run yet.
    pending: u64,
    /// SIGINT without a trap stops the shell (it runs a script).
    int_exits: bool,
}

fn bit(signal: i32) -> Option<u64> {
    (1..=64).contains(&signal).then(|| 1u64 << (signal - 1))
}

impl Signals {
    /// A shell's signals, before its script sets any trap.
    pub fn new() -> Arc<Signals> {
        Arc::default()
    }

    /// Send `signal` (a Linux number): whether the shell takes it (it then acts on it once the
    /// command it is running ends, or at once while it sleeps or waits); false when the kernel
    /// drops it.
    pub fn send(&self, signal: i32) -> bool {
        let Some(b) = bit(signal) else {
            return false;
        };
        let takes = {
            let mut st = self.state.lock();
            let takes =
                st.caught & b != 0 || (signal == SIGINT && st.int_exits && st.ignored & b == 0);
            if takes {
                st.pending |= b;
            }
            takes
        };
        if takes {
            self.arrived.notify_waiters();
        }
        takes
    }

    /// The shell runs a script: SIGINT stops it unless trapped.
    pub(super) fn set_int_exits(&self) {
        self.state.lock().int_exits = true;
    }

    /// `trap` changed `signal`'s action: None for the default, "" to ignore it.
    pub(super) fn set_action(&self, signal: i32, action: Option<&str>) {
        let Some(b) = bit(signal) else {
            return;
        };
        if signal == SIGKILL || signal == 19 {
            // SIGKILL and SIGSTOP cannot be caught or ignored.
            return;
        }
        let mut st = self.state.lock();
        st.caught &= !b;
        st.ignored &= !b;
        match action {
            None => {}
            Some("") => st.ignored |= b,
            Some(_) => st.caught |= b,
        }
    }

    /// The lowest signal that arrived and has not been acted on, now taken.
    pub(super) fn take(&self) -> Option<i32> {
        let mut st = self.state.lock();
        if st.pending == 0 {
            return None;
        }
        let n = st.pending.trailing_zeros();
        st.pending &= !(1u64 << n);
        Some(n as i32 + 1)
    }

    /// The lowest signal that arrived and has not been acted on (0: none), left pending.
    pub(super) fn peek_lowest(&self) -> i32 {
        let pending = self.state.lock().pending;
        if pending == 0 {
            0
        } else {
            pending.trailing_zeros() as i32 + 1
        }
    }

    /// Whether a signal arrived and has not been acted on.
    pub(super) fn pending(&self) -> bool {
        self.state.lock().pending != 0
    }

    /// Wait until a signal arrives (at once if one is pending).
    pub(super) async fn arrival(&self) {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if self.pending() {
                return;
            }
            arrived.await;
        }
    }
}
