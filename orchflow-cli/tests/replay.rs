//! `replay` and `runs fork` through `orchflow_cli::App` in this process, with registries of real
//! flows over a real SQLite file: runs recorded with one build, replayed and forked with
//! another.

use orchflow::human::{self, Answer};
use orchflow::registry::Registry;
use orchflow::{RunId, SqliteStore, flow, step};
use orchflow_cli::{App, Captured};
use serde_json::Value;

#[step]
async fn plan(topic: String) -> String {
    format!("plan for {topic}")
}

/// `plan` renamed.
#[step]
async fn outline(topic: String) -> String {
    format!("plan for {topic}")
}

#[step]
async fn draft(plan: String) -> String {
    format!("draft of {plan}")
}

#[step]
async fn decide(review: Answer<String>) -> String {
    format!("{} -> {}", review.value, review.text)
}

#[step]
async fn shout(text: String) -> String {
    text.to_uppercase()
}

macro_rules! launch_v1 {
    () => {
        flow! { #[flow(name = "launch")] plan => draft }
    };
}

macro_rules! review_v1 {
    () => {
        flow! { #[flow(name = "review")] (human::ask("ok", |d: &String| format!("publish {d}?"))) => decide }
            .with_input(human::Suspend)
    };
}

macro_rules! review_v2 {
    () => {
        flow! { #[flow(name = "review")] (human::ask("ok", |d: &String| format!("publish {d}?"))) => decide => shout }
            .with_input(human::Suspend)
    };
}

/// A SQLite file with a completed run of `launch` and a run of `review` suspended on its
/// question, recorded by the first builds.
struct Recorded {
    _dir: tempfile::TempDir,
    url: String,
    launch: RunId,
    review: RunId,
}

async fn recorded() -> Recorded {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path).expect("open");
    let launch = launch_v1!().durable(store.clone()).run("rust".into()).await;
    assert_eq!(
        launch.output.as_deref(),
        Some("draft of plan for rust"),
        "{:?}",
        launch.error
    );
    let review = review_v1!()
        .durable(store.clone())
        .run("post".to_string())
        .await;
    assert_eq!(review.suspended.len(), 1);
    store.flush().await.expect("flush");
    drop(store);
    Recorded {
        url: format!("sqlite:{}", path.display()),
        _dir: dir,
        launch: launch.run_id,
        review: review.run_id,
    }
}

async fn run(app: &App, url: &str, args: &[&str]) -> Captured {
    let mut all = vec!["orchflow", "--store", url];
    all.extend_from_slice(args);
    app.run_captured(all).await
}

fn v1() -> App {
    App::new(
        Registry::new()
            .register(launch_v1!())
            .register(review_v1!()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_build_replays_every_run_compatible_in_text_json_and_junit() {
    let r = recorded().await;
    let app = v1();

    let text = run(&app, &r.url, &["replay"]).await;
    assert_eq!(text.code, 0, "{text:?}");
    let out = &text.stdout;
    // The fingerprint check: the suspended run, compatible, resumable, waiting on its question.
    let check = format!("{}\n", out.split("\n\n").next().unwrap_or_default());
    assert!(
        check.starts_with("fingerprint check: 1 unfinished run\n"),
        "{out}"
    );
    assert!(
        check.contains(&format!("  {}  review  suspended  fingerprint ", r.review)),
        "{out}"
    );
    assert!(check.contains("    replay: compatible\n"), "{out}");
    assert!(check.contains("    resume: same shape\n"), "{out}");
    assert!(
        check.contains("    continues at step `ok` at step ok\n"),
        "{out}"
    );
    assert!(!check.contains(&r.launch.to_string()), "completed: {out}");
    // One report per run.
    assert!(
        out.contains(&format!(
            "run {}  launch  completed  fingerprint ",
            r.launch
        )),
        "{out}"
    );
    assert!(
        out.contains("  compatible: 2 calls answered from the recording\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("run {}  review  suspended", r.review)),
        "{out}"
    );
    assert!(
        out.ends_with("2 runs replayed: 2 compatible, 0 diverge, 0 unreplayable\n"),
        "{out}"
    );
    assert!(text.stderr.is_empty(), "{text:?}");

    let json = run(&app, &r.url, &["replay", "--format", "json"]).await;
    assert_eq!(json.code, 0, "{json:?}");
    let v: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(v["unfinished"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["unfinished"][0]["run_id"], r.review.to_string());
    assert_eq!(v["unfinished"][0]["resume"], "same_shape");
    let reports = v["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 2);
    for report in reports {
        assert_eq!(report["outcome"], "compatible", "{report}");
        assert_eq!(report["fingerprint"], report["recorded_fingerprint"]);
    }
    let launch = reports
        .iter()
        .find(|r| r["flow"] == "launch")
        .expect("launch");
    assert_eq!(launch["reused"], 2);
    assert_eq!(launch["resume"], "finished");
    assert_eq!(v["unreadable"], serde_json::json!([]));

    let junit = run(&app, &r.url, &["replay", "--format", "junit"]).await;
    assert_eq!(junit.code, 0, "{junit:?}");
    let doc = roxmltree::Document::parse(&junit.stdout).expect("well-formed XML");
    let suite = doc.root_element();
    assert_eq!(suite.tag_name().name(), "testsuite");
    assert_eq!(suite.attribute("name"), Some("orchflow replay"));
    assert_eq!(suite.attribute("tests"), Some("2"));
    assert_eq!(suite.attribute("failures"), Some("0"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2);
    assert!(cases.iter().all(|c| !c.has_children()), "{}", junit.stdout);
    assert!(
        cases
            .iter()
            .any(|c| c.attribute("classname") == Some("launch")
                && c.attribute("name") == Some(r.launch.to_string().as_str()))
    );

    // Filters: one flow, one run.
    let one = run(
        &app,
        &r.url,
        &["replay", "--flow", "launch", "--format", "json"],
    )
    .await;
    let v: Value = serde_json::from_str(&one.stdout).expect("json");
    assert_eq!(v["reports"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["unfinished"].as_array().map(Vec::len), Some(0));
    let prefix = &r.review.to_string()[..8];
    let by_id = run(
        &app,
        &r.url,
        &["replay", "--run", prefix, "--format", "json"],
    )
    .await;
    let v: Value = serde_json::from_str(&by_id.stdout).expect("json");
    assert_eq!(v["reports"][0]["run_id"], r.review.to_string());
    assert_eq!(v["reports"].as_array().map(Vec::len), Some(1));
    let none = run(&app, &r.url, &["replay", "--status", "failed"]).await;
    assert_eq!(none.code, 0, "{none:?}");
    assert!(none.stdout.ends_with("\nno runs to replay\n"), "{none:?}");
    let unknown = run(&app, &r.url, &["replay", "--flow", "nope"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("no flow `nope`; its flows: launch, review"),
        "{unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_step_fails_the_replay_at_its_path_in_every_format() {
    let r = recorded().await;
    let app = App::new(
        Registry::new()
            .register(flow! { #[flow(name = "launch")] outline => draft })
            .register(review_v1!()),
    );
    let text = run(&app, &r.url, &["replay", "--flow", "launch"]).await;
    assert_eq!(text.code, 1, "{text:?}");
    let out = &text.stdout;
    assert!(
        out.contains(&format!(
            "run {}  launch  completed  fingerprint ",
            r.launch
        )),
        "{out}"
    );
    assert!(out.contains(" → "), "the fingerprint changed: {out}");
    assert!(
        out.contains("  diverges at step outline (step_changed)\n"),
        "{out}"
    );
    assert!(
        out.contains("    the recorded run called `plan` here; the new code calls `outline`\n"),
        "{out}"
    );
    assert!(
        out.contains("    recorded: step `plan` at step plan, input \"rust\"\n"),
        "{out}"
    );
    let line = include_str!("replay.rs")
        .lines()
        .position(|l| l.starts_with("async fn outline"))
        .expect("fn outline")
        + 1;
    assert!(
        out.contains(&format!(
            "    new:      step `outline` at step outline, input \"rust\", defined at orchflow-cli/tests/replay.rs:{line}:"
        )),
        "{out}"
    );
    assert!(
        out.ends_with("1 run replayed: 0 compatible, 1 diverges, 0 unreplayable\n"),
        "{out}"
    );
    assert_eq!(
        text.stderr,
        "orchflow: 1 of 1 replayed runs are not compatible with this build\n"
    );

    let json = run(
        &app,
        &r.url,
        &["replay", "--flow", "launch", "--format", "json"],
    )
    .await;
    assert_eq!(json.code, 1);
    let v: Value = serde_json::from_str(&json.stdout).expect("json");
    let report = &v["reports"][0];
    assert_eq!(report["outcome"], "diverges");
    assert_eq!(report["kind"], "step_changed");
    assert_eq!(report["path"], "step outline");
    assert_eq!(report["recorded"]["step"], "plan");
    assert_eq!(report["new"]["step"], "outline");
    assert_eq!(report["new"]["source"]["line"], line);

    let junit = run(
        &app,
        &r.url,
        &["replay", "--flow", "launch", "--format", "junit"],
    )
    .await;
    assert_eq!(junit.code, 1);
    let doc = roxmltree::Document::parse(&junit.stdout).expect("well-formed XML");
    let suite = doc.root_element();
    assert_eq!(suite.attribute("failures"), Some("1"));
    let failure = suite
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure");
    assert_eq!(
        failure.attribute("message"),
        Some(
            "diverges at step outline: the recorded run called `plan` here; the new code calls `outline`"
        )
    );
    assert_eq!(failure.attribute("type"), Some("step_changed"));
    let body = failure.text().unwrap_or_default();
    assert!(
        body.contains("recorded: step `plan` at step plan, input \"rust\"\n"),
        "{body}"
    );
    assert_eq!(
        failure.parent().and_then(|c| c.attribute("name")),
        Some(r.launch.to_string().as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_runs_are_labelled_by_whether_the_new_build_may_resume_them() {
    let r = recorded().await;
    // A changed build that does not declare the old fingerprint: the replay is compatible
    // (the run waits on its question), but a resume would be refused, which fails the check.
    let changed = App::new(Registry::new().register(review_v2!()));
    let out = run(&changed, &r.url, &["replay"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    let old = review_v1!().fingerprint();
    let check = format!("{}\n", out.stdout.split("\n\n").next().unwrap_or_default());
    assert!(
        check.contains(&format!(
            "  {}  review  suspended  fingerprint {old} → ",
            r.review
        )),
        "{check}"
    );
    assert!(check.contains("    replay: compatible\n"), "{check}");
    assert!(
        check.contains(&format!(
            "    resume: undeclared: a resume would be refused — declare with Flow::compatible_with(\"{old}\", \"...\")\n"
        )),
        "{check}"
    );
    assert!(
        check.contains("    continues at step `ok` at step ok\n"),
        "{check}"
    );

    // The same change, declared.
    let declared = App::new(
        Registry::new()
            .register(review_v2!().compatible_with(&old, "shout only formats the decision")),
    );
    let out = run(&declared, &r.url, &["replay", "--format", "json"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["unfinished"][0]["resume"], "declared");
    assert_eq!(
        v["unfinished"][0]["resume_reason"],
        "shout only formats the decision"
    );
    let text = run(&declared, &r.url, &["replay"]).await;
    assert!(
        text.stdout
            .contains("    resume: declared: shout only formats the decision\n"),
        "{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_with_an_edited_input_previews_runs_and_records_its_lineage() {
    let r = recorded().await;
    let app = v1();
    let id = r.launch.to_string();

    let preview = run(
        &app,
        &r.url,
        &[
            "runs",
            "fork",
            &id,
            "--from",
            "draft",
            "--input",
            "\"a better plan\"",
            "--preview",
        ],
    )
    .await;
    assert_eq!(preview.code, 0, "{preview:?}");
    let lines: Vec<&str> = preview.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("fork of run {id} from step `draft` at step draft")
    );
    assert_eq!(lines[1], "with input \"a better plan\"");
    let table: Vec<Vec<&str>> = lines
        .iter()
        .skip_while(|l| !l.starts_with("STEP"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        table,
        [
            vec!["plan", "step", "plan", "reused"],
            vec!["draft", "step", "draft", "rerun", "repeats"],
        ],
        "{}",
        preview.stdout
    );
    // A preview writes nothing.
    let listing = run(
        &app,
        &r.url,
        &["runs", "list", "--flow", "launch", "--json"],
    )
    .await;
    let v: Value = serde_json::from_str(&listing.stdout).expect("json");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(1));

    let forked = run(
        &app,
        &r.url,
        &[
            "runs",
            "fork",
            &id,
            "--from",
            "draft@1",
            "--input",
            "\"a better plan\"",
        ],
    )
    .await;
    assert_eq!(forked.code, 0, "{forked:?}");
    let first = forked.stdout.lines().next().unwrap_or_default();
    let new = first
        .strip_prefix("run ")
        .and_then(|l| l.split(' ').next())
        .expect("the new run's id");
    assert_eq!(first, format!("run {new} forked from run {id} at draft@1"));
    assert!(
        forked.stdout.contains(&format!(
            "run {new} completed: output \"draft of a better plan\"\n"
        )),
        "{forked:?}"
    );

    let shown = run(&app, &r.url, &["runs", "show", new]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown.stdout.contains("status   completed"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains(&format!(
            "lineage  forked from {id} at draft@1 (step draft) with input \"a better plan\"\n"
        )),
        "{}",
        shown.stdout
    );
    let original = run(&app, &r.url, &["runs", "show", &id]).await;
    assert!(
        original.stdout.contains(&format!("forks    {new}\n")),
        "{}",
        original.stdout
    );
    // Queued for a worker: created, not run.
    let queued = run(
        &app,
        &r.url,
        &["runs", "fork", &id, "--from", "plan", "--queue"],
    )
    .await;
    assert_eq!(queued.code, 0, "{queued:?}");
    assert!(
        queued.stdout.contains("is queued for a worker"),
        "{queued:?}"
    );
    let listing = run(
        &app,
        &r.url,
        &[
            "runs", "list", "--flow", "launch", "--status", "queued", "--json",
        ],
    )
    .await;
    let v: Value = serde_json::from_str(&listing.stdout).expect("json");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(1), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_fork_arguments_are_refused_with_their_reason() {
    let r = recorded().await;
    let app = v1();
    let id = r.launch.to_string();
    let not_json = run(
        &app,
        &r.url,
        &[
            "runs",
            "fork",
            &id,
            "--from",
            "draft",
            "--input",
            "a better plan",
        ],
    )
    .await;
    assert_eq!(not_json.code, 2, "{not_json:?}");
    assert!(
        not_json
            .stderr
            .starts_with("orchflow: --input is not JSON ("),
        "{not_json:?}"
    );
    let bad_call = run(&app, &r.url, &["runs", "fork", &id, "--from", "draft@0"]).await;
    assert_eq!(bad_call.code, 2, "{bad_call:?}");
    let no_call = run(&app, &r.url, &["runs", "fork", &id, "--from", "draft@2"]).await;
    assert_eq!(no_call.code, 1, "{no_call:?}");
    assert!(
        no_call.stderr.contains(&format!("run {id}: ")),
        "{no_call:?}"
    );
    let wrong_type = run(
        &app,
        &r.url,
        &["runs", "fork", &id, "--from", "draft", "--input", "42"],
    )
    .await;
    assert_eq!(wrong_type.code, 1, "{wrong_type:?}");
    assert!(
        wrong_type.stderr.contains(&format!("run {id}: ")),
        "{wrong_type:?}"
    );
    // Nothing was created.
    let listing = run(
        &app,
        &r.url,
        &["runs", "list", "--flow", "launch", "--json"],
    )
    .await;
    let v: Value = serde_json::from_str(&listing.stdout).expect("json");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(1));
    // A run of a flow this build lacks.
    let other = App::new(Registry::new().register(review_v1!()));
    let unknown = run(&other, &r.url, &["runs", "fork", &id, "--from", "draft"]).await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert_eq!(
        unknown.stderr,
        "orchflow: this build has no flow `launch`\n"
    );
    let replay = run(&other, &r.url, &["replay", "--run", &id]).await;
    assert_eq!(replay.code, 1, "{replay:?}");
    assert!(
        replay
            .stdout
            .contains("  unreplayable: this build has no flow `launch`\n"),
        "{replay:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_to_re_execute_must_be_a_step_of_a_replayed_flow() {
    let r = recorded().await;
    let app = v1();
    let typo = run(&app, &r.url, &["replay", "--reexecute", "darft"]).await;
    assert_eq!(typo.code, 2, "{typo:?}");
    assert!(
        typo.stderr.starts_with(
            "orchflow: cannot re-execute `darft`: no flow replayed here has such a step; \
             their steps: "
        ) && typo.stderr.contains("draft, "),
        "{typo:?}"
    );
    assert!(typo.stdout.is_empty(), "{typo:?}");
    // `draft` is a step of `launch`, not of `review`.
    let elsewhere = run(
        &app,
        &r.url,
        &["replay", "--flow", "review", "--reexecute", "draft"],
    )
    .await;
    assert_eq!(elsewhere.code, 2, "{elsewhere:?}");
    let pure = run(
        &app,
        &r.url,
        &["replay", "--flow", "launch", "--reexecute", "draft"],
    )
    .await;
    assert_eq!(pure.code, 0, "{pure:?}");
    assert!(
        pure.stdout.contains("1 re-executed with the same output"),
        "{pure:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_the_store_cannot_read_is_reported_and_fails_the_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = orchflow::store::JsonCheckpointStore::new(dir.path());
    let good = launch_v1!().durable(store.clone()).run("a".into()).await;
    let bad = launch_v1!().durable(store.clone()).run("b".into()).await;
    assert!(good.success && bad.success);
    let path = store.document_path(bad.run_id);
    let bytes = std::fs::read(&path).expect("read the document");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write the document");
    let url = format!("json:{}", dir.path().display());
    let app = v1();

    let text = run(&app, &url, &["replay"]).await;
    assert_eq!(text.code, 1, "{text:?}");
    assert!(text.stdout.contains("a run cannot be read: "), "{text:?}");
    assert!(
        text.stdout
            .ends_with("2 runs replayed: 1 compatible, 0 diverge, 0 unreplayable, 1 unreadable\n"),
        "{text:?}"
    );
    let json = run(&app, &url, &["replay", "--format", "json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(v["reports"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["reports"][0]["run_id"], good.run_id.to_string());
    assert_eq!(v["unreadable"].as_array().map(Vec::len), Some(1), "{v}");
    let junit = run(&app, &url, &["replay", "--format", "junit"]).await;
    let doc = roxmltree::Document::parse(&junit.stdout).expect("well-formed XML");
    assert_eq!(doc.root_element().attribute("errors"), Some("1"));
    // Named directly, the run is reported by its id.
    let named = run(&app, &url, &["replay", "--run", &bad.run_id.to_string()]).await;
    assert_eq!(named.code, 1, "{named:?}");
    assert!(
        named
            .stdout
            .contains(&format!("run {}\n  cannot be read: ", bad.run_id)),
        "{named:?}"
    );
}
