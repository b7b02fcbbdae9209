//! Browser tests: the viewer in a real headless Chromium (through chromedriver, driven with
//! fantoccini) against the real `orchflow serve` over a SQLite file of real durable runs made
//! by the flows in `browser/flows.rs`. Replay and fork need the flows' code: that test serves
//! the store in this process with a registry of those flows (`harness::AppServer`, what an
//! application's binary made with `orchflow_cli::App` serves); the others run the generic
//! `orchflow` binary, which has none.
//!
//! Without Chromium or chromedriver each test says so on standard error and passes; with `CI`
//! set it fails instead (`.ci/chromium` installs both). The tests take one lock, so that one
//! browser runs at a time and the timings they measure are not shared with another test.
//! Screenshots go to `target/browser-artifacts/` (their paths are printed).
//!
//! Run them with:
//!
//! ```text
//! eval "$(bash .ci/chromium)"   # installs chromium and chromium-driver when missing
//! cargo test -p orchflow-cli --test browser -- --nocapture
//! ```
//!
//! `--nocapture` shows the measurements: each live entry's latency from its acknowledged
//! append to the page, and the 10,000-step run's performance marks.

#[path = "browser/expect.rs"]
mod expect;
#[path = "browser/flows.rs"]
mod flows;
#[path = "browser/harness.rs"]
mod harness;

use expect::{Expected, expected_states};
use flows::*;
use harness::{Browser, Server};
use orchflow::store::{CheckpointStore, RunQuery, RunStatus};
use orchflow::{RunId, SqliteStore, flow};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One browser at a time (see the module docs).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh store file in a temporary directory.
fn store_file() -> (tempfile::TempDir, PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path).expect("open the store");
    (dir, path, store)
}

/// The nodes the page draws: id → (kind, state, iterations).
async fn page_nodes(b: &Browser) -> BTreeMap<String, (String, String, Option<u64>)> {
    let v = b
        .js(
            "return [...document.querySelectorAll('[data-testid=node]')].map((n) => \
             [n.dataset.nodeId, n.dataset.kind, n.dataset.state, n.dataset.iterations ?? null]);",
            vec![],
        )
        .await;
    let mut out = BTreeMap::new();
    for n in v.as_array().expect("an array of nodes") {
        let s = |i: usize| n[i].as_str().unwrap_or_default().to_string();
        let iterations = n[3].as_str().and_then(|s| s.parse().ok()).or(n[3].as_u64());
        out.insert(s(0), (s(1), s(2), iterations));
    }
    out
}

/// What differs between the page's nodes and `expected` (every node of the graph drawn, with
/// the expected state and, for loops, iteration count), as one message, or nothing.
fn node_mismatches(
    at: &str,
    page: &BTreeMap<String, (String, String, Option<u64>)>,
    expected: &Expected,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (id, want) in &expected.states {
        match page.get(id) {
            None => wrong.push(format!("node {id} is not drawn")),
            Some((kind, state, iterations)) => {
                if state != want {
                    wrong.push(format!(
                        "node {id} ({kind}): state {state:?}, expected {want:?}"
                    ));
                }
                if let Some(n) = expected.iterations.get(id)
                    && *iterations != Some(*n)
                {
                    wrong.push(format!(
                        "node {id} ({kind}): data-iterations {iterations:?}, expected {n}"
                    ));
                }
            }
        }
    }
    if wrong.is_empty() {
        return wrong;
    }
    vec![format!(
        "{at}: the graph does not match the journal:\n  {}\npage: {page:?}",
        wrong.join("\n  ")
    )]
}

/// The number of attempt bars drawn (and of all attempts) once the timeline shows `want` bars
/// or, failing that, after 5 s: the timeline draws on the next animation frame, so a change of
/// position shows a moment later.
async fn settled_bars(b: &Browser, want: u64) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = attempt_bars(b).await;
        if got.0 == want || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`node_mismatches`] once the page's nodes match `expected` or, failing that, after 5 s.
async fn settled_node_mismatches(b: &Browser, at: &str, expected: &Expected) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let wrong = node_mismatches(at, &page_nodes(b).await, expected);
        if wrong.is_empty() || Instant::now() >= deadline {
            return wrong;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Fails unless the page's nodes match `expected` within 5 s.
async fn assert_settled_nodes(b: &Browser, at: &str, expected: &Expected) {
    let wrong = settled_node_mismatches(b, at, expected).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Waits until the run page of `run` is drawn (its scrubber shows a total).
async fn wait_run_page(b: &Browser, run: RunId) {
    b.wait_for(
        &format!("the page of run {run}"),
        Duration::from_secs(20),
        &format!(
            "const p = document.querySelector('[data-testid=run-page][data-run-id=\"{run}\"]'); \
             const s = document.querySelector('[data-testid=scrub-position]'); \
             return p && s && s.dataset.total ? true : null;"
        ),
    )
    .await;
}

/// The scrubber's position and total.
async fn scrub(b: &Browser) -> (u64, u64) {
    let v = b
        .js(
            "const s = document.querySelector('[data-testid=scrub-position]'); \
             return [Number(s.dataset.index), Number(s.dataset.total)];",
            vec![],
        )
        .await;
    (
        v[0].as_u64().expect("a position"),
        v[1].as_u64().expect("a total"),
    )
}

/// The number of attempt bars the timeline draws now, and of all attempts.
async fn attempt_bars(b: &Browser) -> (u64, u64) {
    let v = b
        .js(
            "const c = document.querySelector('[data-testid=attempt-count]'); \
             return c ? [Number(c.textContent), Number(c.dataset.total)] : null;",
            vec![],
        )
        .await;
    (
        v[0].as_u64().expect("attempt-count holds a number"),
        v[1].as_u64().expect("attempt-count has data-total"),
    )
}

// ------------------------------------------------------------------------------------------
// 1. the runs list: 10,000 recorded runs, counted, paged

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_list_counts_and_pages_ten_thousand_runs() {
    let Some(tools) = harness::tools("the_runs_list_counts_and_pages_ten_thousand_runs") else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let (_dir, path, store) = store_file();
    let started = Instant::now();
    record_many(&store, 9_990, 10, 64).await;
    println!("recorded 10,000 runs in {:?}", started.elapsed());

    let server = Server::start(&path);
    let b = Browser::start(&tools).await;
    b.open(&server.page("#/runs")).await;
    b.wait_for(
        "the first page of runs and the counts",
        Duration::from_secs(30),
        "const c = document.querySelector('[data-testid=count-completed]'); \
         return c && document.querySelectorAll('[data-testid=run-row]').length > 0;",
    )
    .await;
    let counts = b
        .js(
            "return Object.fromEntries(['queued','running','suspended','completed','failed','cancelled']\
             .map((s) => [s, Number(document.querySelector(`[data-testid=count-${s}]`).dataset.count)]));",
            vec![],
        )
        .await;
    let count = |s: &str| counts[s].as_u64().expect("a count");
    let total: u64 = [
        "queued",
        "running",
        "suspended",
        "completed",
        "failed",
        "cancelled",
    ]
    .iter()
    .map(|s| count(s))
    .sum();
    assert_eq!(
        total, 10_000,
        "the status counts add up to {total}: {counts}"
    );
    assert_eq!(count("completed"), 9_990, "{counts}");
    assert_eq!(count("failed"), 10, "{counts}");
    b.screenshot("runs-list").await;

    // Page after page, each the store's own page (newest first), never more than a page.
    let rows_js = "return [...document.querySelectorAll('[data-testid=run-row]')].map((r) => r.dataset.runId);";
    let first: Vec<String> = serde_json::from_value(b.js(rows_js, vec![]).await).expect("ids");
    let size = first.len();
    assert!(
        size > 0 && size <= 500,
        "the first page has {size} rows, not a page of at most 500"
    );
    let mut query = RunQuery::new().limit(size);
    let mut shown = first;
    let mut seen = std::collections::HashSet::new();
    for page in 1..=4 {
        let listing = store.list_runs(&query).await.expect("list runs");
        let want: Vec<String> = listing.runs.iter().map(|d| d.run_id.to_string()).collect();
        assert_eq!(
            shown, want,
            "page {page} does not show the store's page {page} (newest first)"
        );
        for id in &shown {
            assert!(seen.insert(id.clone()), "run {id} is shown on two pages");
        }
        if page == 4 {
            break;
        }
        query = query.after(listing.next.expect("more runs after this page"));
        let before = shown[0].clone();
        b.click("[data-testid=next-page]").await;
        b.wait_for(
            &format!("page {}", page + 1),
            Duration::from_secs(10),
            &format!(
                "const r = document.querySelector('[data-testid=run-row]'); \
                 return r && r.dataset.runId !== '{before}' && !document.querySelector('.runs.busy');"
            ),
        )
        .await;
        shown = serde_json::from_value(b.js(rows_js, vec![]).await).expect("ids");
        assert_eq!(
            shown.len(),
            size,
            "page {} has {} rows, the page size is {size}",
            page + 1,
            shown.len()
        );
    }
    // What the page fetched: pages of runs, never the whole list.
    let fetched = b
        .js(
            "return performance.getEntriesByType('resource').map((e) => e.name)\
             .filter((n) => new URL(n).pathname === '/api/runs');",
            vec![],
        )
        .await;
    let fetched: Vec<String> = serde_json::from_value(fetched).expect("urls");
    assert!(!fetched.is_empty(), "no /api/runs request was seen");
    for url in &fetched {
        let limit = url
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("limit="))
            .and_then(|n| n.parse::<usize>().ok());
        assert!(
            limit.is_some_and(|n| n <= size),
            "{url} asks for more than a page ({size})"
        );
    }
    assert!(
        fetched.len() <= 8,
        "the page made {} list requests for 4 pages: {fetched:?}",
        fetched.len()
    );
    b.screenshot("runs-list-page-4").await;
    b.close().await;
}

// ------------------------------------------------------------------------------------------
// 2. a run's page: every attempt (retries), a group, a loop

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_page_shows_every_attempt_and_the_node_states() {
    let Some(tools) = harness::tools("a_run_page_shows_every_attempt_and_the_node_states") else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let (_dir, path, store) = store_file();
    let (run, graph) = record_showcase(&store).await;
    let journal = store
        .journal(run, 0)
        .await
        .expect("journal")
        .expect("the run");
    let traces = store.traces(run).await.expect("traces").expect("the run");
    let journaled: usize = journal.iter().map(|e| e.traces.len()).sum();
    assert_eq!(
        traces.len(),
        journaled,
        "the store's traces are the journal's"
    );
    let graph = serde_json::to_value(&graph).expect("the graph as JSON");

    let server = Server::start(&path);
    let b = Browser::start(&tools).await;
    b.open(&server.page(&format!("#/run/{run}"))).await;
    wait_run_page(&b, run).await;
    let (k, n) = scrub(&b).await;
    assert_eq!(k, n, "a recorded run opens at its end");
    let (bars, all) = settled_bars(&b, traces.len() as u64).await;
    assert_eq!(
        (bars, all),
        (traces.len() as u64, traces.len() as u64),
        "attempt bars (drawn, total) vs the {} traces in the store",
        traces.len()
    );
    let flaky_attempts = traces.iter().filter(|t| t.step == "flaky").count();
    assert_eq!(flaky_attempts, 3, "the flow's flaky step ran three times");
    let expected = expected_states(&graph, &journal, journal.len(), true);
    assert_settled_nodes(&b, "at the end", &expected).await;

    // The retried step's details list its three attempts with their outcomes.
    let flaky_node = traces
        .iter()
        .find(|t| t.step == "flaky")
        .map(|t| t.node.to_string())
        .expect("a flaky trace");
    b.click(&format!(
        "[data-testid=node][data-node-id=\"{flaky_node}\"]"
    ))
    .await;
    let outcomes = b
        .wait_for(
            "the flaky step's attempts in the details",
            Duration::from_secs(5),
            "const rows = [...document.querySelectorAll('[data-testid=details] table tbody tr')]; \
             return rows.length ? rows.map((r) => r.children[4].textContent) : null;",
        )
        .await;
    let want: Vec<String> = traces
        .iter()
        .filter(|t| t.step == "flaky")
        .map(outcome_name)
        .collect();
    assert_eq!(outcomes, json!(want), "the flaky step's attempts");
    b.screenshot("run-page").await;
    b.close().await;
}

fn outcome_name(t: &orchflow::StepTrace) -> String {
    serde_json::to_value(t.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .expect("an outcome name")
}

// ------------------------------------------------------------------------------------------
// 3. the scrubber: to the end, and the graph at three moments of the journal

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrubber_replays_the_journal() {
    let Some(tools) = harness::tools("the_scrubber_replays_the_journal") else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let (_dir, path, store) = store_file();
    let (run, graph) = record_showcase(&store).await;
    let journal = store
        .journal(run, 0)
        .await
        .expect("journal")
        .expect("the run");
    let graph = serde_json::to_value(&graph).expect("the graph as JSON");

    let server = Server::start(&path);
    let b = Browser::start(&tools).await;
    b.open(&server.page(&format!("#/run/{run}"))).await;
    wait_run_page(&b, run).await;

    // From the start, play to the end.
    b.click("[data-testid=to-start]").await;
    let (k, total) = scrub(&b).await;
    assert_eq!(k, 0, "to-start moves the scrubber to 0");
    assert_settled_nodes(
        &b,
        "before the first event",
        &expected_states(&graph, &journal, 0, false),
    )
    .await;
    assert_eq!(
        settled_bars(&b, 0).await.0,
        0,
        "no attempt bar before the run"
    );
    b.click("[data-testid=play]").await;
    b.wait_for(
        "the scrubber to play to the end",
        Duration::from_secs(30),
        "const s = document.querySelector('[data-testid=scrub-position]'); \
         const play = document.querySelector('[data-testid=play]'); \
         return s.dataset.index === s.dataset.total && !play.hidden;",
    )
    .await;
    assert_eq!(scrub(&b).await, (total, total));

    // Three moments: after the first step, after the loop's second iteration, the end.
    let entry_with = |step: &str, nth: usize| {
        let mut seen = 0;
        journal
            .iter()
            .position(|e| {
                seen += e.traces.iter().filter(|t| t.step == step).count();
                seen >= nth
            })
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("no entry with attempt {nth} of {step}"))
    };
    let moments = [
        ("after the first step", entry_with("prepare", 1)),
        ("mid-loop", entry_with("tick", 2)),
        ("at the end", journal.len()),
    ];
    let mut mismatches = Vec::new();
    for (i, (name, upto)) in moments.into_iter().enumerate() {
        let seq = journal[upto - 1].seq;
        expect::assert_quiet(&journal, upto, name);
        let expected = expected_states(&graph, &journal, upto, upto == journal.len());
        // Pick the entry's row in the event log (checkpoints only, this one by its number).
        b.select("[data-testid=log-kind]", "entry").await;
        b.clear("[data-testid=log-regex]").await;
        b.type_into("[data-testid=log-regex]", &format!("#{seq} "))
            .await;
        let index = b
            .wait_for(
                &format!("the event row of entry #{seq}"),
                Duration::from_secs(5),
                &format!(
                    "const rows = document.querySelectorAll('[data-testid=event-row]'); \
                     return rows.length === 1 && rows[0].dataset.seq === '{seq}' \
                     ? [Number(rows[0].dataset.index)] : null;"
                ),
            )
            .await[0]
            .as_u64()
            .expect("an index");
        b.click("[data-testid=event-row]").await;
        let (k, _) = scrub(&b).await;
        assert_eq!(
            k,
            index + 1,
            "{name}: picking entry #{seq} moves the scrubber just after it"
        );
        let traces_so_far: usize = journal[..upto].iter().map(|e| e.traces.len()).sum();
        assert_eq!(
            settled_bars(&b, traces_so_far as u64).await.0,
            traces_so_far as u64,
            "{name} (entry #{seq}): attempt bars drawn vs traces journaled so far"
        );
        mismatches.extend(
            settled_node_mismatches(&b, &format!("{name} (entry #{seq})"), &expected).await,
        );
        b.screenshot(&format!("scrubber-{}-{}", i + 1, name.replace(' ', "-")))
            .await;
    }
    b.close().await;
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

// ------------------------------------------------------------------------------------------
// 3b. an exported bundle, shown with no store

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_bundle_shows_the_same_run_with_no_store() {
    let Some(tools) = harness::tools("an_exported_bundle_shows_the_same_run_with_no_store") else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let (dir, path, store) = store_file();
    let (run, graph) = record_showcase(&store).await;
    let journal = store
        .journal(run, 0)
        .await
        .expect("journal")
        .expect("the run");
    let traces: usize = journal.iter().map(|e| e.traces.len()).sum();
    let graph = serde_json::to_value(&graph).expect("the graph as JSON");
    drop(store);
    let bundle = dir.path().join("showcase.orchflow.json");
    let (db, file) = (
        format!("sqlite:{}", path.display()),
        bundle.display().to_string(),
    );
    let run_id = run.to_string();
    harness::orchflow(&["--store", &db, "runs", "export", &run_id, "-o", &file]);
    // The store is gone: only the bundle file is left to show.
    std::fs::remove_file(&path).expect("remove the store file");

    let server = Server::bundle(&bundle);
    let b = Browser::start(&tools).await;
    b.open(&server.page("")).await;
    wait_run_page(&b, run).await;
    let (bars, all) = settled_bars(&b, traces as u64).await;
    assert_eq!(
        (bars, all),
        (traces as u64, traces as u64),
        "attempt bars vs traces"
    );
    assert_settled_nodes(
        &b,
        "the bundle at its end",
        &expected_states(&graph, &journal, journal.len(), true),
    )
    .await;
    b.screenshot("bundle-run-page").await;
    b.close().await;
}

// ------------------------------------------------------------------------------------------
// 4. a live run updates the open page

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_updates_the_open_page_within_200_ms() {
    let Some(tools) = harness::tools("a_live_run_updates_the_open_page_within_200_ms") else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let (_dir, path, store) = store_file();
    let server = Server::start(&path);
    let b = Browser::start(&tools).await;

    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel();
    let gated = AckStore {
        inner: store.clone(),
        acks,
    };
    let gate = Gate(Arc::new(tokio::sync::Semaphore::new(0)));
    let run = RunId::new_v4();
    let running = {
        let gate = gate.clone();
        tokio::spawn(async move {
            let f = flow! { #[flow(name = "live")] fetch => check => publish };
            f.durable(gated).run_as(run, 1, gate).await.output
        })
    };
    // The run exists (its first step waits at the gate) before the page opens.
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.load(run).await.expect("load").is_none() {
        assert!(Instant::now() < deadline, "the live run was not created");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.open(&server.page(&format!("#/run/{run}"))).await;
    wait_run_page(&b, run).await;
    b.wait_for(
        "the live stream to connect",
        Duration::from_secs(10),
        "const l = document.querySelector('[data-testid=live]'); \
         return l && !l.hidden && l.textContent === 'live';",
    )
    .await;
    let first = page_nodes(&b).await.get("0").map(|n| n.1.clone());
    assert!(
        matches!(first.as_deref(), Some("pending" | "running")),
        "the first step has not finished yet, the page shows it {first:?}"
    );

    let mut latencies = Vec::new();
    for (i, step) in ["fetch", "check", "publish"].iter().enumerate() {
        gate.0.add_permits(1);
        let (seq, at) = tokio::time::timeout(Duration::from_secs(10), acked.recv())
            .await
            .unwrap_or_else(|_| panic!("no append acknowledged after releasing {step}"))
            .expect("the ack channel");
        assert_eq!(seq, i as u64 + 1, "{step}'s entry");
        // Poll the DOM as fast as the driver answers until the step shows as succeeded.
        let script = format!(
            "const n = document.querySelector('[data-testid=node][data-node-id=\"{i}\"]'); \
             return n && n.dataset.state === 'succeeded';"
        );
        let latency = loop {
            if b.js(&script, vec![]).await == Value::Bool(true) {
                break at.elapsed();
            }
            assert!(
                at.elapsed() < Duration::from_secs(5),
                "entry #{seq} ({step}) never reached the page"
            );
        };
        println!("live: entry #{seq} ({step}) on the page {latency:?} after its append");
        latencies.push((seq, latency));
    }
    let output = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the live run ends")
        .expect("the live run's task");
    assert_eq!(output, Some(112));
    b.wait_for(
        "the run to show as completed",
        Duration::from_secs(5),
        "const s = document.querySelector('[data-testid=run-status]'); \
         return s && s.dataset.status === 'completed';",
    )
    .await;
    b.screenshot("live-run").await;
    b.close().await;
    println!("live latencies: {latencies:?}");
    for (seq, latency) in latencies {
        assert!(
            latency < Duration::from_millis(200),
            "entry #{seq} reached the page {latency:?} after its append (the limit is 200 ms)"
        );
    }
}

// ------------------------------------------------------------------------------------------
// 5. a question answered from the inbox

/// Submits the answer form of the question card `card` and waits until the page says the run
/// is queued; fails with the page's error message when the server refused the answer.
async fn submit_answer(b: &Browser, card: &str, what: &str) {
    b.click(&format!("{card} [data-testid=answer-submit]"))
        .await;
    let ok = b
        .wait_for(
            what,
            Duration::from_secs(10),
            &format!(
                "const c = document.querySelector('{card}'); \
                 const e = c.querySelector('[data-testid=answer-error]'); \
                 if (e && !e.hidden) return 'error: ' + e.textContent; \
                 return c.dataset.answered === 'true' ? c.querySelector('[data-testid=answer-ok]').textContent : null;"
            ),
        )
        .await;
    let ok = ok.as_str().unwrap_or_default().to_string();
    assert!(
        !ok.starts_with("error:") && ok.contains("queued"),
        "the inbox says {ok:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_is_answered_from_the_inbox_and_the_run_completes() {
    let Some(tools) = harness::tools("a_question_is_answered_from_the_inbox_and_the_run_completes")
    else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let (_dir, path, store) = store_file();
    let f = review_flow!();
    let asked = f.durable(store.clone()).run("post".to_string()).await;
    assert_eq!(asked.suspended.len(), 1, "the run asks one question");
    let run = asked.run_id;
    store.flush().await.expect("flush");

    let server = Server::start(&path);
    let b = Browser::start(&tools).await;
    b.open(&server.page("#/inbox")).await;
    let card = format!("[data-testid=question][data-run-id=\"{run}\"]");
    b.wait_for(
        "the run's question in the inbox",
        Duration::from_secs(20),
        &format!("return !!document.querySelector('{card}');"),
    )
    .await;
    let answer = "ship it";
    let field = b
        .js(
            &format!(
                "const c = document.querySelector('{card}'); \
                 return c.querySelector('[data-testid=answer-input]') ? 'answer-input' : \
                 c.querySelector('[data-testid=answer-field]') ? 'answer-field' : null;"
            ),
            vec![],
        )
        .await;
    let field = field
        .as_str()
        .unwrap_or_else(|| panic!("the question's card has no answer field: {field}"))
        .to_string();
    b.type_into(&format!("{card} [data-testid={field}]"), answer)
        .await;
    b.screenshot("inbox").await;
    submit_answer(&b, &card, "the answer to be accepted").await;
    b.screenshot("inbox-answered").await;
    let doc = store
        .load(run)
        .await
        .expect("load")
        .expect("the run")
        .document;
    assert_eq!(doc.status, RunStatus::Queued, "the answered run is queued");

    let done = f
        .durable(store.clone())
        .resume(run)
        .await
        .expect("resume the answered run");
    assert_eq!(done.output.as_deref(), Some("post -> ship it"));
    store.flush().await.expect("flush");
    b.open(&server.page(&format!("#/run/{run}"))).await;
    wait_run_page(&b, run).await;
    b.wait_for(
        "the answered run to show as completed",
        Duration::from_secs(5),
        "const s = document.querySelector('[data-testid=run-status]'); \
         return s && s.dataset.status === 'completed';",
    )
    .await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_question_is_answered_with_the_form_made_from_its_schema() {
    let Some(tools) =
        harness::tools("a_typed_question_is_answered_with_the_form_made_from_its_schema")
    else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let (_dir, path, store) = store_file();
    let f = release_flow!();
    let asked = f.durable(store.clone()).run("api".to_string()).await;
    assert_eq!(asked.suspended.len(), 1, "the run asks one question");
    assert!(
        asked.suspended[0].schema.is_some(),
        "the typed question carries its schema"
    );
    let run = asked.run_id;
    store.flush().await.expect("flush");

    let server = Server::start(&path);
    let b = Browser::start(&tools).await;
    b.open(&server.page("#/inbox")).await;
    let card = format!("[data-testid=question][data-run-id=\"{run}\"]");
    let field = |name: &str| format!("{card} [data-testid=answer-field][data-path=\"{name}\"]");
    b.wait_for(
        "the typed question's form",
        Duration::from_secs(20),
        &format!(
            "return !!document.querySelector('{}') && !!document.querySelector('{}');",
            field("version"),
            field("replicas")
        ),
    )
    .await;
    // A replica count that is not a number is refused before anything is sent.
    b.type_into(&field("version"), "2.1.0").await;
    b.type_into(&field("replicas"), "three").await;
    b.click(&format!("{card} [data-testid=answer-submit]"))
        .await;
    let refused = b
        .wait_for(
            "the form to refuse a replica count that is not a number",
            Duration::from_secs(5),
            &format!(
                "const e = document.querySelector('{card} [data-testid=answer-error]'); \
                 return e && !e.hidden ? e.textContent : null;"
            ),
        )
        .await;
    assert!(
        refused.as_str().is_some_and(|e| e.contains("replicas")),
        "the refusal names the field: {refused}"
    );
    assert_eq!(
        store
            .load(run)
            .await
            .expect("load")
            .expect("the run")
            .document
            .status,
        RunStatus::Suspended,
        "a refused form sends nothing"
    );
    b.clear(&field("replicas")).await;
    b.type_into(&field("replicas"), "3").await;
    b.screenshot("inbox-typed").await;
    submit_answer(&b, &card, "the typed answer to be accepted").await;
    b.close().await;
    let doc = store
        .load(run)
        .await
        .expect("load")
        .expect("the run")
        .document;
    assert_eq!(doc.status, RunStatus::Queued, "the answered run is queued");
    let done = f
        .durable(store.clone())
        .resume(run)
        .await
        .expect("resume the answered run");
    assert_eq!(done.output.as_deref(), Some("api 2.1.0 x3"));
}

// ------------------------------------------------------------------------------------------
// 6. the page of a 10,000-step run renders in under a second

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_of_a_ten_thousand_step_run_renders_in_under_a_second() {
    let Some(tools) =
        harness::tools("the_page_of_a_ten_thousand_step_run_renders_in_under_a_second")
    else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let (_dir, path, store) = store_file();
    let started = Instant::now();
    let (run, graph) = record_long(&store).await;
    let journal = store
        .journal(run, 0)
        .await
        .expect("journal")
        .expect("the run");
    let traces: usize = journal.iter().map(|e| e.traces.len()).sum();
    assert_eq!(traces, LONG as usize);
    let expected = expected_states(
        &serde_json::to_value(&graph).expect("the graph as JSON"),
        &journal,
        journal.len(),
        true,
    );
    println!("recorded a {LONG}-step run in {:?}", started.elapsed());

    let server = Server::start(&path);
    let b = Browser::start(&tools).await;
    // A first load warms the server's caches and the browser's compiled script, as a user's
    // second visit would; the measured load is the second.
    let mut times = Vec::new();
    for visit in 0..2 {
        b.open(&server.page(&format!("#/run/{run}"))).await;
        let drawn = b
            .wait_for(
                "the run:drawn mark of the 10,000-step run",
                Duration::from_secs(60),
                "const m = performance.getEntriesByName('run:drawn'); \
                 return m.length ? m[0].startTime : null;",
            )
            .await
            .as_f64()
            .expect("a time");
        let (bars, all) = settled_bars(&b, LONG as u64).await;
        assert_eq!((bars, all), (LONG as u64, LONG as u64), "visit {visit}");
        assert_settled_nodes(
            &b,
            &format!("the 10,000-step run (visit {visit})"),
            &expected,
        )
        .await;
        let marks = b
            .js(
                "return performance.getEntriesByType('mark')\
                 .map((m) => `${m.name} ${m.startTime.toFixed(0)} ms`).join(', ');",
                vec![],
            )
            .await;
        println!(
            "10,000-step run: drawn {drawn:.0} ms after navigation (visit {visit}; marks: {})",
            marks.as_str().unwrap_or_default()
        );
        times.push(drawn);
    }
    b.screenshot("long-run").await;
    b.close().await;
    let measured = times[1];
    assert!(
        measured < 1000.0,
        "the page of a 10,000-step run was drawn {measured:.0} ms after navigation (limit 1 s)"
    );
}

// ------------------------------------------------------------------------------------------
// 7. replay and fork, with a server built with the flows (orchflow_cli::App's registry)

/// The rows of the fork preview table: (step, path, reuse, repeats side effects).
async fn preview_rows(b: &Browser) -> Vec<(String, String, String, bool)> {
    let v = b
        .js(
            "return [...document.querySelectorAll('[data-testid=fork-row]')].map((r) => \
             [r.dataset.step, r.dataset.path, r.dataset.reuse, r.dataset.sideEffects === 'true']);",
            vec![],
        )
        .await;
    v.as_array()
        .expect("an array of rows")
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap_or_default().to_string();
            (s(0), s(1), s(2), r[3].as_bool().unwrap_or(false))
        })
        .collect()
}

/// The rows the library's preview gives.
fn library_rows(p: &orchflow::replay::ForkPreview) -> Vec<(String, String, String, bool)> {
    p.steps
        .iter()
        .map(|s| {
            let reuse = serde_json::to_value(s.reuse).expect("a reuse as JSON");
            (
                s.call.step.clone(),
                s.call.path.clone(),
                reuse.as_str().unwrap_or_default().to_string(),
                s.repeats_side_effects,
            )
        })
        .collect()
}

/// Waits for the preview table to be drawn anew (after `before`, the rows shown before the
/// click) and returns its rows.
async fn settled_preview(
    b: &Browser,
    before: &[(String, String, String, bool)],
) -> Vec<(String, String, String, bool)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = preview_rows(b).await;
        if !rows.is_empty() && rows != before {
            return rows;
        }
        if Instant::now() >= deadline {
            let shot = b.screenshot("timeout-fork-preview").await;
            panic!(
                "no new fork preview within 10 s (rows: {rows:?}); screenshot {}",
                shot.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The text of the first element `css` selects, or "" when there is none.
async fn text_of(b: &Browser, css: &str) -> String {
    b.js(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
        vec![json!(css)],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// The rows the event log shows: (data-kind, data-outcome, text), in event order.
async fn log_rows(b: &Browser) -> Vec<(String, String, String)> {
    let v = b
        .js(
            "const rows = [...document.querySelectorAll('[data-testid=event-row]')]; \
             rows.sort((x, y) => Number(x.dataset.index) - Number(y.dataset.index)); \
             return rows.map((r) => [r.dataset.kind, r.dataset.outcome ?? '', r.querySelector('.c-x').textContent]);",
            vec![],
        )
        .await;
    v.as_array()
        .expect("an array of rows")
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap_or_default().to_string();
            (s(0), s(1), s(2))
        })
        .collect()
}

/// Checks the page of the completed fork `forked` (open, at its end): the calls it took from
/// the recorded run are attempts with the outcome `reused` in its journal, and the page shows
/// them so, from the journal: the graph (a step whose attempts are all reused is `reused`,
/// not `pending`), the timeline (a diamond in the reuse colour for each, which selects the
/// attempt), the event log (filtered by outcome from the header's note), the details and the
/// scrubber at the fork point.
async fn check_reused_calls(b: &Browser, store: &SqliteStore, forked: RunId, fingerprint: &str) {
    use orchflow::AttemptOutcome;
    let journal = store
        .journal(forked, 0)
        .await
        .expect("journal")
        .expect("the fork");
    let traces: Vec<&orchflow::StepTrace> = journal.iter().flat_map(|e| e.traces.iter()).collect();
    let reused: Vec<&orchflow::StepTrace> = traces
        .iter()
        .copied()
        .filter(|t| t.outcome == AttemptOutcome::Reused)
        .collect();
    assert_eq!(
        reused.iter().map(|t| t.step.as_ref()).collect::<Vec<_>>(),
        ["outline", "polish"],
        "the fork at polish@2 reused outline and polish@1"
    );
    assert!(reused.iter().all(|t| t.success && t.duration.is_zero()));
    let graph = store
        .graph(fingerprint)
        .await
        .expect("the graph")
        .expect("the fork's graph");
    let graph = serde_json::to_value(&graph).expect("the graph as JSON");

    // The graph at the end: outline, only reused, shows reused; polish ran twice after its
    // reused iteration and shows what it did.
    let expected = expected_states(&graph, &journal, journal.len(), true);
    let outline = reused[0].node.to_string();
    assert_eq!(
        expected.states.get(&outline).map(String::as_str),
        Some("reused")
    );
    assert_settled_nodes(b, "the forked run at its end", &expected).await;
    let page = page_nodes(b).await;
    assert_eq!(page[&outline].1, "reused", "outline is reused, not pending");

    // The header counts them and its note points at them.
    assert_eq!(
        text_of(b, "[data-testid=reused-count] b").await,
        reused.len().to_string()
    );
    let note = text_of(b, "[data-testid=lineage] [data-testid=reused-note]").await;
    assert!(
        note.contains(&format!(
            "the {} calls before it took that run’s results: their attempts are marked reused",
            reused.len()
        )),
        "the lineage note: {note:?}"
    );

    // The timeline: attempts drawn by outcome, and a diamond per reused attempt, painted in the
    // reuse colour, that selects its attempt.
    let mut by_outcome = BTreeMap::<String, usize>::new();
    for t in &traces {
        *by_outcome.entry(outcome_name(t)).or_default() += 1;
    }
    let want: Vec<String> = by_outcome.iter().map(|(o, n)| format!("{o}:{n}")).collect();
    b.wait_for(
        "the timeline's attempts by outcome",
        Duration::from_secs(5),
        &format!(
            "const c = document.querySelector('[data-testid=attempt-count]'); \
             return c && c.dataset.outcomes === {} && c.dataset.markers \
                && c.dataset.markers.split(' ').length === {};",
            json!(want.join(" ")),
            reused.len()
        ),
    )
    .await;
    let markers = text_of_attr(b, "[data-testid=attempt-count]", "markers").await;
    let markers: Vec<(usize, f64, f64)> = markers
        .split(' ')
        .map(|m| {
            let p: Vec<&str> = m.split(':').collect();
            (
                p[0].parse().expect("a trace index"),
                p[1].parse().expect("x"),
                p[2].parse().expect("y"),
            )
        })
        .collect();
    let mut marked: Vec<usize> = markers.iter().map(|m| m.0).collect();
    marked.sort_unstable();
    let reused_idx: Vec<usize> = traces
        .iter()
        .enumerate()
        .filter(|(_, t)| t.outcome == AttemptOutcome::Reused)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(marked, reused_idx, "a diamond for each reused attempt");
    for &(i, x, y) in &markers {
        let px = b
            .js(
                "const t = document.querySelector('[data-testid=timeline]'); \
                 const c = t.querySelector('canvas'); const dpr = c.width / c.clientWidth; \
                 const d = c.getContext('2d').getImageData(Math.round(arguments[0] * dpr), Math.round(arguments[1] * dpr), 1, 1).data; \
                 const hex = getComputedStyle(t).getPropertyValue('--reuse').trim(); \
                 return [[d[0], d[1], d[2]], [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16))];",
                vec![json!(x), json!(y)],
            )
            .await;
        assert_eq!(
            px[0], px[1],
            "the diamond of attempt {i} ({}) is painted in the reuse colour",
            traces[i].step
        );
        b.js(
            "const c = document.querySelector('[data-testid=timeline] canvas'); \
             const r = c.getBoundingClientRect(); \
             c.dispatchEvent(new MouseEvent('click', { bubbles: true, clientX: r.left + arguments[0], clientY: r.top + arguments[1] }));",
            vec![json!(x), json!(y)],
        )
        .await;
        let shown = b
            .wait_for(
                "the details of the reused attempt picked on the timeline",
                Duration::from_secs(5),
                "const o = document.querySelector('[data-testid=details] [data-testid=attempt-outcome]'); \
                 const n = document.querySelector('[data-testid=details] [data-testid=reused-note]'); \
                 return o && n ? [o.dataset.outcome, o.textContent, \
                    document.querySelector('[data-testid=details] .det-head b').textContent] : null;",
            )
            .await;
        assert_eq!(
            shown,
            json!(["reused", "reused", traces[i].step]),
            "the details of attempt {i}"
        );
    }

    // The event log, filtered from the header's note: the start and end of each reused
    // attempt, in journal order, and nothing else.
    b.click("[data-testid=show-reused]").await;
    let mut want_rows = Vec::new();
    for t in &reused {
        want_rows.push((
            "start".to_string(),
            "reused".to_string(),
            format!("{} taken from the recorded run (attempt 1)", t.step),
        ));
        want_rows.push((
            "end".to_string(),
            "reused".to_string(),
            format!(
                "{} reused: the recorded result, not run again (attempt 1)",
                t.step
            ),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = log_rows(b).await;
        if rows == want_rows {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the event log filtered to reused attempts shows {rows:?}, expected {want_rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        b.js(
            "return document.querySelector('[data-testid=log-outcome]').value;",
            vec![]
        )
        .await,
        json!("reused")
    );
    b.screenshot("forked-run").await;

    // The scrubber at the fork point (just after the last entry holding only reused calls):
    // the reused steps are done, the rest has not started.
    let upto = journal
        .iter()
        .position(|e| e.traces.iter().any(|t| t.outcome != AttemptOutcome::Reused))
        .expect("the fork ran something");
    expect::assert_quiet(&journal, upto, "the fork point");
    let seq = journal[upto - 1].seq;
    b.select("[data-testid=log-outcome]", "").await;
    b.select("[data-testid=log-kind]", "entry").await;
    b.clear("[data-testid=log-regex]").await;
    b.type_into("[data-testid=log-regex]", &format!("#{seq} "))
        .await;
    let index = b
        .wait_for(
            &format!("the event row of entry #{seq}"),
            Duration::from_secs(5),
            &format!(
                "const rows = document.querySelectorAll('[data-testid=event-row]'); \
                 return rows.length === 1 && rows[0].dataset.seq === '{seq}' \
                 ? [Number(rows[0].dataset.index)] : null;"
            ),
        )
        .await;
    b.click(&format!(
        "[data-testid=event-row][data-index=\"{}\"]",
        index[0]
    ))
    .await;
    let at_fork = expected_states(&graph, &journal, upto, false);
    assert_eq!(
        at_fork.states.get(&outline).map(String::as_str),
        Some("reused")
    );
    assert_settled_nodes(b, "the forked run at its fork point", &at_fork).await;
    let fork_point = b
        .js(
            "return document.querySelector('[data-testid=scrub-position]').dataset.forkPoint ?? null;",
            vec![],
        )
        .await;
    let (k, _) = scrub(b).await;
    assert_eq!(
        fork_point,
        json!(k.to_string()),
        "the scrubber's fork-point mark is the first event after the reused calls"
    );
    b.screenshot("forked-run-at-fork-point").await;
}

/// The `data-<name>` attribute (camelCase) of the first element `css` selects, or "".
async fn text_of_attr(b: &Browser, css: &str, name: &str) -> String {
    b.js(
        "const e = document.querySelector(arguments[0]); return e ? e.dataset[arguments[1]] ?? '' : '';",
        vec![json!(css), json!(name)],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fork_preview_and_the_lineage() {
    use orchflow::replay::{ForkAt, ReplayOptions, ReplayOutcome};
    let Some(tools) = harness::tools("the_fork_preview_and_the_lineage") else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let (_dir, path, store) = store_file();
    let (run, changed) = record_replayable(&store).await;
    // A run of a flow the build serving does not have.
    let other = flow! { #[flow(name = "elsewhere")] bump }
        .durable(store.clone())
        .run(1)
        .await;
    assert_eq!(other.output, Some(2));
    store.flush().await.expect("flush");
    let shared: Arc<dyn CheckpointStore> = Arc::new(store.clone());
    let build = replay_build();

    let server = harness::AppServer::start(&path, replay_build()).await;
    let b = Browser::start(&tools).await;

    // --- the attempt of the second iteration of the loop: its call is polish@2.
    b.open(&server.page(&format!("#/run/{run}"))).await;
    wait_run_page(&b, run).await;
    b.wait_for(
        "the Replay button on (the build has `launch`)",
        Duration::from_secs(10),
        "const r = document.querySelector('[data-testid=replay]'); return r && !r.disabled;",
    )
    .await;
    b.select("[data-testid=log-step]", "polish").await;
    b.select("[data-testid=log-kind]", "start").await;
    // Both filters applied: the rows of the step filter alone hold the same three starts (and
    // are replaced when the kind filter paints).
    b.wait_for(
        "three attempt starts of polish, and nothing else, in the event log",
        Duration::from_secs(5),
        "const rows = document.querySelectorAll('[data-testid=event-row]'); \
         return rows.length === 3 && [...rows].every((r) => r.dataset.kind === 'start');",
    )
    .await;
    let second = b
        .js(
            "const rows = [...document.querySelectorAll('[data-testid=event-row][data-kind=start]')]; \
             rows.sort((x, y) => Number(x.dataset.index) - Number(y.dataset.index)); \
             return rows[1].dataset.index;",
            vec![],
        )
        .await;
    let second = second.as_str().expect("a row index").to_string();
    b.click(&format!(
        "[data-testid=event-row][data-kind=start][data-index=\"{second}\"]"
    ))
    .await;
    let at = b
        .wait_for(
            "Fork from here for the selected attempt",
            Duration::from_secs(5),
            "const f = document.querySelector('[data-testid=fork-open]'); \
             return f && !f.disabled ? f.dataset.at : null;",
        )
        .await;
    // The second attempt of polish in the journal is the loop's second call, as the library
    // numbers calls: its call there is the second iteration, with the input of that attempt.
    let journal = store
        .journal(run, 0)
        .await
        .expect("journal")
        .expect("the run");
    let polish: Vec<&orchflow::StepTrace> = journal
        .iter()
        .flat_map(|e| e.traces.iter())
        .filter(|t| t.step == "polish")
        .collect();
    assert_eq!(polish.len(), 3);
    assert_eq!(
        at,
        json!("polish@2"),
        "the call of the second polish attempt"
    );
    let fork_at = ForkAt::parse("polish@2").expect("a call");
    let unchanged = build
        .preview_fork(Arc::clone(&shared), run, &fork_at, None)
        .await
        .expect("the library's preview");
    assert_eq!(unchanged.at.iterations, vec![1]);
    assert_eq!(unchanged.at.input, polish[1].input);

    // --- the dialog: the recorded input, a client-side JSON check, previews, a server error.
    b.click("[data-testid=fork-open]").await;
    b.wait_for(
        "the fork dialog",
        Duration::from_secs(5),
        "return !!document.querySelector('[data-testid=fork-dialog][open]');",
    )
    .await;
    assert_eq!(text_of(&b, "[data-testid=fork-spec]").await, "polish@2");
    let prefilled = b
        .js(
            "return document.querySelector('[data-testid=fork-input]').value;",
            vec![],
        )
        .await;
    let prefilled: Value =
        serde_json::from_str(prefilled.as_str().expect("the editor's text")).expect("JSON");
    assert_eq!(
        Some(prefilled),
        polish[1].input,
        "the editor holds the recorded input"
    );
    b.click("[data-testid=fork-preview]").await;
    let rows = settled_preview(&b, &[]).await;
    assert_eq!(
        rows,
        library_rows(&unchanged),
        "the preview of the recorded input"
    );

    b.clear("[data-testid=fork-input]").await;
    b.type_into("[data-testid=fork-input]", "{\"oops\": ").await;
    b.click("[data-testid=fork-preview]").await;
    let invalid = text_of(&b, "[data-testid=fork-error]").await;
    assert!(
        invalid.starts_with("the input is not valid JSON"),
        "invalid JSON is caught in the page: {invalid:?}"
    );

    b.clear("[data-testid=fork-input]").await;
    b.type_into("[data-testid=fork-input]", "\"seven\"").await;
    b.click("[data-testid=fork-preview]").await;
    let refused = build
        .preview_fork(Arc::clone(&shared), run, &fork_at, Some(json!("seven")))
        .await
        .expect_err("a string is no u32")
        .to_string();
    b.wait_for(
        "the server's refusal of an input of the wrong type",
        Duration::from_secs(10),
        &format!(
            "const e = document.querySelector('[data-testid=fork-error]'); \
             return e && !e.hidden && e.textContent.includes({}) ? e.textContent : null;",
            json!(refused)
        ),
    )
    .await;

    b.clear("[data-testid=fork-input]").await;
    b.type_into("[data-testid=fork-input]", "100").await;
    b.click("[data-testid=fork-preview]").await;
    let edited = build
        .preview_fork(Arc::clone(&shared), run, &fork_at, Some(json!(100)))
        .await
        .expect("the library's preview with the edited input");
    let rows = settled_preview(&b, &[]).await;
    assert_eq!(
        rows,
        library_rows(&edited),
        "the preview of the edited input"
    );
    assert!(
        rows.iter().any(|r| r.2 == "reused") && rows.iter().any(|r| r.2 == "rerun"),
        "the fork reuses the calls before polish@2 and runs the rest: {rows:?}"
    );
    b.screenshot("fork-preview").await;

    // --- the fork: the page opens the new run, which says where it came from.
    b.click("[data-testid=fork-submit]").await;
    let forked = b
        .wait_for(
            "the page of the forked run",
            Duration::from_secs(20),
            &format!(
                "const p = document.querySelector('[data-testid=run-page]'); \
                 const f = document.querySelector('[data-testid=forked-from]'); \
                 return p && p.dataset.runId !== '{run}' && f ? p.dataset.runId : null;"
            ),
        )
        .await;
    let forked: RunId = forked
        .as_str()
        .expect("the new run's id")
        .parse()
        .expect("a run id");
    let from = b
        .js(
            "const f = document.querySelector('[data-testid=forked-from]'); \
             return [f.dataset.runId, f.dataset.at, f.querySelector('a').getAttribute('href'), \
             document.querySelector('[data-testid=fork-input-edited]')?.textContent ?? null];",
            vec![],
        )
        .await;
    assert_eq!(
        from,
        json!([run.to_string(), "polish@2", format!("#/run/{run}"), "100"]),
        "forked from the recorded run at polish@2 with the edited input"
    );
    // The fork runs on the server: outline and polish@1 reused, polish(100) = 201,
    // polish(201) = 403, release = "v403".
    b.wait_for(
        "the forked run to complete",
        Duration::from_secs(20),
        "const s = document.querySelector('[data-testid=run-status]'); \
         return s && s.dataset.status === 'completed';",
    )
    .await;
    let doc = store
        .load(forked)
        .await
        .expect("load")
        .expect("the forked run")
        .document;
    assert_eq!(doc.output, Some(json!("v403")));
    let origin = doc.lineage.forked_from.expect("the fork's origin");
    assert_eq!(
        (origin.run_id, origin.at.to_string()),
        (run, "polish@2".into())
    );
    assert_eq!(origin.input, Some(json!(100)));
    check_reused_calls(&b, &store, forked, &doc.fingerprint).await;

    // --- back to the recorded run: its forks list the new one.
    b.click("[data-testid=forked-from] a").await;
    wait_run_page(&b, run).await;
    b.wait_for(
        "the recorded run's forks",
        Duration::from_secs(10),
        &format!(
            "const f = document.querySelector('[data-testid=forks] a[data-run-id=\"{forked}\"]'); \
             return f ? f.getAttribute('href') : null;"
        ),
    )
    .await;

    // --- the runs list marks the fork, from the listed documents.
    b.open(&server.page("#/runs")).await;
    b.wait_for(
        "the fork's mark in the runs list",
        Duration::from_secs(10),
        &format!(
            "const r = document.querySelector('[data-testid=run-row][data-run-id=\"{forked}\"]'); \
             const o = document.querySelector('[data-testid=run-row][data-run-id=\"{run}\"]'); \
             return r && o && r.querySelector('[data-testid=fork-badge]') \
                && o.querySelector('[data-testid=forks-badge]') \
                && !o.querySelector('[data-testid=fork-badge]');"
        ),
    )
    .await;
    b.screenshot("runs-with-fork").await;

    // --- Replay of a run of a flow changed since: the divergence at its path.
    let report = build
        .replay(Arc::clone(&shared), changed, &ReplayOptions::default())
        .await
        .expect("the library's replay");
    let ReplayOutcome::Diverges(divergence) = &report.outcome else {
        panic!("the changed flow diverges: {report:#?}");
    };
    b.open(&server.page(&format!("#/run/{changed}"))).await;
    wait_run_page(&b, changed).await;
    b.wait_for(
        "the Replay button on",
        Duration::from_secs(10),
        "const r = document.querySelector('[data-testid=replay]'); return r && !r.disabled;",
    )
    .await;
    b.click("[data-testid=replay]").await;
    b.wait_for(
        "the replay report",
        Duration::from_secs(20),
        "return !!document.querySelector('[data-testid=replay-report]');",
    )
    .await;
    let shown = b
        .js(
            "const r = document.querySelector('[data-testid=replay-report]'); \
             const t = (id) => r.querySelector(`[data-testid=${id}]`)?.textContent ?? null; \
             return [r.dataset.verdict, t('replay-path'), t('replay-message'), t('replay-new-source')];",
            vec![],
        )
        .await;
    let source = divergence
        .new
        .as_ref()
        .and_then(|c| c.source.as_ref())
        .map(|s| s.to_string());
    assert_eq!(
        shown,
        json!(["diverges", divergence.path, divergence.message, source]),
        "the report of the changed build"
    );
    b.screenshot("replay-diverges").await;

    // --- Replay of the recorded run with the same code, re-executing `polish`: compatible,
    // its three calls run again and matched.
    let same = build
        .replay(
            Arc::clone(&shared),
            run,
            &ReplayOptions::default().reexecute(["polish"]),
        )
        .await
        .expect("the library's replay");
    assert!(same.is_compatible(), "{same:#?}");
    assert_eq!(same.reexecuted, 3);
    b.open(&server.page(&format!("#/run/{run}"))).await;
    wait_run_page(&b, run).await;
    b.wait_for(
        "the Replay button on",
        Duration::from_secs(10),
        "const r = document.querySelector('[data-testid=replay]'); return r && !r.disabled;",
    )
    .await;
    b.click("[data-testid=replay]").await;
    b.wait_for(
        "the replay report of the same code",
        Duration::from_secs(20),
        "const r = document.querySelector('[data-testid=replay-report]'); \
         return r && r.dataset.verdict === 'compatible';",
    )
    .await;
    b.type_into("[data-testid=replay-reexecute]", "polish")
        .await;
    b.click("[data-testid=replay-again]").await;
    let facts = b
        .wait_for(
            "the report of a replay re-executing polish",
            Duration::from_secs(20),
            "const r = document.querySelector('[data-testid=replay-report]'); \
             return r && r.dataset.verdict === 'compatible' && r.textContent.includes('re-executed') \
                ? r.textContent : null;",
        )
        .await;
    assert!(
        facts.as_str().unwrap_or_default().contains(&format!(
            "{} steps re-executed and matched",
            same.reexecuted
        )),
        "the page reports the re-executed steps: {facts}"
    );

    // --- a run of a flow the build lacks: no replay, and the page says why.
    b.open(&server.page(&format!("#/run/{}", other.run_id)))
        .await;
    wait_run_page(&b, other.run_id).await;
    let off = b
        .wait_for(
            "the Replay button off with its reason",
            Duration::from_secs(10),
            "const r = document.querySelector('[data-testid=replay]'); \
             return r && r.disabled && r.title.includes('orchflow_cli::App') ? r.title : null;",
        )
        .await;
    assert!(
        off.as_str().unwrap_or_default().contains("elsewhere"),
        "the reason names the flow: {off}"
    );
    b.close().await;
}
