//! A submitter and two worker processes sharing runs through PostgreSQL.
//!
//! ```sh
//! eval "$(.ci/postgres)"                                   # or any server you have
//! cargo run --example workers --features postgres          # submitter + two workers
//! cargo run --example workers --features postgres -- worker  # one more worker, by hand
//! ```
//!
//! The submitter submits six runs of a `publish` flow, starts two worker processes (this
//! program with the argument `worker`), answers each run's question as it shows up, and waits
//! until every run it submitted has completed. Each worker takes runs with `FOR UPDATE SKIP
//! LOCKED` under a heartbeated lease, runs them until they complete or suspend on their
//! question, and says so. The server is named by `ORCHFLOW_POSTGRES_URL` (default
//! `host=localhost user=postgres dbname=postgres`); when none answers, the example says how to
//! start one.

use orchflow::human::{self, Answer};
use orchflow::store::{CheckpointStore, RunQuery, RunStatus};
use orchflow::worker::{Outcome, Worker};
use orchflow::{PostgresStore, RunId, flow, step};
use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[step]
async fn draft(topic: String) -> String {
    format!("a post about {topic}")
}

#[step]
async fn docs(d: &String) -> String {
    format!("docs for {d}")
}

#[step]
async fn market(d: &String) -> String {
    format!("market notes for {d}")
}

#[step]
fn merge(parts: (String, String)) -> String {
    format!("{} + {}", parts.0, parts.1)
}

#[step]
fn decide(a: Answer<String>) -> String {
    if a.text == "yes" {
        format!("published: {}", a.value)
    } else {
        format!("sent back: {}", a.value)
    }
}

/// The flow both sides know, by name and fingerprint.
macro_rules! publish_flow {
    () => {{
        let review = human::ask("review", |d: &String| format!("publish \"{d}\"?"));
        flow! { #[flow(name = "publish")] draft => [docs, market] => merge => (review) => decide }
            .with_input(human::Suspend)
    }};
}

const SCHEMA: &str = "orchflow_workers_example";

fn url() -> String {
    std::env::var("ORCHFLOW_POSTGRES_URL")
        .unwrap_or_else(|_| "host=localhost user=postgres dbname=postgres".to_string())
}

async fn connect() -> Result<PostgresStore, orchflow::PostgresError> {
    let options = orchflow::PostgresOptions::new().schema(SCHEMA);
    PostgresStore::connect_with(&url(), options).await
}

#[tokio::main]
async fn main() {
    let store = match connect().await {
        Ok(store) => store,
        Err(e) => {
            eprintln!(
                "could not reach PostgreSQL at `{}`: {e}\n\n\
                 This example needs a PostgreSQL server. Start one and point ORCHFLOW_POSTGRES_URL at it:\n\
                 \x20 * a throwaway local server, from this repository:  eval \"$(.ci/postgres)\"\n\
                 \x20 * on Debian or Ubuntu:  sudo apt-get install postgresql && sudo service postgresql start\n\
                 \x20   then: export ORCHFLOW_POSTGRES_URL='host=/var/run/postgresql user=postgres dbname=postgres'\n\
                 \x20 * with Docker:  docker run -e POSTGRES_HOST_AUTH_METHOD=trust -p 5432:5432 postgres\n\
                 \x20   then: export ORCHFLOW_POSTGRES_URL='host=localhost user=postgres dbname=postgres'",
                url()
            );
            std::process::exit(2);
        }
    };
    if std::env::args().nth(1).as_deref() == Some("worker") {
        return work(store).await;
    }
    submit(store).await;
}

/// A worker: runs `publish` runs until its standard input closes, then lets its runs in
/// flight stop and exits.
async fn work(store: PostgresStore) {
    let name =
        std::env::var("WORKER_NAME").unwrap_or_else(|_| format!("worker {}", std::process::id()));
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = closed.send(());
    });
    let worker = Worker::new(store)
        .register(publish_flow!())
        .name(name.clone())
        .concurrency(4)
        .poll_interval(Duration::from_millis(50));
    let stats = worker
        .run_until(
            async {
                let _ = stdin_closed.await;
            },
            |report| {
                let what = match &report.outcome {
                    Outcome::Completed => "completed".to_string(),
                    Outcome::Suspended => "suspended: it waits for an answer".to_string(),
                    other => format!("stopped: {other:?}"),
                };
                println!("  [{name}] run {} {what}", short(report.run_id));
            },
        )
        .await;
    println!(
        "  [{name}] done: {} runs taken, {} completed",
        stats.taken, stats.completed
    );
}

/// The submitter: submits runs, starts two workers, answers questions, waits for the runs.
async fn submit(store: PostgresStore) {
    let f = publish_flow!();
    let topics = ["rust", "sqlite", "postgres", "leases", "fencing", "workers"];
    let mut mine = BTreeSet::new();
    for topic in topics {
        let run_id = f
            .durable(store.clone())
            .submit(topic.to_string())
            .await
            .unwrap_or_else(|e| fail(&format!("submit a run: {e}")));
        println!("submitted run {} ({topic})", short(run_id));
        mine.insert(run_id);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(&format!("find this program: {e}")));
    let mut workers = Vec::new();
    for n in 1..=2 {
        let child = Command::new(&exe)
            .arg("worker")
            .env("WORKER_NAME", format!("worker {n}"))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("start a worker: {e}")));
        workers.push(child);
    }

    let started = Instant::now();
    let mut answered = BTreeSet::new();
    loop {
        if started.elapsed() > Duration::from_secs(60) {
            fail("the runs did not complete within a minute");
        }
        let questions = store
            .questions(&RunQuery::new().flow("publish"))
            .await
            .unwrap_or_else(|e| fail(&format!("read the questions: {e}")));
        for q in questions.into_iter().filter(|q| mine.contains(&q.run_id)) {
            if !answered.insert(q.run_id) {
                continue;
            }
            let text = if q.pending.prompt.contains("leases") {
                "no"
            } else {
                "yes"
            };
            println!(
                "run {} asks {} -> answering {text}",
                short(q.run_id),
                q.pending.prompt
            );
            f.durable(store.clone())
                .submit_answer(q.run_id, Some(&q.pending.question), text)
                .await
                .unwrap_or_else(|e| fail(&format!("answer run {}: {e}", q.run_id)));
        }
        let mut done = 0;
        for run_id in &mine {
            let run = store
                .load(*run_id)
                .await
                .unwrap_or_else(|e| fail(&e.to_string()));
            if run.is_some_and(|c| c.document.status == RunStatus::Completed) {
                done += 1;
            }
        }
        if done == mine.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Closing their standard input stops the workers once their runs in flight stop.
    for mut child in workers {
        drop(child.stdin.take());
        let _ = child.wait();
    }
    println!("\nevery run completed (each replayed against this build, no step running):");
    let options = orchflow::replay::ReplayOptions::default();
    for run_id in &mine {
        if let Ok(Some(c)) = store.load(*run_id).await {
            let output = c.document.output.unwrap_or_default();
            let replay = match f.durable(store.clone()).replay(*run_id, &options).await {
                Ok(r) if r.is_compatible() => "replay compatible".to_string(),
                Ok(r) => fail(&format!("run {run_id} does not replay: {:?}", r.outcome)),
                Err(e) => fail(&format!("replay run {run_id}: {e}")),
            };
            println!("  {} {output} ({replay})", short(*run_id));
        }
    }
    println!(
        "\nthe runs stay in the schema {SCHEMA}; see them with:\n  \
         orchflow serve --store 'postgres://USER@HOST:PORT/DB?schema={SCHEMA}'"
    );
}

fn short(run_id: RunId) -> String {
    run_id.to_string()[..8].to_string()
}

fn fail(message: &str) -> ! {
    eprintln!("workers example: {message}");
    std::process::exit(1);
}
