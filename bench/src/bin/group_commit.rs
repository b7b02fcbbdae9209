//! Group commit of the SQLite store against the fsync floor of the same disk.
//!
//! On the disk of `target/` (the directory of this binary's build), measures:
//! * (a) the fsync floor: append a 200-byte record to a file and `fdatasync` it, in a loop;
//! * (b) one durable run at a time of a 10-step flow on `SqliteStore`;
//! * (c) 1,000 durable runs of the same flow at once (tokio multi-thread).
//!
//! For each: checkpointed steps per second, and the latency of a step's save (the store's
//! `append`), p50 and p99, in units of the floor's mean fsync and, for (b) and (c), in units of
//! the run's mean commit cycle (its wall time over its writer's commits). The floor is measured
//! before and after the runs, and the faster of the two is the unit (the machine may be shared).
//! "At most 2 fsyncs" means a save waits at most for the commit in progress and its own: 2
//! cycles. In fsync units, with N saves in flight the mean latency is N / throughput (Little's
//! law), whatever the commit cycle: the table's footnote prints that bound.
//!
//! Two measures of a save's latency, for (b) and (c):
//! * time: the store's `append` timed around the call by a wrapping store, from the call to
//!   the task resuming with the answer; it includes the time the task waits for a runtime
//!   thread after its answer (with 1,000 tasks answered at once, most of them wait);
//! * commits: the writer's own count of the commits each request waited for, its own included,
//!   from being queued (the sender records how many commits had completed) to the commit that
//!   carries it (which computes the difference into a histogram, `SqliteStore::stats`). It
//!   counts every request of the writer: the appends and the runs' creates and last documents
//!   (each of which releases its run's claim). The design's bound is 2: a request queued while the writer is between
//!   commits is carried by the next one (1), one queued during a commit by the one after it
//!   (2); more only behind more than a batch (1,024) of queued requests, or when the sending
//!   thread was held up between reading the count and queuing the request (the commits
//!   completed meanwhile are counted). p50, p99 and max are read from the histogram (its last
//!   bucket is 9 or more; then the max is the writer's).
//!
//! (c) runs `--rounds` times (7 by default) on one store; the median round is reported, with the
//! spread of all rounds, so that one round disturbed by the rest of the machine does not decide.
//!
//! `cargo run --release -p orchflow-bench --bin group_commit -- [--runs N] [--rounds R] [--json FILE]`
//! prints a table, and writes the figures as one JSON line to FILE when asked.

use orchflow::graph::FlowGraph;
use orchflow::store::{
    Checkpoint, CheckpointStore, Claim, JournalEntry, RunDocument, RunListing, RunQuery,
    StoreFuture,
};
use orchflow::{RunId, SqliteStore, flow, step};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STEPS: u64 = 10;

/// One round of (c): `$runs` runs of the flow `$f` at once on `$store`; the row (its commits
/// waited for left out: (c) reports them over all rounds) and the writer's counters over the
/// round (commits, requests, time applying, time committing, wall time). A macro because the
/// flow's type cannot be named.
macro_rules! concurrent_round {
    ($f:expr, $store:expr, $runs:expr) => {
        async {
            let (f, store, runs): (&Arc<_>, &Timed, u64) = (&$f, &$store, $runs);
            let before = store.inner.stats();
            let start = Instant::now();
            let mut tasks = Vec::with_capacity(runs as usize);
            for i in 0..runs {
                let (f, store) = (Arc::clone(f), store.clone());
                tasks.push(tokio::spawn(async move {
                    f.durable(store).run(i).await.output == Some(i + STEPS)
                }));
            }
            for task in tasks {
                if !task.await? {
                    return Err("a concurrent run failed".into());
                }
            }
            let elapsed = start.elapsed();
            let after = store.inner.stats();
            let mut concurrent = row(
                "(c) 1,000 runs at once",
                runs * STEPS,
                elapsed,
                taken(store),
            );
            concurrent.cycle = Some(
                elapsed
                    / u32::try_from((after.commits - before.commits).max(1)).unwrap_or(u32::MAX),
            );
            Ok::<_, Box<dyn std::error::Error>>((
                concurrent,
                (
                    after.commits - before.commits,
                    after.requests - before.requests,
                    after.applying - before.applying,
                    after.committing - before.committing,
                    elapsed,
                ),
            ))
        }
    };
}

#[step]
async fn s(x: u64) -> u64 {
    x + 1
}

/// A store that times every `append` of the store it wraps.
#[derive(Clone)]
struct Timed {
    inner: SqliteStore,
    saves: Arc<Mutex<Vec<Duration>>>,
}

impl CheckpointStore for Timed {
    fn create<'a>(&'a self, document: &'a RunDocument) -> StoreFuture<'a, Claim> {
        self.inner.create(document)
    }
    fn claim<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Claim> {
        self.inner.claim(run_id)
    }
    fn put_document<'a>(
        &'a self,
        claim: &'a Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        self.inner.put_document(claim, document)
    }
    fn put_last_document<'a>(
        &'a self,
        claim: Claim,
        document: &'a RunDocument,
    ) -> StoreFuture<'a, ()> {
        self.inner.put_last_document(claim, document)
    }
    fn append<'a>(&'a self, claim: &'a Claim, entry: &'a JournalEntry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let start = Instant::now();
            let result = self.inner.append(claim, entry).await;
            let took = start.elapsed();
            self.saves
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(took);
            result
        })
    }
    fn load<'a>(&'a self, run_id: RunId) -> StoreFuture<'a, Option<Checkpoint>> {
        self.inner.load(run_id)
    }
    fn list_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, RunListing> {
        self.inner.list_runs(query)
    }

    fn put_graph<'a>(&'a self, graph: &'a FlowGraph) -> StoreFuture<'a, ()> {
        self.inner.put_graph(graph)
    }

    fn graph<'a>(&'a self, fingerprint: &'a str) -> StoreFuture<'a, Option<FlowGraph>> {
        self.inner.graph(fingerprint)
    }
}

/// One row of the table.
struct Row {
    name: &'static str,
    steps_per_s: f64,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    /// The mean commit cycle (wall time over commits), for the store's rows.
    cycle: Option<Duration>,
    /// The commits the writer's requests waited for, for the store's rows.
    waited: Option<Waited>,
}

/// The commits the writer's requests waited for (their own included), from the writer's
/// histogram between two reads of its counters.
#[derive(Clone, Copy)]
struct Waited {
    /// Requests counted.
    requests: u64,
    /// `buckets[n]`: requests that waited for `n` commits; the last one for that many or more.
    buckets: [u64; 10],
    p50: u64,
    p99: u64,
    /// The highest bucket; in the last one, the writer's max over the store's life.
    max: u64,
}

impl Waited {
    /// The histogram `after` less `before`; `writer_max` is the writer's max so far. `None`
    /// when no request was counted.
    fn between(before: &[u64; 10], after: &[u64; 10], writer_max: u64) -> Option<Waited> {
        let buckets: [u64; 10] = std::array::from_fn(|i| after[i] - before[i]);
        let requests: u64 = buckets.iter().sum();
        if requests == 0 {
            return None;
        }
        // The value of the `i`-th request (0-based) in increasing order, as `percentile` picks.
        let at = |p: f64| {
            let i = ((requests - 1) as f64 * p).round() as u64;
            let mut seen = 0;
            for (n, count) in buckets.iter().enumerate() {
                seen += count;
                if seen > i {
                    return n as u64;
                }
            }
            9
        };
        let highest = buckets.iter().rposition(|&n| n > 0).unwrap_or(0) as u64;
        Some(Waited {
            requests,
            buckets,
            p50: at(0.5),
            p99: at(0.99),
            max: if highest == 9 { writer_max } else { highest },
        })
    }

    /// The non-empty buckets: `1: 4021, 2: 5980`.
    fn histogram(&self) -> String {
        let mut parts = Vec::new();
        for (n, &count) in self.buckets.iter().enumerate() {
            if count > 0 {
                let plus = if n == 9 { "+" } else { "" };
                parts.push(format!("{n}{plus}: {count}"));
            }
        }
        parts.join(", ")
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn row(name: &'static str, steps: u64, elapsed: Duration, mut lat: Vec<Duration>) -> Row {
    lat.sort();
    let mean = if lat.is_empty() {
        Duration::ZERO
    } else {
        lat.iter().sum::<Duration>() / lat.len() as u32
    };
    Row {
        name,
        steps_per_s: steps as f64 / elapsed.as_secs_f64(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        mean,
        cycle: None,
        waited: None,
    }
}

/// (a): append 200 bytes and fdatasync, `n` times.
fn fsync_floor(dir: &Path, n: u64) -> std::io::Result<Row> {
    let path = dir.join("fsync-floor.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let record = [b'x'; 199];
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        file.write_all(&record)?;
        file.write_all(b"\n")?;
        file.sync_data()?;
        lat.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(row("(a) fsync floor", n, elapsed, lat))
}

fn fresh_store(dir: &Path, name: &str) -> Result<Timed, Box<dyn std::error::Error>> {
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(Timed {
        inner: SqliteStore::open(&path)?,
        saves: Arc::default(),
    })
}

fn taken(store: &Timed) -> Vec<Duration> {
    std::mem::take(&mut *store.saves.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The target directory: the one this binary was built in.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut json = None;
    let mut runs: u64 = 1000;
    let mut rounds: usize = 7;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = args.next(),
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(runs),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(rounds)
                    .max(1)
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let dir = target_dir().join("group-commit-bench");
    std::fs::create_dir_all(&dir)?;

    // The floor is measured before and after the store's runs; the faster of the two (the
    // one less disturbed by the rest of the machine) is the unit.
    let floor_before = fsync_floor(&dir, 1000)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let f = Arc::new(flow! { s => s => s => s => s => s => s => s => s => s });

    // (b) one run at a time.
    let single = rt.block_on(async {
        let store = fresh_store(&dir, "single.db")?;
        // A warm-up run: the file and the statement cache.
        f.durable(store.clone()).run(0).await;
        taken(&store);
        let n = 50u64;
        let before = store.inner.stats();
        let start = Instant::now();
        for i in 0..n {
            let run = f.durable(store.clone()).run(i).await;
            if run.output != Some(i + STEPS) {
                return Err(format!("run {i}: {:?}", run.error).into());
            }
        }
        let elapsed = start.elapsed();
        // Anything the runs left queued (a claim released on drop) is committed and counted.
        store.inner.flush().await?;
        let after = store.inner.stats();
        let commits = after.commits - before.commits;
        let mut single = row("(b) one run at a time", n * STEPS, elapsed, taken(&store));
        single.cycle = Some(elapsed / u32::try_from(commits.max(1)).unwrap_or(u32::MAX));
        single.waited = Waited::between(&before.waited, &after.waited, after.waited_max);
        Ok::<_, Box<dyn std::error::Error>>(single)
    })?;

    // (c) `runs` runs at once, `rounds` times on one store; the median round (by throughput)
    // is reported, with the spread of the rounds.
    let mut all_rounds = Vec::with_capacity(rounds);
    let store = fresh_store(&dir, "concurrent.db")?;
    rt.block_on(async {
        f.durable(store.clone()).run(0).await;
    });
    taken(&store);
    let before = store.inner.stats();
    for _ in 0..rounds {
        all_rounds.push(rt.block_on(concurrent_round!(f, store, runs))?);
    }
    // Anything the runs left queued (a claim released on drop) is committed and counted.
    rt.block_on(store.inner.flush())?;
    let after = store.inner.stats();
    let waited_c = Waited::between(&before.waited, &after.waited, after.waited_max);
    drop(store);
    all_rounds.sort_by(|a, b| a.0.steps_per_s.total_cmp(&b.0.steps_per_s));
    let spread = (
        all_rounds[0].0.steps_per_s,
        all_rounds[all_rounds.len() - 1].0.steps_per_s,
    );
    let (mut concurrent, commits) = all_rounds.swap_remove(all_rounds.len() / 2);
    concurrent.waited = waited_c;

    let floor_after = fsync_floor(&dir, 1000)?;
    println!(
        "fsync floor before: {:.0} steps/s (mean {:.2?}), after: {:.0} steps/s (mean {:.2?})",
        floor_before.steps_per_s, floor_before.mean, floor_after.steps_per_s, floor_after.mean
    );
    let floor = if floor_before.steps_per_s >= floor_after.steps_per_s {
        floor_before
    } else {
        floor_after
    };
    let unit = floor.mean.as_secs_f64();
    let in_fsyncs = |d: Duration| d.as_secs_f64() / unit;
    println!("disk of {}", dir.display());
    println!(
        "{:<26} {:>12} {:>10} {:>10} {:>9} {:>9} {:>10} {:>9} {:>9}",
        "", "steps/s", "p50", "p99", "p50/fsync", "p99/fsync", "cycle", "p50/cycle", "p99/cycle"
    );
    for r in [&floor, &single, &concurrent] {
        let (cycle, p50_cycles, p99_cycles) = match r.cycle {
            Some(c) => (
                format!("{c:.2?}"),
                format!("{:.2}", r.p50.as_secs_f64() / c.as_secs_f64()),
                format!("{:.2}", r.p99.as_secs_f64() / c.as_secs_f64()),
            ),
            None => ("-".to_string(), "-".to_string(), "-".to_string()),
        };
        println!(
            "{:<26} {:>12.0} {:>10.2?} {:>10.2?} {:>9.2} {:>9.2} {:>10} {:>9} {:>9}",
            r.name,
            r.steps_per_s,
            r.p50,
            r.p99,
            in_fsyncs(r.p50),
            in_fsyncs(r.p99),
            cycle,
            p50_cycles,
            p99_cycles,
        );
    }
    let cycle_c = concurrent.cycle.unwrap_or(Duration::ZERO).as_secs_f64();
    let in_cycles = |d: Duration| d.as_secs_f64() / cycle_c.max(f64::MIN_POSITIVE);
    // Little's law: with `runs` saves in flight, the mean latency is in-flight / throughput.
    let little = runs as f64 / concurrent.steps_per_s;
    println!(
        "cycle: the run's wall time over its writer's commits. \"<= 2 fsyncs\" means a save waits \
         at most for the commit in progress and its own: <= 2 cycles. In fsync units, {runs} \
         saves in flight at {:.0} steps/s wait {:.2} ms = {:.1} fsyncs on average whatever the \
         commit (Little's law: in-flight / throughput).",
        concurrent.steps_per_s,
        little * 1e3,
        little / unit,
    );
    let ratio_c = concurrent.steps_per_s / floor.steps_per_s;
    let ratio_b = single.steps_per_s / floor.steps_per_s;
    println!(
        "(c)/(a) throughput: {ratio_c:.1}x   (b)/(a): {ratio_b:.2}x   (c)/(b): {:.1}x   \
         commits in (c): {} for {} requests ({:.1} per commit)",
        concurrent.steps_per_s / single.steps_per_s,
        commits.0,
        commits.1,
        commits.1 as f64 / commits.0.max(1) as f64
    );
    println!(
        "writer in (c): applying {:.1} µs per request, committing {:.2} ms per commit; \
         busy {:.0}% of the run",
        commits.2.as_secs_f64() * 1e6 / commits.1.max(1) as f64,
        commits.3.as_secs_f64() * 1e3 / commits.0.max(1) as f64,
        (commits.2 + commits.3).as_secs_f64() * 100.0 / commits.4.as_secs_f64(),
    );
    let line = format!(
        concat!(
            "{{\"fsync_mean_us\":{:.1},\"fsync_steps_per_s\":{:.1},",
            "\"single_steps_per_s\":{:.1},\"single_p50_us\":{:.1},\"single_p99_us\":{:.1},",
            "\"concurrent_runs\":{},\"concurrent_steps_per_s\":{:.1},",
            "\"concurrent_p50_us\":{:.1},\"concurrent_p99_us\":{:.1},",
            "\"concurrent_p50_fsyncs\":{:.2},\"concurrent_p99_fsyncs\":{:.2},",
            "\"concurrent_cycle_us\":{:.1},\"concurrent_p50_cycles\":{:.2},",
            "\"concurrent_p99_cycles\":{:.2},\"littles_law_fsyncs\":{:.2},",
            "\"throughput_vs_fsync\":{:.2},\"commits\":{},\"requests\":{},",
            "\"rounds\":{},\"concurrent_min_steps_per_s\":{:.1},\"concurrent_max_steps_per_s\":{:.1},",
            "\"single_waited_commits_p50\":{},\"single_waited_commits_p99\":{},\"single_waited_commits_max\":{},",
            "\"concurrent_waited_commits_p50\":{},\"concurrent_waited_commits_p99\":{},\"concurrent_waited_commits_max\":{}}}"
        ),
        floor.mean.as_secs_f64() * 1e6,
        floor.steps_per_s,
        single.steps_per_s,
        single.p50.as_secs_f64() * 1e6,
        single.p99.as_secs_f64() * 1e6,
        runs,
        concurrent.steps_per_s,
        concurrent.p50.as_secs_f64() * 1e6,
        concurrent.p99.as_secs_f64() * 1e6,
        in_fsyncs(concurrent.p50),
        in_fsyncs(concurrent.p99),
        cycle_c * 1e6,
        in_cycles(concurrent.p50),
        in_cycles(concurrent.p99),
        little / unit,
        ratio_c,
        commits.0,
        commits.1,
        rounds,
        spread.0,
        spread.1,
        single.waited.map_or(0, |w| w.p50),
        single.waited.map_or(0, |w| w.p99),
        single.waited.map_or(0, |w| w.max),
        concurrent.waited.map_or(0, |w| w.p50),
        concurrent.waited.map_or(0, |w| w.p99),
        concurrent.waited.map_or(0, |w| w.max),
    );
    println!(
        "p50, p99: time from the append's call to its task resuming with the answer (runtime \
         wake-up included). Commits waited for: the writer's count per request (appends, creates, \
         last documents), from queued to answered, its own commit included; the \
         design's bound is 2 (more: over 1,024 queued ahead, or the sender held up between \
         reading the count and queuing)."
    );
    for (r, scope) in [(&single, "its 50 runs"), (&concurrent, "all rounds")] {
        if let Some(w) = r.waited {
            println!(
                "{} ({scope}): commits waited for: p50 {}, p99 {}, max {} over {} requests ({})",
                r.name,
                w.p50,
                w.p99,
                w.max,
                w.requests,
                w.histogram()
            );
        }
    }
    println!(
        "(c) is the median of {rounds} rounds on one store: {:.0} to {:.0} steps/s ({:.1}x to {:.1}x the floor)",
        spread.0,
        spread.1,
        spread.0 / floor.steps_per_s,
        spread.1 / floor.steps_per_s
    );
    println!("{line}");
    if let Some(file) = json {
        std::fs::write(&file, format!("{line}\n"))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
