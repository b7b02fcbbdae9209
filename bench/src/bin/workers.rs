//! Runs per second with 1, 2 and 4 worker processes sharing one store.
//!
//! ```sh
//! eval "$(.ci/postgres)"
//! cargo run --release -p orchflow-bench --bin workers -- [--runs 2000] [--store postgres|sqlite|both] [--json FILE]
//! ```
//!
//! For each worker count, on a fresh store (a new Postgres schema, or a new SQLite file on the
//! disk of `target/`), it submits `--runs` runs of a 10-step flow of trivial steps, starts that
//! many worker processes (this binary with `--worker`; each a `Worker` with concurrency 32),
//! and times from the start of the first worker until no run is queued or running. Printed:
//! one table, and with `--json` the same numbers as JSON. Postgres rows need
//! `ORCHFLOW_POSTGRES_URL`.

use orchflow::store::{CheckpointStore, RunQuery, RunQueue, RunStatus};
use orchflow::worker::Worker;
use orchflow::{flow, step};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[step]
async fn s(x: u64) -> u64 {
    x + 1
}

macro_rules! ten {
    () => {
        flow! { #[flow(name = "ten")] s => s => s => s => s => s => s => s => s => s }
    };
}

async fn open(spec: &str) -> Result<Arc<dyn RunQueue>, String> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let store = orchflow::SqliteStore::open(path).map_err(|e| e.to_string())?;
        return Ok(Arc::new(store));
    }
    if let Some(rest) = spec.strip_prefix("postgres:") {
        let (url, schema) = rest.rsplit_once('#').ok_or("postgres:<url>#<schema>")?;
        let options = orchflow::PostgresOptions::new().schema(schema);
        let store = orchflow::PostgresStore::connect_with(url, options)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(Arc::new(store));
    }
    Err(format!("unknown store {spec}"))
}

/// A store's name for a worker count: a fresh SQLite file or Postgres schema.
type SpecFor = Box<dyn Fn(usize) -> String>;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    if let Some(spec) = arg("--worker") {
        let store = open(&spec).await.unwrap_or_else(|e| die(&e));
        let worker = Worker::shared(store)
            .register(ten!())
            .concurrency(32)
            .poll_interval(Duration::from_millis(5));
        worker.run_until(std::future::pending::<()>(), |_| {}).await;
        return;
    }
    let runs: u64 = arg("--runs").and_then(|r| r.parse().ok()).unwrap_or(2000);
    let which = arg("--store").unwrap_or_else(|| "both".to_string());
    let mut rows = Vec::new();
    let scratch = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-workers");
    std::fs::create_dir_all(&scratch).unwrap_or_else(|e| die(&e.to_string()));
    let mut stores: Vec<(&str, SpecFor)> = Vec::new();
    if which == "sqlite" || which == "both" {
        let scratch = scratch.clone();
        stores.push((
            "sqlite",
            Box::new(move |n| {
                let path = scratch.join(format!("workers{n}-{}.db", std::process::id()));
                format!("sqlite:{}", path.display())
            }),
        ));
    }
    if which == "postgres" || which == "both" {
        match std::env::var("ORCHFLOW_POSTGRES_URL") {
            Ok(url) => stores.push((
                "postgres",
                Box::new(move |n| {
                    format!("postgres:{url}#bench_workers_{n}_{}", std::process::id())
                }),
            )),
            Err(_) => eprintln!("postgres rows skipped: ORCHFLOW_POSTGRES_URL is not set"),
        }
    }
    for (name, spec_for) in &stores {
        for workers in [1usize, 2, 4] {
            let spec = spec_for(workers);
            let store = open(&spec).await.unwrap_or_else(|e| die(&e));
            let f = ten!();
            for x in 0..runs {
                f.durable(Arc::clone(&store))
                    .submit(x)
                    .await
                    .unwrap_or_else(|e| die(&e.to_string()));
            }
            let exe = std::env::current_exe().unwrap_or_else(|e| die(&e.to_string()));
            let started = Instant::now();
            let mut children: Vec<_> = (0..workers)
                .map(|_| {
                    Command::new(&exe)
                        .args(["--worker", &spec])
                        .stdout(Stdio::null())
                        .spawn()
                        .unwrap_or_else(|e| die(&e.to_string()))
                })
                .collect();
            loop {
                let busy = |status| {
                    let store = Arc::clone(&store);
                    async move {
                        let q = RunQuery::new().status(status).limit(1);
                        store.list_runs(&q).await.map(|l| !l.runs.is_empty())
                    }
                };
                let queued = busy(RunStatus::Queued).await.unwrap_or(true);
                let running = busy(RunStatus::Running).await.unwrap_or(true);
                if !queued && !running {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let elapsed = started.elapsed();
            for child in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
            let completed = store
                .list_runs(&RunQuery::new().status(RunStatus::Completed))
                .await
                .map(|l| l.runs.len())
                .unwrap_or(0);
            if let Some(path) = spec.strip_prefix("sqlite:") {
                drop(store);
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
            if completed as u64 != runs {
                die(&format!(
                    "{name}, {workers} workers: {completed} of {runs} runs completed"
                ));
            }
            let per_s = runs as f64 / elapsed.as_secs_f64();
            eprintln!(
                "{name}: {workers} worker(s): {runs} runs in {:.2} s = {per_s:.0} runs/s",
                elapsed.as_secs_f64()
            );
            rows.push(serde_json::json!({
                "store": name, "workers": workers, "runs": runs, "steps_per_run": 10,
                "seconds": elapsed.as_secs_f64(), "runs_per_s": per_s,
            }));
        }
    }
    println!("| store | workers | runs/s | vs 1 worker |");
    println!("|---|---|---|---|");
    for r in &rows {
        let one = rows
            .iter()
            .find(|o| o["store"] == r["store"] && o["workers"] == 1)
            .and_then(|o| o["runs_per_s"].as_f64())
            .unwrap_or(f64::NAN);
        let v = r["runs_per_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {} | {v:.0} | {:.2}× |",
            r["store"].as_str().unwrap_or("?"),
            r["workers"],
            v / one
        );
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let out = serde_json::json!({ "cpus": cpus, "rows": rows });
    if let Some(path) = arg("--json") {
        std::fs::write(&path, out.to_string()).unwrap_or_else(|e| die(&e.to_string()));
    }
    println!("{out}");
}

fn die(message: &str) -> ! {
    eprintln!("workers bench: {message}");
    std::process::exit(1);
}
