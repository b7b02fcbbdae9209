//! The writer thread: the only write connection of a file in this process, and group commit.
//!
//! Invariants:
//! * Every write of every handle of one file in this process goes through one ordered channel
//!   to one thread that owns the file's only write connection. A request sent before another
//!   (a claim's release, then a new claim) is applied before it.
//! * The thread takes every request queued (up to [`MAX_BATCH`]) and applies them in one
//!   `BEGIN IMMEDIATE` transaction. Each request is all or nothing on its own: its write is
//!   guarded by its conditions in the same statement (the lease, token and expiry, the entry's
//!   sequence, the run id being new), so a refused request (claim lost, out of sequence, run
//!   exists) writes nothing, and only then is the reason read; a request that writes one
//!   statement (a create, an append, a document, a claim) is atomic as that statement is; one
//!   that writes more (`mark_waiting`) does so inside its own savepoint, rolled back alone on an
//!   error. Every statement a request writes with writes one row at most and is `OR FAIL`:
//!   SQLite checks all of a row's constraints before it writes any of it, so a row refused by
//!   a constraint writes nothing, as under the default `ABORT`, without the statement journal
//!   `ABORT` keeps to undo a statement's earlier rows; an I/O error or a full disk inside such a
//!   statement rolls the whole transaction back (below).
//!   None of this undoes the other requests. The transaction is committed once (one fsync in WAL
//!   with `synchronous = FULL`), and only then is each request answered; if the commit fails,
//!   or SQLite rolled the transaction back itself (I/O error, full disk), every request of the
//!   batch gets the error. A request that arrives during a commit waits for that commit and
//!   its own. The answers are sent by a second thread ([`Answerer`]), batch after batch in the
//!   order they were committed, while the writer goes on with the next batch (a batch of fewer
//!   than [`ANSWER_HERE`] requests, when the answerer has answered all it was handed, by the
//!   writer itself); each answer gives the request's operation back, to be freed by the thread
//!   that made it ([`Answer`]).
//! * Commits are numbered 1, 2, … in the order they complete; a commit counts as completed once
//!   its `COMMIT` has returned, before any of its requests is answered. A failed commit (its
//!   requests answered with the error) gets no number; the writer never retries a batch.
//! * Every request records, when it is queued, how many commits had completed (one atomic load
//!   on the sender's side, no lock, no allocation). When the commit carrying it completes, the
//!   request has waited for (that commit's number − the recorded count) commits, its own
//!   included, and that goes into the writer's histogram ([`Counters::waited`]). A request
//!   queued while the writer is between batches (waiting for work, or handing the last
//!   commit's answers over) is carried by the next commit: 1. One queued while a batch is being applied or
//!   committed (from the moment the writer took the batch until its `COMMIT` returns) joins the
//!   batch after it: 2.
//!   More only when more than [`MAX_BATCH`] requests were queued ahead of it, so that the batch
//!   it would join was full, or when its sender was held up between the load and its push onto
//!   the channel (descheduled, or behind other senders in the push): the commits completed
//!   meanwhile are counted too. The load is taken before the push so that the count is never
//!   less than the commits the request waited for once queued; in particular never 0, since
//!   the commit carrying it is counted after the writer received it. The load is relaxed: a
//!   load that misses a commit completing at that instant counts one more, never fewer.
//! * Dropping the [`Writer`] (the last handle of the file in this process) closes the channel:
//!   the thread commits every request queued before, waits for the answerer to answer them,
//!   then ends, and the drop waits for that for at most [`DRAIN_BOUND`].
//! * Leases: a claim sets owner, holder, token + 1 and expiry only when the run has no live
//!   lease; every write checks owner, token and expiry in the statement that writes; a run's
//!   last document clears its lease in the statement that writes it. Each registered
//!   handle's leases are renewed by one statement every third of its ttl, and only while they
//!   have not expired (a lapsed lease is never revived).

mod apply;

use orchflow_core::RunId;
use orchflow_core::store::{FlowKey, RunDocument, RunStatus, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::{Duration, Instant, SystemTime};

/// The most requests one transaction applies.
pub(crate) const MAX_BATCH: usize = 1024;

/// Nanoseconds since the Unix epoch, negative before it, saturating far from it.
pub(crate) fn nanos(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// A time from [`nanos`].
pub(crate) fn from_nanos(n: i64) -> SystemTime {
    if n >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(n.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_nanos(n.unsigned_abs())
    }
}

fn ttl_nanos(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX)
}

/// The buckets of [`Counters::waited`]: 0 to 8 commits, and 9 or more.
pub(crate) const WAITED_BUCKETS: usize = 10;

/// Counters of the writer, for tests and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Commits completed: the number of the last one.
    pub(crate) commits: AtomicU64,
    /// Requests carried by those commits.
    pub(crate) requests: AtomicU64,
    /// Requests carried by a commit, by the commits each waited for from being queued (its own
    /// included): `waited[n]` counts those that waited for `n`, the last bucket for that many
    /// or more. Bucket 0 stays empty (see the module docs).
    pub(crate) waited: [AtomicU64; WAITED_BUCKETS],
    /// The most commits one request waited for.
    pub(crate) waited_max: AtomicU64,
    /// Time spent applying requests (statements before the commit), in nanoseconds.
    pub(crate) apply_nanos: AtomicU64,
    /// Time spent in `COMMIT` (the WAL write and its fsync), in nanoseconds.
    pub(crate) commit_nanos: AtomicU64,
}

/// Who holds leases: one store handle.
#[derive(Debug)]
pub(crate) struct Owner {
    /// Unique per handle.
    pub(crate) id: String,
    /// How a `RunBusy` names it.
    pub(crate) holder: String,
    /// Its leases' time to live.
    pub(crate) ttl: Duration,
}

/// A run's document and the columns taken from it.
#[derive(Debug)]
pub(crate) struct DocRow {
    pub(crate) run_id: RunId,
    pub(crate) flow: String,
    pub(crate) fingerprint: String,
    pub(crate) status: &'static str,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) json: String,
    pub(crate) waiting: Option<String>,
}

impl DocRow {
    pub(crate) fn of(document: &RunDocument) -> Result<DocRow, StoreError> {
        Ok(DocRow {
            run_id: document.run_id,
            flow: document.flow.clone(),
            fingerprint: document.fingerprint.clone(),
            status: document.status.as_str(),
            created_at: nanos(document.created_at),
            updated_at: nanos(document.updated_at),
            json: serde_json::to_string(document).map_err(|source| StoreError::Serialize {
                what: "run document",
                source,
            })?,
            waiting: document.waiting.clone(),
        })
    }
}

/// A journal entry as rows.
#[derive(Debug)]
pub(crate) struct EntryRow {
    pub(crate) seq: u64,
    pub(crate) record: String,
    pub(crate) answered: Option<String>,
    pub(crate) state: Option<String>,
    /// The entry's traces as one JSON array, `None` when it has none.
    pub(crate) traces: Option<String>,
}

/// What a request asks of the writer.
#[derive(Debug)]
pub(crate) enum Op {
    Create {
        row: DocRow,
        owner: Arc<Owner>,
    },
    Claim {
        run_id: RunId,
        owner: Arc<Owner>,
    },
    ClaimNext {
        flows: Vec<FlowKey>,
        owner: Arc<Owner>,
    },
    Append {
        run_id: RunId,
        token: u64,
        owner: Arc<Owner>,
        entry: EntryRow,
    },
    /// A document; `last` releases the lease with it.
    PutDocument {
        token: u64,
        owner: Arc<Owner>,
        row: DocRow,
        last: bool,
    },
    Release {
        run_id: RunId,
        token: u64,
        owner: String,
    },
    MarkWaiting {
        flows: Vec<FlowKey>,
        reason: String,
    },
    Cancel {
        run_id: RunId,
    },
    /// Keeps a flow's graph unless the file has one for its fingerprint.
    PutGraph {
        fingerprint: String,
        name: String,
        graph: String,
    },
    /// Nothing: answered once every request queued before it is committed.
    Flush,
    /// Starts renewing a handle's leases.
    Register {
        owner: String,
        ttl: Duration,
    },
    /// Stops renewing them.
    Unregister {
        owner: String,
    },
}

/// What a request got.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A claim with this token.
    Token(u64),
    /// `claim_next`'s run and token, if any.
    Next(Option<(RunId, u64)>),
    Done,
    Count(u64),
    Status(RunStatus),
}

/// What the writer answers a request with: its result, and its operation given back. The
/// operation's buffers (documents, entries) were allocated by the requesting thread, and are
/// freed by it: freeing on the writer memory that another thread allocated costs the writer more
/// (with glibc, a lock of that thread's malloc arena, which the runtime's threads contend for).
pub(crate) struct Answer {
    pub(crate) result: Result<Reply, StoreError>,
    pub(crate) op: Op,
}

pub(crate) type ReplyTx = tokio::sync::oneshot::Sender<Answer>;

pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: Option<ReplyTx>,
    /// The commits completed when it was queued.
    pub(crate) seen: u64,
}

/// How long dropping a [`Writer`] waits for its thread to commit what is queued and stop.
pub(crate) const DRAIN_BOUND: Duration = Duration::from_secs(5);

/// The writer of one file: its channel, and what readers and handles share. Dropping it closes
/// the channel and waits (at most [`DRAIN_BOUND`]) for the thread to commit every request
/// queued before and stop.
pub(crate) struct Writer {
    tx: Option<Sender<Request>>,
    pub(crate) counters: Arc<Counters>,
    /// Disconnected when the writer thread has ended.
    ended: std::sync::Mutex<Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set once dropping the writer has drained it (or given up at the bound).
    pub(crate) drained: Arc<Drained>,
}

/// A flag set once, with a bounded wait for it: a file being reopened while its previous
/// writer drains waits for that drain, so requests queued before the reopening are committed
/// before the new writer's.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    done: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Drained {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Whether it is set.
    pub(crate) fn is_set(&self) -> bool {
        *self.done.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until set, at most `bound`.
    pub(crate) fn wait(&self, bound: Duration) {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(done, bound, |done| !*done)
            .map_err(|p| p.into_inner());
    }
}

impl Writer {
    /// Starts the writer thread on `conn`, and the checkpointer thread on `checkpointer` (a
    /// second read-write connection to the same file).
    pub(crate) fn start(
        conn: Connection,
        checkpointer: Connection,
        location: String,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = std::sync::mpsc::channel();
        // One pending signal is enough: the checkpointer copies everything committed so far.
        let (committed, commits) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("orchflow-sqlite-checkpointer".to_string())
            .spawn(move || checkpoint_loop(&checkpointer, &commits))?;
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let (alive, ended) = std::sync::mpsc::channel::<()>();
        let answerer = Answerer::start()?;
        let thread = std::thread::Builder::new()
            .name("orchflow-sqlite-writer".to_string())
            .spawn(move || {
                // Dropped when the thread ends, however it ends: `ended` then disconnects.
                let _alive = alive;
                WriterThread {
                    conn,
                    location,
                    counters: thread_counters,
                    owners: HashMap::new(),
                    next_beat: None,
                    committed: Some(committed),
                    held: RefCell::default(),
                    results: Vec::with_capacity(MAX_BATCH),
                    answerer: Some(answerer),
                }
                .run(&rx)
            })?;
        Ok(Writer {
            tx: Some(tx),
            counters,
            ended: std::sync::Mutex::new(ended),
            thread: Some(thread),
            drained: Arc::default(),
        })
    }

    /// Queues `op`, with the commits completed so far; false when the writer thread is gone.
    pub(crate) fn send(&self, op: Op, reply: Option<ReplyTx>) -> bool {
        let seen = self.counters.commits.load(Ordering::Relaxed);
        self.tx
            .as_ref()
            .is_some_and(|tx| tx.send(Request { op, reply, seen }).is_ok())
    }
}

impl Drop for Writer {
    /// Closes the channel; the thread commits what is queued (the channel yields every request
    /// sent before it reports the close) and ends. Waits for that at most [`DRAIN_BOUND`], so
    /// that a wedged disk cannot hang the process: past it, the thread is left to finish (or
    /// not) on its own, and what it had not committed is lost as in a crash.
    fn drop(&mut self) {
        drop(self.tx.take());
        let ended = self.ended.get_mut().unwrap_or_else(|p| p.into_inner());
        match ended.recv_timeout(DRAIN_BOUND) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(thread) = self.thread.take() {
                    // The thread has ended: this returns at once. A panic in it was already
                    // reported; every request it had not answered got an error (its reply
                    // sender dropped).
                    let _ = thread.join();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        self.drained.set();
    }
}

struct WriterThread {
    conn: Connection,
    /// `sqlite:<path>`.
    location: String,
    counters: Arc<Counters>,
    /// The registered handles and their ttl.
    owners: HashMap<String, Duration>,
    next_beat: Option<Instant>,
    /// Tells the checkpointer a commit landed.
    committed: Option<SyncSender<()>>,
    /// The runs this writer has written with a claim since it took it: see [`Held`].
    held: RefCell<HashMap<RunId, Held>>,
    /// The results of the batch being applied, kept (empty) from batch to batch.
    results: Vec<Result<Reply, StoreError>>,
    /// The thread that answers committed batches; `None` answers on this thread (tests).
    answerer: Option<Answerer>,
}

/// What the writer knows of a run it appended to (or created) under a claim: the run's row
/// number and, for that claim's token, the seq of its last entry. Sound while the claim holds:
/// only the holder of a token writes under it, and every write of this process goes through this
/// writer. An append under the same token checks the lease by row number and the sequence here,
/// and writes with one statement; the row's lease is still checked by that statement. A
/// document or a release of the run finds its row by that number (a run's row number never
/// changes), under any token; the statement checks the lease as by the run's id. Forgotten
/// on release and cancel, and all of it when a transaction fails (its appends are undone).
#[derive(Debug, Clone, Copy)]
struct Held {
    row: i64,
    token: u64,
    last: u64,
}

fn sql_error(op: &'static str, location: String, e: rusqlite::Error) -> StoreError {
    StoreError::Io {
        op,
        location,
        source: std::io::Error::other(e),
    }
}

impl WriterThread {
    fn run(mut self, rx: &Receiver<Request>) {
        // Kept from batch to batch with its capacity: a batch's worth of requests allocated
        // and freed at every commit made the writer fault fresh pages in.
        let mut work: Vec<Request> = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = match self.next_beat {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(r) => Some(r),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match rx.recv() {
                    Ok(r) => Some(r),
                    Err(_) => return,
                },
            };
            let mut received = first;
            while let Some(request) = received.take() {
                self.take_in(request, &mut work);
                if work.len() >= MAX_BATCH {
                    break;
                }
                if let Ok(r) = rx.try_recv() {
                    received = Some(r);
                }
            }
            let beat = self.next_beat.is_some_and(|at| Instant::now() >= at);
            if work.is_empty() && !beat {
                continue;
            }
            work = self.commit(work, beat);
            if beat {
                self.next_beat = None;
                self.schedule();
            }
        }
    }

    /// Adds `request` to the batch, or does it at once when it only concerns this thread (a
    /// handle's heartbeats starting or stopping).
    fn take_in(&mut self, request: Request, work: &mut Vec<Request>) {
        match &request.op {
            Op::Register { owner, ttl } => {
                self.owners.insert(owner.clone(), *ttl);
                self.schedule();
            }
            Op::Unregister { owner } => {
                self.owners.remove(owner);
                self.schedule();
            }
            _ => work.push(request),
        }
    }

    /// Sets the next heartbeat a third of the shortest ttl from now, if none is set.
    fn schedule(&mut self) {
        match self.owners.values().min() {
            None => self.next_beat = None,
            Some(ttl) => {
                let at = Instant::now() + *ttl / 3;
                if self.next_beat.is_none_or(|next| at < next) {
                    self.next_beat = Some(at);
                }
            }
        }
    }

    fn exec(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Applies `work` (and the heartbeats when `beat`) in one transaction, then answers; gives
    /// `work` back empty, for the next batch.
    fn commit(&mut self, work: Vec<Request>, beat: bool) -> Vec<Request> {
        let n = work.len() as u64;
        let mut results = std::mem::take(&mut self.results);
        results.clear();
        if let Err(e) = self.exec("BEGIN IMMEDIATE") {
            results.extend(
                work.iter()
                    .map(|_| Err(sql_error("lock", self.location.clone(), clone_err(&e)))),
            );
            return self.answer(Answers { work, results });
        }
        // Read under the write lock: waiting for another process's transaction must not make
        // the batch judge and set leases with a time that has passed.
        let now = nanos(SystemTime::now());
        let applying = Instant::now();
        // Set when SQLite rolled the whole transaction back itself (an I/O error, a full
        // disk): nothing of the batch is written, and every request gets the error.
        let mut lost: Option<rusqlite::Error> = None;
        let mut prepared = apply::Prepared::new(&self.conn);
        for request in &work {
            let result = match &lost {
                Some(e) => Err(sql_error("write", self.location.clone(), clone_err(e))),
                None => self.apply(&request.op, now, &mut prepared),
            };
            if lost.is_none() && self.conn.is_autocommit() {
                lost = Some(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    Some("the transaction was rolled back by an error".to_string()),
                ));
            }
            results.push(result);
        }
        drop(prepared);
        if beat {
            for (owner, ttl) in &self.owners {
                // Errors here leave the leases as they were; the next beat tries again.
                if let Ok(mut stmt) = self.conn.prepare_cached(
                    "UPDATE runs SET lease_expires = ?1 WHERE lease_owner = ?2 AND lease_expires > ?3",
                ) {
                    let _ = stmt.execute(params![now.saturating_add(ttl_nanos(*ttl)), owner, now]);
                }
            }
        }
        let committing = Instant::now();
        let committed = match lost {
            Some(e) => Err(e),
            None => self.exec("COMMIT"),
        };
        let elapsed = |since: Instant, until: Instant| {
            u64::try_from((until - since).as_nanos()).unwrap_or(u64::MAX)
        };
        self.counters
            .apply_nanos
            .fetch_add(elapsed(applying, committing), Ordering::Relaxed);
        self.counters
            .commit_nanos
            .fetch_add(elapsed(committing, Instant::now()), Ordering::Relaxed);
        match committed {
            Ok(()) => {
                // Counted before any request is answered: a request its answer lets be sent
                // records this commit as completed.
                let number = self.counters.commits.fetch_add(1, Ordering::Relaxed) + 1;
                self.counters.requests.fetch_add(n, Ordering::Relaxed);
                self.count_waits(number, work.iter().map(|r| r.seen));
                if let Some(committed) = &self.committed {
                    let _ = committed.try_send(());
                }
            }
            Err(e) => {
                let _ = self.exec("ROLLBACK");
                // The batch's appends are undone: what was remembered of them is wrong.
                self.held.borrow_mut().clear();
                for result in &mut results {
                    *result = Err(sql_error("commit", self.location.clone(), clone_err(&e)));
                }
            }
        }
        self.answer(Answers { work, results })
    }

    /// Answers a batch: hands it to the answerer, or answers it here when there is none (or it
    /// has ended), or when the batch is small ([`ANSWER_HERE`]) and the answerer has answered
    /// every batch handed over (so that answers still go out in commit order). Gives back empty
    /// vectors for the next batch: a pair the answerer is done with, or new ones.
    fn answer(&mut self, mut answers: Answers) -> Vec<Request> {
        let mut next = match &mut self.answerer {
            Some(answerer) => {
                answerer.collect();
                if answers.work.len() < ANSWER_HERE && answerer.out == 0 {
                    answers.send();
                    answers
                } else {
                    match answerer.hand(answers) {
                        Ok(()) => answerer.spares.pop().unwrap_or_else(|| Answers {
                            work: Vec::with_capacity(MAX_BATCH),
                            results: Vec::with_capacity(MAX_BATCH),
                        }),
                        Err(mut answers) => {
                            answers.send();
                            answers
                        }
                    }
                }
            }
            None => {
                answers.send();
                answers
            }
        };
        next.results.clear();
        self.results = next.results;
        next.work.clear();
        next.work
    }

    /// Adds the requests carried by commit `number`, queued when `seen` commits had completed,
    /// to [`Counters::waited`].
    fn count_waits(&self, number: u64, seen: impl Iterator<Item = u64>) {
        let mut buckets = [0u64; WAITED_BUCKETS];
        let mut max = 0;
        for seen in seen {
            let waited = number.saturating_sub(seen);
            max = max.max(waited);
            let bucket =
                usize::try_from(waited).map_or(WAITED_BUCKETS - 1, |w| w.min(WAITED_BUCKETS - 1));
            buckets[bucket] += 1;
        }
        for (counter, count) in self.counters.waited.iter().zip(buckets) {
            if count > 0 {
                counter.fetch_add(count, Ordering::Relaxed);
            }
        }
        self.counters.waited_max.fetch_max(max, Ordering::Relaxed);
    }

    /// Runs `writes` (more than one statement) inside a savepoint: all of them or none.
    fn atomically<T>(
        &self,
        run: Option<RunId>,
        writes: impl FnOnce() -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let fail = |e| sql_error("write", self.run_location(run), e);
        self.exec("SAVEPOINT request").map_err(fail)?;
        match writes() {
            Ok(value) => {
                self.exec("RELEASE request").map_err(fail)?;
                Ok(value)
            }
            Err(e) => {
                // When SQLite has already rolled the transaction back these fail too; the
                // batch sees it (`is_autocommit`) and answers every request with the error.
                let _ = self
                    .exec("ROLLBACK TO request")
                    .and_then(|()| self.exec("RELEASE request"));
                Err(fail(e))
            }
        }
    }
}

/// A batch's requests and their results, in order.
struct Answers {
    work: Vec<Request>,
    results: Vec<Result<Reply, StoreError>>,
}

impl Answers {
    /// Answers every request that waits for a reply, leaving both vectors empty.
    fn send(&mut self) {
        for (request, result) in self.work.drain(..).zip(self.results.drain(..)) {
            if let Some(tx) = request.reply {
                let _ = tx.send(Answer {
                    result,
                    op: request.op,
                });
            }
        }
        self.work.clear();
        self.results.clear();
    }
}

/// Batches of fewer requests than this are answered by the writer itself when the answerer
/// is idle: for a few requests, the hop to another thread would add more to their latency (a
/// thread wake-up) than waking their tasks costs the writer.
pub(crate) const ANSWER_HERE: usize = 32;

/// The thread that answers the writer's batches once they are committed, in the order they
/// were: waking a requester's task can wake a parked runtime thread (a system call), which the
/// writer would otherwise pay for, for hundreds of requests a batch, before it starts the next
/// one. The emptied vectors come back for the writer to reuse. Dropping it waits until every
/// batch handed over is answered.
struct Answerer {
    tx: Option<Sender<Answers>>,
    spare: Receiver<Answers>,
    /// Emptied vectors given back, not yet reused.
    spares: Vec<Answers>,
    /// Batches handed over and not yet given back.
    out: usize,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Answerer {
    fn start() -> std::io::Result<Answerer> {
        let (tx, batches) = std::sync::mpsc::channel::<Answers>();
        let (give_back, spare) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("orchflow-sqlite-answerer".to_string())
            .spawn(move || {
                while let Ok(mut answers) = batches.recv() {
                    answers.send();
                    let _ = give_back.send(answers);
                }
            })?;
        Ok(Answerer {
            tx: Some(tx),
            spare,
            spares: Vec::new(),
            out: 0,
            thread: Some(thread),
        })
    }

    /// Takes in the vectors given back so far.
    fn collect(&mut self) {
        while let Ok(answers) = self.spare.try_recv() {
            self.out = self.out.saturating_sub(1);
            self.spares.push(answers);
        }
    }

    /// Hands a batch over; gives it back when the thread has ended.
    fn hand(&mut self, answers: Answers) -> Result<(), Answers> {
        match &self.tx {
            Some(tx) => {
                tx.send(answers).map_err(|unsent| unsent.0)?;
                self.out += 1;
                Ok(())
            }
            None => Err(answers),
        }
    }
}

impl Drop for Answerer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            // It ends once it has answered what it was handed: the channel is closed.
            let _ = thread.join();
        }
    }
}

/// Copies committed WAL frames into the database file off the writer's path: a passive
/// checkpoint (it never waits for, nor blocks, the writer or readers) at most every
/// [`CHECKPOINT_EVERY`] while commits come in. Ends when the writer thread ends.
fn checkpoint_loop(conn: &Connection, commits: &Receiver<()>) {
    while commits.recv().is_ok() {
        // A failed checkpoint leaves the frames in the WAL, where they are durable; the next
        // one (or the writer's own at its threshold) copies them.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        std::thread::sleep(CHECKPOINT_EVERY);
    }
}

/// The least time between two background checkpoints.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// `rusqlite::Error` is not `Clone`; a batch's failure goes to every request as text.
fn clone_err(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchflow_core::store::{FORMAT, FORMAT_VERSION};
    use tokio::sync::oneshot;

    fn owner(ttl: Duration) -> Arc<Owner> {
        Arc::new(Owner {
            id: "owner-a".to_string(),
            holder: "store handle owner-a (test)".to_string(),
            ttl,
        })
    }

    fn row(run_id: RunId) -> DocRow {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        DocRow::of(&RunDocument {
            format: FORMAT.to_string(),
            version: FORMAT_VERSION,
            run_id,
            flow: "f".to_string(),
            fingerprint: "0123456789abcdef".to_string(),
            shape: "f".to_string(),
            input: serde_json::json!(1),
            status: RunStatus::Running,
            pending: Vec::new(),
            output: None,
            error: None,
            created_at: at,
            updated_at: at,
            waiting: None,
            lineage: Default::default(),
        })
        .expect("a row")
    }

    fn entry(seq: u64) -> EntryRow {
        EntryRow {
            seq,
            record: format!("{{\"Point\":{seq}}}"),
            answered: None,
            state: None,
            traces: Some("[{},{}]".to_string()),
        }
    }

    const JOURNAL: &str =
        "SELECT count(*) FROM journal WHERE run = (SELECT id FROM runs WHERE run_id = ?1)";
    const TRACES: &str = "SELECT COALESCE(SUM(json_array_length(traces)), 0) FROM journal
         WHERE run = (SELECT id FROM runs WHERE run_id = ?1)";

    fn thread(dir: &tempfile::TempDir) -> WriterThread {
        let path = dir.path().join("runs.db");
        WriterThread {
            conn: crate::schema::open_writer(&path).expect("open"),
            location: format!("sqlite:{}", path.display()),
            counters: Arc::default(),
            owners: HashMap::new(),
            next_beat: None,
            committed: None,
            held: RefCell::default(),
            results: Vec::new(),
            answerer: None,
        }
    }

    /// A batch with refused requests among accepted ones commits once; a refused request writes
    /// nothing and undoes nothing of the others, and every request gets its own answer.
    #[test]
    fn one_batch_is_one_commit_and_a_refused_request_undoes_nothing_else() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut writer = thread(&dir);
        let (a, b) = (RunId::new_v4(), RunId::new_v4());
        let owner = owner(Duration::from_secs(30));
        let append = |run_id, token, seq| Op::Append {
            run_id,
            token,
            owner: Arc::clone(&owner),
            entry: entry(seq),
        };
        let ops = vec![
            Op::Create {
                row: row(a),
                owner: Arc::clone(&owner),
            },
            Op::Create {
                row: row(b),
                owner: Arc::clone(&owner),
            },
            append(a, 1, 1),
            append(a, 1, 3),
            Op::Create {
                row: row(a),
                owner: Arc::clone(&owner),
            },
            append(b, 7, 1),
            append(a, 1, 2),
            append(b, 1, 1),
        ];
        let mut replies = Vec::new();
        let work = ops
            .into_iter()
            .map(|op| {
                let (tx, rx) = oneshot::channel();
                replies.push(rx);
                Request {
                    op,
                    reply: Some(tx),
                    seen: 0,
                }
            })
            .collect();
        writer.commit(work, false);
        assert_eq!(writer.counters.commits.load(Ordering::Relaxed), 1);
        assert_eq!(writer.counters.requests.load(Ordering::Relaxed), 8);
        let got: Vec<String> = replies
            .into_iter()
            .map(|mut rx| match rx.try_recv().expect("answered").result {
                Ok(reply) => format!("{reply:?}"),
                Err(e) => match e {
                    StoreError::OutOfSequence { last, found, .. } => format!("seq {last}/{found}"),
                    StoreError::RunExists(_) => "exists".to_string(),
                    StoreError::ClaimLost { token, .. } => format!("lost {token}"),
                    other => panic!("unexpected {other:?}"),
                },
            })
            .collect();
        assert_eq!(
            got,
            [
                "Token(1)", "Token(1)", "Done", "seq 1/3", "exists", "lost 7", "Done", "Done"
            ]
        );
        let count = |sql: &str, run: RunId| -> i64 {
            writer
                .conn
                .query_row(sql, [run.to_string()], |r| r.get(0))
                .expect("count")
        };
        assert_eq!(count(JOURNAL, a), 2);
        assert_eq!(count(TRACES, a), 4);
        assert_eq!(count(JOURNAL, b), 1);
    }

    /// A request whose row breaks a constraint (an entry the file already has, written behind
    /// the writer's back) fails alone: it writes nothing, and the batch's other requests, before
    /// and after it, are committed.
    #[test]
    fn a_constraint_failure_fails_its_request_alone() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut writer = thread(&dir);
        let owner = owner(Duration::from_secs(30));
        let (a, b) = (RunId::new_v4(), RunId::new_v4());
        let request = |op| {
            let (tx, rx) = oneshot::channel();
            (
                Request {
                    op,
                    reply: Some(tx),
                    seen: 0,
                },
                rx,
            )
        };
        let append = |run_id, seq| Op::Append {
            run_id,
            token: 1,
            owner: Arc::clone(&owner),
            entry: entry(seq),
        };
        let create = |run_id| Op::Create {
            row: row(run_id),
            owner: Arc::clone(&owner),
        };
        let (first, _) = request(create(a));
        let (second, _) = request(create(b));
        let (third, _) = request(append(a, 1));
        writer.commit(vec![first, second, third], false);
        crate::schema::open_writer(&dir.path().join("runs.db"))
            .expect("open")
            .execute(
                "INSERT INTO journal (run, seq, record) SELECT id, 2, 'theirs' FROM runs
                 WHERE run_id = ?1",
                [a.to_string()],
            )
            .expect("an entry behind the writer's back");
        let (before, mut before_rx) = request(append(b, 1));
        let (clash, mut clash_rx) = request(append(a, 2));
        let (after, mut after_rx) = request(append(b, 2));
        writer.commit(vec![before, clash, after], false);
        assert_eq!(writer.counters.commits.load(Ordering::Relaxed), 2);
        let result = |rx: &mut oneshot::Receiver<Answer>| rx.try_recv().expect("answered").result;
        assert!(matches!(result(&mut before_rx), Ok(Reply::Done)));
        assert!(matches!(result(&mut clash_rx), Err(StoreError::Io { .. })));
        assert!(matches!(result(&mut after_rx), Ok(Reply::Done)));
        let count = |run: RunId| -> i64 {
            writer
                .conn
                .query_row(JOURNAL, [run.to_string()], |r| r.get(0))
                .expect("count")
        };
        assert_eq!(count(a), 2);
        assert_eq!(count(b), 2);
        let record: String = writer
            .conn
            .query_row(
                "SELECT record FROM journal WHERE seq = 2
                 AND run = (SELECT id FROM runs WHERE run_id = ?1)",
                [a.to_string()],
                |r| r.get(0),
            )
            .expect("the entry");
        assert_eq!(record, "theirs");
    }

    /// A document is written whole, whether it keeps the run's flow, fingerprint and creation
    /// time or not, and whether the writer knows the run's row or not; and it is refused, writing
    /// nothing, without the lease.
    #[test]
    fn documents_are_written_whole_and_only_under_the_lease() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut writer = thread(&dir);
        let owner = owner(Duration::from_secs(30));
        let run = RunId::new_v4();
        let one = |writer: &mut WriterThread, op| {
            let (tx, mut rx) = oneshot::channel();
            writer.commit(
                vec![Request {
                    op,
                    reply: Some(tx),
                    seen: 0,
                }],
                false,
            );
            match rx.try_recv().expect("answered").result {
                Ok(reply) => format!("{reply:?}"),
                Err(StoreError::ClaimLost { token, .. }) => format!("lost {token}"),
                Err(other) => panic!("unexpected {other:?}"),
            }
        };
        let document = |status, flow: &str, created: u64| {
            let mut row = row(run);
            row.status = status;
            row.flow = flow.to_string();
            row.created_at = i64::try_from(created).expect("a time");
            row.json = format!("{{\"status\":\"{status}\",\"flow\":\"{flow}\"}}");
            Op::PutDocument {
                token: 1,
                owner: Arc::clone(&owner),
                row,
                last: false,
            }
        };
        let stored = |writer: &WriterThread| -> (String, String, i64, String) {
            writer
                .conn
                .query_row(
                    "SELECT status, flow, created_at, document FROM runs WHERE run_id = ?1",
                    [run.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .expect("the run")
        };
        let created = Op::Create {
            row: row(run),
            owner: Arc::clone(&owner),
        };
        assert_eq!(one(&mut writer, created), "Token(1)");
        let at = u64::try_from(row(run).created_at).expect("a time");
        // Known row, same flow and time.
        assert_eq!(one(&mut writer, document("suspended", "f", at)), "Done");
        let (status, flow, time, json) = stored(&writer);
        assert_eq!((status.as_str(), flow.as_str()), ("suspended", "f"));
        assert_eq!(time, row(run).created_at);
        assert!(json.contains("suspended"));
        // Known row, another flow and time.
        assert_eq!(one(&mut writer, document("failed", "g", at + 7)), "Done");
        let (status, flow, time, _) = stored(&writer);
        assert_eq!((status.as_str(), flow.as_str()), ("failed", "g"));
        assert_eq!(time, row(run).created_at + 7);
        // Row not known to the writer (forgotten, as after a failed batch), both kinds.
        writer.held.borrow_mut().clear();
        assert_eq!(one(&mut writer, document("running", "g", at + 7)), "Done");
        assert_eq!(stored(&writer).0, "running");
        writer.held.borrow_mut().clear();
        assert_eq!(one(&mut writer, document("completed", "f", at)), "Done");
        let (status, flow, time, _) = stored(&writer);
        assert_eq!((status.as_str(), flow.as_str()), ("completed", "f"));
        assert_eq!(time, row(run).created_at);
        // Without the lease, neither kind writes.
        writer
            .conn
            .execute("UPDATE runs SET lease_expires = 0", [])
            .expect("lapse");
        assert_eq!(one(&mut writer, document("failed", "f", at)), "lost 1");
        assert_eq!(one(&mut writer, document("failed", "h", at + 1)), "lost 1");
        let (status, flow, time, _) = stored(&writer);
        assert_eq!((status.as_str(), flow.as_str()), ("completed", "f"));
        assert_eq!(time, row(run).created_at);
    }

    /// With an answerer, every request of every batch is answered, each batch with its own
    /// results, large batches by the answerer and a small one by the writer; dropping the writer
    /// waits until the answerer has answered all it was handed.
    #[test]
    fn the_answerer_answers_every_batch_and_the_drop_waits_for_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut writer = thread(&dir);
        writer.answerer = Some(Answerer::start().expect("the answerer"));
        let owner = owner(Duration::from_secs(30));
        let runs: Vec<RunId> = (0..ANSWER_HERE + 8).map(|_| RunId::new_v4()).collect();
        let mut answers = Vec::new();
        let mut batch = |writer: &mut WriterThread, ops: Vec<Op>| {
            let work = ops
                .into_iter()
                .map(|op| {
                    let (tx, rx) = oneshot::channel();
                    answers.push(rx);
                    Request {
                        op,
                        reply: Some(tx),
                        seen: 0,
                    }
                })
                .collect();
            assert!(writer.commit(work, false).is_empty());
        };
        let creates = runs
            .iter()
            .map(|&run_id| Op::Create {
                row: row(run_id),
                owner: Arc::clone(&owner),
            })
            .collect();
        batch(&mut writer, creates);
        for seq in 1..=3 {
            let appends = runs
                .iter()
                .map(|&run_id| Op::Append {
                    run_id,
                    token: 1,
                    owner: Arc::clone(&owner),
                    entry: entry(seq),
                })
                .collect();
            batch(&mut writer, appends);
        }
        let answerer = writer.answerer.as_ref().expect("the answerer");
        assert!(answerer.out + answerer.spares.len() > 0, "handed over");
        // An append out of sequence, refused, in the last batch.
        batch(
            &mut writer,
            vec![Op::Append {
                run_id: runs[0],
                token: 1,
                owner: Arc::clone(&owner),
                entry: entry(9),
            }],
        );
        drop(writer);
        let got: Vec<String> = answers
            .into_iter()
            .map(|mut rx| {
                match rx
                    .try_recv()
                    .expect("answered before the drop returned")
                    .result
                {
                    Ok(reply) => format!("{reply:?}"),
                    Err(StoreError::OutOfSequence { last, found, .. }) => {
                        format!("seq {last}/{found}")
                    }
                    Err(other) => panic!("unexpected {other:?}"),
                }
            })
            .collect();
        let mut expected = vec!["Token(1)"; runs.len()];
        expected.extend(vec!["Done"; 3 * runs.len()]);
        expected.push("seq 3/9");
        assert_eq!(got, expected);
    }

    /// The heartbeat renews the unexpired leases of a registered owner, and never an expired one.
    #[test]
    fn heartbeats_renew_live_leases_only() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut writer = thread(&dir);
        let owner = owner(Duration::from_secs(60));
        writer.owners.insert(owner.id.clone(), owner.ttl);
        let (live, lapsed) = (RunId::new_v4(), RunId::new_v4());
        let create = |run_id| Request {
            op: Op::Create {
                row: row(run_id),
                owner: Arc::clone(&owner),
            },
            reply: None,
            seen: 0,
        };
        writer.commit(vec![create(live), create(lapsed)], false);
        let expiry = |writer: &WriterThread, run: RunId| -> i64 {
            writer
                .conn
                .query_row(
                    "SELECT lease_expires FROM runs WHERE run_id = ?1",
                    [run.to_string()],
                    |r| r.get(0),
                )
                .expect("expiry")
        };
        let before = expiry(&writer, live);
        writer
            .conn
            .execute(
                "UPDATE runs SET lease_expires = 0 WHERE run_id = ?1",
                [lapsed.to_string()],
            )
            .expect("lapse");
        std::thread::sleep(Duration::from_millis(5));
        writer.commit(Vec::new(), true);
        assert!(expiry(&writer, live) > before, "renewed");
        assert_eq!(expiry(&writer, lapsed), 0, "a lapsed lease stays lapsed");
    }

    /// What the writer remembers of a run it appends to never lets a write through that the
    /// file would refuse: a lapsed lease, a claim taken over (a new token), a seq out of order.
    #[test]
    fn remembered_runs_are_refused_as_the_file_says() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut writer = thread(&dir);
        let first = owner(Duration::from_secs(30));
        let second = Arc::new(Owner {
            id: "owner-b".to_string(),
            holder: "store handle owner-b (test)".to_string(),
            ttl: Duration::from_secs(30),
        });
        let run = RunId::new_v4();
        let one = |writer: &mut WriterThread, op| {
            let (tx, mut rx) = oneshot::channel();
            let seen = writer.counters.commits.load(Ordering::Relaxed);
            writer.commit(
                vec![Request {
                    op,
                    reply: Some(tx),
                    seen,
                }],
                false,
            );
            match rx.try_recv().expect("answered").result {
                Ok(reply) => format!("{reply:?}"),
                Err(StoreError::ClaimLost { token, .. }) => format!("lost {token}"),
                Err(StoreError::OutOfSequence { last, found, .. }) => format!("seq {last}/{found}"),
                Err(other) => panic!("unexpected {other:?}"),
            }
        };
        let append = |owner: &Arc<Owner>, token, seq| Op::Append {
            run_id: run,
            token,
            owner: Arc::clone(owner),
            entry: entry(seq),
        };
        let create = Op::Create {
            row: row(run),
            owner: Arc::clone(&first),
        };
        assert_eq!(one(&mut writer, create), "Token(1)");
        assert_eq!(one(&mut writer, append(&first, 1, 1)), "Done");
        assert_eq!(one(&mut writer, append(&first, 1, 3)), "seq 1/3");
        writer
            .conn
            .execute("UPDATE runs SET lease_expires = 0", [])
            .expect("lapse");
        assert_eq!(one(&mut writer, append(&first, 1, 2)), "lost 1");
        let claim = Op::Claim {
            run_id: run,
            owner: Arc::clone(&second),
        };
        assert_eq!(one(&mut writer, claim), "Token(2)");
        assert_eq!(one(&mut writer, append(&first, 1, 2)), "lost 1");
        assert_eq!(one(&mut writer, append(&second, 2, 2)), "Done");
        assert_eq!(one(&mut writer, append(&second, 2, 3)), "Done");
        assert_eq!(one(&mut writer, append(&first, 2, 4)), "lost 2");
        assert_eq!(one(&mut writer, append(&second, 2, 5)), "seq 3/5");
        let count: i64 = writer
            .conn
            .query_row(JOURNAL, [run.to_string()], |r| r.get(0))
            .expect("count");
        assert_eq!(count, 3);
    }

    /// The histogram of waits: each request counted once, by the commit that carried it, as
    /// that commit's number less the commits completed when it was queued; a failed commit
    /// gets no number and counts no request.
    #[test]
    fn each_committed_request_counts_the_commits_it_waited_for() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut writer = thread(&dir);
        let flush = |seen| Request {
            op: Op::Flush,
            reply: None,
            seen,
        };
        let waited = |writer: &WriterThread| -> Vec<u64> {
            writer
                .counters
                .waited
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect()
        };
        // Queued while the writer was idle: carried by commit 1.
        writer.commit(vec![flush(0), flush(0)], false);
        assert_eq!(waited(&writer), [0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        // Commit 2 carries one queued while idle; two more were queued during it (1 commit
        // completed) and one before commit 1 that did not fit in it: commit 3 carries them.
        writer.commit(vec![flush(1)], false);
        writer.commit(vec![flush(1), flush(1), flush(0)], false);
        assert_eq!(waited(&writer), [0, 3, 2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(writer.counters.waited_max.load(Ordering::Relaxed), 3);
        // A request queued before commit 1 and carried by commit 13 lands in the last bucket.
        for _ in 0..9 {
            writer.commit(Vec::new(), true);
        }
        writer.commit(vec![flush(0)], false);
        assert_eq!(writer.counters.commits.load(Ordering::Relaxed), 13);
        assert_eq!(waited(&writer), [0, 3, 2, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(writer.counters.waited_max.load(Ordering::Relaxed), 13);
        // A batch that cannot begin (another connection holds the write lock) is answered
        // with the error and is neither numbered nor counted.
        let other = crate::schema::open_writer(&dir.path().join("runs.db")).expect("open");
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        writer
            .conn
            .busy_timeout(Duration::from_millis(1))
            .expect("timeout");
        let (tx, mut rx) = oneshot::channel();
        writer.commit(
            vec![Request {
                op: Op::Flush,
                reply: Some(tx),
                seen: 13,
            }],
            false,
        );
        assert!(rx.try_recv().expect("answered").result.is_err());
        assert_eq!(writer.counters.commits.load(Ordering::Relaxed), 13);
        assert_eq!(waited(&writer), [0, 3, 2, 1, 0, 0, 0, 0, 0, 1]);
        other.execute_batch("ROLLBACK").expect("unlock");
        // Queued after commit 13 (the failed batch behind it): carried by commit 14.
        writer.commit(vec![flush(13)], false);
        assert_eq!(waited(&writer), [0, 4, 2, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            waited(&writer).iter().sum::<u64>(),
            writer.counters.requests.load(Ordering::Relaxed)
        );
    }
}
