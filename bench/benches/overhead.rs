//! orchflow against a hand-written tokio program doing the same work.
//!
//! Group and function names are matched across systems by `bench/compare` (floxide's rows come
//! from `benches/floxide.rs`). Every step is trivial (`x + 1`), so what is measured is the
//! orchestration: per step, per branch, per durable save.
//!
//! * `seq100`: 100 steps in sequence. `orchflow/events`: per-attempt traces and the live event
//!   stream on (value capture off); `orchflow/traces`: traces on, nobody listening to events;
//!   `orchflow/bare`: traces off; `tokio`: 100 awaited calls.
//! * `fanout100`: one value to 100 concurrent branches (ten groups of ten), then joined.
//! * `map100`, `map10000`: `map(inc, limit = 16)` over N numbers (`orchflow/traces`) against
//!   `futures::stream::iter(items).map(plain).buffered(16)` collected (`buffered`); per item.
//! * `durable100`, `durable10000`: a loop of N checkpointed iterations with the JSON store
//!   (`orchflow/json`) and the SQLite store (`orchflow/sqlite`), on the disk of the target
//!   directory, and for `durable100` the Postgres store (`orchflow/postgres`) on the server named
//!   by `ORCHFLOW_POSTGRES_URL` when it is set; `fsync` is the floor: N appends of one line,
//!   each followed by `fdatasync`, on the same disk.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use orchflow::{JsonCheckpointStore, flow, step};
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;

#[step]
async fn inc(x: u64) -> u64 {
    x + 1
}

#[step]
async fn branch(x: &u64) -> u64 {
    x + 1
}

#[step]
async fn join10(t: (u64, u64, u64, u64, u64, u64, u64, u64, u64, u64)) -> u64 {
    t.0 + t.1 + t.2 + t.3 + t.4 + t.5 + t.6 + t.7 + t.8 + t.9
}

#[step]
async fn join_all(t: (u64, u64, u64, u64, u64, u64, u64, u64, u64, u64)) -> u64 {
    t.0 + t.1 + t.2 + t.3 + t.4 + t.5 + t.6 + t.7 + t.8 + t.9
}

macro_rules! chain {
    ($($s:ident)*) => { flow! { $($s)=>* } };
}

/// The hand-written step.
#[inline(never)]
async fn plain(x: u64) -> u64 {
    x + 1
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot start a tokio runtime: {e}"),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn seq100(c: &mut Criterion) {
    let rt = runtime();
    let f = chain!(inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc
                   inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc
                   inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc
                   inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc
                   inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc inc);
    let bare = f.clone().record_traces(false);
    assert_eq!(rt.block_on(f.run(0)).output, Some(100));

    let mut g = c.benchmark_group("seq100");
    g.throughput(Throughput::Elements(100));
    g.bench_function("orchflow/events", |b| {
        b.to_async(&rt).iter(|| async {
            let mut events = f.stream(black_box(0));
            let mut n = 0usize;
            while let Some(e) = events.next().await {
                n += 1;
                black_box(&e);
            }
            n
        })
    });
    g.bench_function("orchflow/traces", |b| {
        b.to_async(&rt).iter(|| async { f.run(black_box(0)).await })
    });
    g.bench_function("orchflow/bare", |b| {
        b.to_async(&rt)
            .iter(|| async { bare.run(black_box(0)).await })
    });
    g.bench_function("tokio", |b| {
        b.to_async(&rt).iter(|| async {
            let mut x = black_box(0);
            for _ in 0..100 {
                x = plain(x).await;
            }
            x
        })
    });
    g.finish();
}

fn fanout100(c: &mut Criterion) {
    let rt = runtime();
    let ten = flow! { [branch, branch, branch, branch, branch, branch, branch, branch, branch, branch] => join10 };
    let f = flow! {
        [(ten.clone()), (ten.clone()), (ten.clone()), (ten.clone()), (ten.clone()),
         (ten.clone()), (ten.clone()), (ten.clone()), (ten.clone()), (ten.clone())] => join_all
    };
    assert_eq!(rt.block_on(f.run(0)).output, Some(100));

    let mut g = c.benchmark_group("fanout100");
    g.throughput(Throughput::Elements(100));
    g.bench_function("orchflow/traces", |b| {
        b.to_async(&rt).iter(|| async { f.run(black_box(0)).await })
    });
    g.bench_function("tokio", |b| {
        b.to_async(&rt).iter(|| async {
            let x = black_box(0u64);
            let all = futures::future::join_all((0..100).map(|_| plain(x))).await;
            all.iter().sum::<u64>()
        })
    });
    g.finish();
}

/// One map group: `map(inc, limit = 16)` over `n` numbers, and the hand-written `buffered(16)`.
fn map_group(c: &mut Criterion, rt: &tokio::runtime::Runtime, n: u64) {
    let f = flow! { map(inc, limit = 16) };
    let expected: Vec<u64> = (1..=n).collect();
    assert_eq!(
        rt.block_on(f.run((0..n).collect::<Vec<u64>>())).output,
        Some(expected)
    );
    let mut g = c.benchmark_group(format!("map{n}"));
    g.throughput(Throughput::Elements(n));
    g.bench_function("orchflow/traces", |b| {
        b.to_async(rt)
            .iter(|| async { f.run(black_box((0..n).collect::<Vec<u64>>())).await })
    });
    g.bench_function("buffered", |b| {
        b.to_async(rt).iter(|| async {
            let items = black_box((0..n).collect::<Vec<u64>>());
            futures::stream::iter(items)
                .map(plain)
                .buffered(16)
                .collect::<Vec<_>>()
                .await
        })
    });
    g.finish();
}

fn map(c: &mut Criterion) {
    let rt = runtime();
    map_group(c, &rt, 100);
    map_group(c, &rt, 10_000);
}

/// One durable group: the flow with the JSON, SQLite and (with `ORCHFLOW_POSTGRES_URL`, for
/// short runs) Postgres stores, and the append+fdatasync floor.
macro_rules! durable_group {
    ($c:expr, $rt:expr, $n:expr, $flow:expr) => {{
        let n: u32 = $n;
        let mut g = $c.benchmark_group(format!("durable{n}"));
        g.throughput(Throughput::Elements(u64::from(n)));
        g.sample_size(10);
        if n > 1000 {
            g.measurement_time(std::time::Duration::from_secs(30));
        }
        let dir = scratch(&format!("durable{n}"));
        let store = JsonCheckpointStore::new(&dir);
        let f = $flow;
        let check = $rt.block_on(f.durable(store.clone()).run(0));
        assert_eq!(check.output, Some(u64::from(n)), "{:?}", check.error);
        g.bench_function(BenchmarkId::new("orchflow", "json"), |b| {
            b.to_async(&$rt)
                .iter(|| async { f.durable(store.clone()).run(black_box(0)).await })
        });
        let sqlite = orchflow::SqliteStore::open(dir.join("runs.db"))
            .unwrap_or_else(|e| panic!("open the SQLite store: {e}"));
        g.bench_function(BenchmarkId::new("orchflow", "sqlite"), |b| {
            b.to_async(&$rt)
                .iter(|| async { f.durable(sqlite.clone()).run(black_box(0)).await })
        });
        // Postgres only for the short run: a commit per step makes the long one minutes long.
        if let (Ok(url), true) = (std::env::var("ORCHFLOW_POSTGRES_URL"), n <= 1000) {
            let schema = format!("bench_durable_{}", std::process::id());
            let options = orchflow::PostgresOptions::new().schema(schema);
            let postgres = $rt
                .block_on(orchflow::PostgresStore::connect_with(&url, options))
                .unwrap_or_else(|e| panic!("connect to Postgres: {e}"));
            g.bench_function(BenchmarkId::new("orchflow", "postgres"), |b| {
                b.to_async(&$rt)
                    .iter(|| async { f.durable(postgres.clone()).run(black_box(0)).await })
            });
        }
        let floor = dir.join("floor.jsonl");
        g.bench_function("fsync", |b| b.iter(|| append_and_sync(&floor, n)));
        g.finish();
        let _ = std::fs::remove_dir_all(&dir);
    }};
}

/// The floor of a durable step: one line appended and `fdatasync`ed, `n` times.
fn append_and_sync(path: &std::path::Path, n: u32) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) => panic!("cannot open {}: {e}", path.display()),
    };
    for i in 0..n {
        let line = format!(
            "{{\"seq\":{i},\"record\":{{\"point\":{{\"Loop1\":{{\"iteration\":{i},\"value\":{i}}}}}}}}}\n"
        );
        if let Err(e) = file
            .write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
        {
            panic!("cannot append to {}: {e}", path.display());
        }
    }
}

fn durable(c: &mut Criterion) {
    let rt = runtime();
    durable_group!(
        c,
        rt,
        100,
        flow! { #[flow(name = "durable")] loop(max = 100) { inc } }
    );
    durable_group!(
        c,
        rt,
        10_000,
        flow! { #[flow(name = "durable")] loop(max = 10000) { inc } }
    );
}

criterion_group!(benches, seq100, fanout100, map, durable);
criterion_main!(benches);
