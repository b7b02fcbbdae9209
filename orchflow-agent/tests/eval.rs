//! The eval runner: answer extraction, scoring, the report, resume and the concurrency bound.

use orchflow_agent::eval::{
    AnswerKind, EvalError, EvalItem, EvalOptions, EvalRecord, EvalReport, FailureKind,
    extract_choice, extract_integer, parse_items, read_items, read_results, run_eval,
};
use orchflow_agent::trajectory::{
    Action, Decision, Outcome, PlannerOutput, ToolCall, Trajectory, TrajectoryStep,
};
use orchflow_agent::{ToolError, ToolOutput, Usage};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn integer_extraction() {
    let cases: &[(&str, Option<i64>)] = &[
        (r"\boxed{042}", Some(42)),
        (r"so the answer is $\boxed{1,234}$.", Some(1234)),
        (r"\boxed{ 17 }", Some(17)),
        (r"$\boxed{-5}$", Some(-5)),
        (r"\boxed{+8}", Some(8)),
        (r"\boxed{42.0}", Some(42)),
        (r"\boxed{n = 12}", Some(12)),
        (r"\boxed{\text{12}}", Some(12)),
        (r"\boxed{12^\circ}", Some(12)),
        (r"\boxed{1\,000}", Some(1000)),
        (r"\boxed{1{,}000}", Some(1000)),
        (r"\boxed{1 000}", Some(1000)),
        (r"\boxed{{7}}", Some(7)),
        (r"\fbox{9}", Some(9)),
        (r"\boxed 15", Some(15)),
        (r"First \boxed{1}, then \boxed{2}", Some(2)),
        (r"Done: \boxed{5}. Unfinished \boxed{6", Some(5)),
        (r"\boxed{\frac{1}{2}}", None),
        (r"\boxed{3.5}", None),
        (r"\boxed{x=3, y=4}", None),
        (r"\boxed{C}", None),
        (r"\boxed{2^{10}}", None),
        (r"\boxed{99999999999999999999}", None),
        ("The answer is 42.", Some(42)),
        ("3 apples and 5 pears make 8", Some(8)),
        ("There are 1,000,000 ways.", Some(1_000_000)),
        ("pi is about 3.14, so 7", Some(7)),
        ("The value is 2.5", None),
        ("", None),
        ("no digits at all", None),
        ("x = -12", Some(-12)),
        ("a range 5-3", Some(3)),
        ("It is H2O", None),
        ("answer: 007", Some(7)),
        ("Answer:\n\n**204**", Some(204)),
        ("The total is 12,3", Some(3)),
        ("Result: 6.00", Some(6)),
    ];
    for (text, expected) in cases {
        assert_eq!(extract_integer(text), *expected, "{text:?}");
    }
}

/// A reply that starts with an option (`D) …`, `D: …`, `B. …`) is that option; a hedge between
/// two options (`B or C`, `B/C`, `either B or C`) is no answer at all.
#[test]
fn choice_extraction_leading_option_and_hedges() {
    let cases: &[(&str, usize, Option<char>)] = &[
        // A reply that starts with the option.
        ("D) 10^-4 eV", 4, Some('D')),
        ("D: because the energy gap is small", 4, Some('D')),
        ("B. It follows from conservation of energy.", 4, Some('B')),
        ("  **C)** 6 N, since the forces balance", 4, Some('C')),
        ("**B.** It follows", 4, Some('B')),
        ("(A) because argon is noble", 4, Some('A')),
        ("[D] 10^-4 eV", 4, Some('D')),
        ("c) the third one", 4, Some('C')),
        ("B\n\nThe other options violate unitarity.", 4, Some('B')),
        ("A: 1 eV", 4, Some('A')),
        ("E) 5 eV", 5, Some('E')),
        // Not a leading option.
        ("E) 5 eV", 4, None),
        ("A simple estimate gives 10^-4 eV", 4, None),
        (
            "A number of effects matter; the answer is (B).",
            4,
            Some('B'),
        ),
        ("e.g. the first one", 5, None),
        ("A.I. models disagree here", 4, None),
        ("D:5 is the ratio", 4, None),
        // An enumeration of the options is not a choice of the first.
        (
            "A. 1 eV is too large.\nB. 2 eV is too large.\nC. 3 eV fits.\nD. 4 eV is too small.",
            4,
            None,
        ),
        (
            "A. 1 eV is wrong\nB. 2 eV is wrong\nThe answer is (C).",
            4,
            Some('C'),
        ),
        // An explicit answer phrase still wins over the first line.
        ("B. It looks right, but the answer is (D).", 4, Some('D')),
        // Hedges between options give no letter.
        ("B or C", 4, None),
        ("B/C", 4, None),
        ("B / C", 4, None),
        ("either B or C", 4, None),
        ("It is either B or C", 4, None),
        ("The answer is B or C.", 4, None),
        ("The answer is (B) or (C).", 4, None),
        ("the answer is A or B", 4, None),
        ("Answer: **B** or **C**", 4, None),
        ("I'd say B or c", 4, None),
        ("B OR C", 4, None),
        ("B or C\n", 4, None),
        ("\\boxed{B \\text{ or } C}", 4, None),
        ("\\boxed{B/C}", 4, None),
        // Not hedges.
        ("B or C? The answer is C.", 4, Some('C')),
        ("Answer: B or higher", 4, Some('B')),
        ("B and C are wrong, so the answer is D", 4, Some('D')),
        ("The answer is B. A or C would break parity.", 4, Some('B')),
        ("A/B testing aside, the answer is C", 4, Some('C')),
        ("Because of this or that, we pick C.", 4, Some('C')),
        // The behaviours that were right stay.
        ("The answer is (C)", 4, Some('C')),
        ("\\boxed{C}", 4, Some('C')),
        ("Answer: d", 4, Some('D')),
        ("After checking each option:\n\nC", 4, Some('C')),
        ("After checking, so we pick B.", 4, Some('B')),
    ];
    let mut wrong = Vec::new();
    for (text, letters, expected) in cases {
        let got = extract_choice(text, *letters);
        if got != *expected {
            wrong.push(format!(
                "{text:?} ({letters}): got {got:?}, want {expected:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn choice_extraction() {
    let cases: &[(&str, usize, Option<char>)] = &[
        (r"\boxed{C}", 4, Some('C')),
        (r"\boxed{\text{(b)}}", 4, Some('B')),
        (r"$\boxed{D) 64}$", 4, Some('D')),
        ("The answer is (C).", 4, Some('C')),
        ("so the answer is c", 4, Some('C')),
        ("Answer: D", 4, Some('D')),
        ("**Answer:** B", 4, Some('B')),
        ("Final answer: (a)", 4, Some('A')),
        (
            "The correct option is B because the others fail.",
            4,
            Some('B'),
        ),
        ("The answer is A because argon is rare.", 4, Some('A')),
        (
            "Answer: A prime number is 433, which is option C.",
            4,
            Some('C'),
        ),
        (
            "Option A looks tempting, but the answer is (C).",
            4,
            Some('C'),
        ),
        ("The answer is C, not option B.", 4, Some('C')),
        ("After checking each option:\n\nC", 4, Some('C')),
        ("After checking, so we pick B.", 4, Some('B')),
        ("(D)", 4, Some('D')),
        ("**b**", 4, Some('B')),
        ("The answer is E", 4, None),
        ("The answer is E", 5, Some('E')),
        ("The answer is a prime number.", 4, None),
        ("I cannot tell.", 4, None),
        ("", 4, None),
        ("\\boxed{6 N}\nThe answer is (A).", 4, Some('A')),
        ("The answer is 42, so B is wrong", 4, None),
        ("Answer: (c) 6 N", 4, Some('C')),
        ("ANSWER: b.", 4, Some('B')),
    ];
    for (text, letters, expected) in cases {
        assert_eq!(extract_choice(text, *letters), *expected, "{text:?}");
    }
}

fn item(id: &str, answer: &str, kind: AnswerKind) -> EvalItem {
    EvalItem {
        id: id.into(),
        question: format!("question {id}\n(A) one\n(B) two\n(C) three\n(D) four"),
        answer: answer.into(),
        kind,
    }
}

#[test]
fn scoring_items() {
    let i = item("i", "042", AnswerKind::Integer);
    assert_eq!(i.expected().unwrap(), "42");
    let s = i.score(r"\boxed{42}");
    assert!(s.correct);
    assert_eq!(
        (s.predicted.as_deref(), s.expected.as_str()),
        (Some("42"), "42")
    );
    assert!(i.score("41").predicted.as_deref() == Some("41") && !i.score("41").correct);

    let c = item("c", "c", AnswerKind::Choice);
    assert_eq!(c.expected().unwrap(), "C");
    assert!(c.score("answer: (c)").correct);
    assert!(!c.score("answer: (d)").correct);

    // Five options in the question: E is a letter.
    let mut e = item("e", "E", AnswerKind::Choice);
    e.question.push_str("\n(E) five");
    assert_eq!(e.option_count(), 5);
    assert!(e.score("The answer is E").correct);

    // A bad expected answer scores as wrong, never panics.
    let bad = item("b", "abc", AnswerKind::Integer);
    assert!(bad.expected().is_err());
    assert!(!bad.score("abc").correct);
}

#[test]
fn parsing_items() {
    let items = parse_items(
        "{\"id\": 1, \"question\": \"q\", \"answer\": 42, \"kind\": \"int\"}\n\
         \n\
         {\"id\": \"x\", \"question\": \"q\", \"answer\": \"b\", \"kind\": \"mc\"}\n",
    )
    .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0].id.as_str(), items[0].answer.as_str()),
        ("1", "42")
    );
    assert_eq!(items[0].kind, AnswerKind::Integer);
    assert_eq!(items[1].kind, AnswerKind::Choice);

    let err = parse_items("{\"id\": 1}\n").unwrap_err();
    assert!(matches!(err, EvalError::Parse { line: 1, .. }), "{err}");
    let err = parse_items(
        "{\"id\": 1, \"question\": \"q\", \"answer\": 1, \"kind\": \"integer\"}\n\
         {\"id\": 1, \"question\": \"q\", \"answer\": 2, \"kind\": \"integer\"}",
    )
    .unwrap_err();
    assert!(
        matches!(err, EvalError::DuplicateId { ref id } if id == "1"),
        "{err}"
    );
    let err =
        parse_items("{\"id\": 1, \"question\": \"q\", \"answer\": \"x\", \"kind\": \"integer\"}")
            .unwrap_err();
    assert!(matches!(err, EvalError::InvalidItem { .. }), "{err}");
}

#[test]
fn the_sample_set_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample_eval.jsonl");
    let items = read_items(&path).unwrap();
    let ints = items
        .iter()
        .filter(|i| i.kind == AnswerKind::Integer)
        .count();
    let choices = items
        .iter()
        .filter(|i| i.kind == AnswerKind::Choice)
        .count();
    assert_eq!((ints, choices), (10, 6));
    for i in &items {
        // Its own expected answer, boxed, scores as correct.
        assert!(
            i.score(&format!("\\boxed{{{}}}", i.answer)).correct,
            "{}",
            i.id
        );
    }
}

// -------------------------------------------------------------------------------------------
// Fake trajectories
// -------------------------------------------------------------------------------------------

fn decision(action: Action, input: &str) -> PlannerOutput {
    PlannerOutput::Decision(Decision {
        thought: "…".into(),
        action,
        action_input: input.into(),
    })
}

fn step(
    index: u32,
    decision: PlannerOutput,
    call: Option<(&str, Result<&str, ToolError>)>,
) -> TrajectoryStep {
    TrajectoryStep {
        index,
        decision,
        tool_call: call.map(|(tool, result)| ToolCall {
            tool: tool.into(),
            input: serde_json::json!("x"),
            result: result.map(ToolOutput::text),
            duration_ms: 1,
        }),
        verdict: None,
        usage: Usage::default(),
        planner_ms: 0,
        executor_ms: 0,
        verifier_ms: 0,
    }
}

fn traj(
    steps: Vec<TrajectoryStep>,
    answer: Option<&str>,
    outcome: Outcome,
    usage: (u64, u64),
    duration_ms: u64,
) -> Trajectory {
    let mut t = Trajectory::new("q");
    t.steps = steps;
    t.answer = answer.map(String::from);
    t.outcome = outcome;
    t.usage = Usage {
        prompt_tokens: usage.0,
        completion_tokens: usage.1,
    };
    t.duration_ms = duration_ms;
    t
}

/// Five items with hand-made trajectories; see `report_numbers_by_hand`.
fn scenario() -> (
    Vec<EvalItem>,
    impl Fn(EvalItem) -> std::future::Ready<Trajectory>,
) {
    let items = vec![
        item("a", "42", AnswerKind::Integer),
        item("b", "7", AnswerKind::Integer),
        item("c", "B", AnswerKind::Choice),
        item("d", "C", AnswerKind::Choice),
        item("e", "5", AnswerKind::Integer),
    ];
    let solve = |item: EvalItem| {
        let t = match item.id.as_str() {
            // Correct after a search: 2 steps.
            "a" => traj(
                vec![
                    step(
                        0,
                        decision(Action::Search, "q"),
                        Some(("search", Ok("hits"))),
                    ),
                    step(1, decision(Action::Answer, "42"), None),
                ],
                Some(r"\boxed{42}"),
                Outcome::Answered,
                (100, 20),
                1000,
            ),
            // Wrong after two code calls, one timed out: 3 steps.
            "b" => traj(
                vec![
                    step(
                        0,
                        decision(Action::Code, "print(8)"),
                        Some(("code", Ok("8"))),
                    ),
                    step(
                        1,
                        decision(Action::Code, "while True: pass"),
                        Some((
                            "code",
                            Err(ToolError::timed_out("wall time", Duration::from_secs(5))),
                        )),
                    ),
                    step(2, decision(Action::Answer, "8"), None),
                ],
                Some("8"),
                Outcome::Answered,
                (50, 10),
                3000,
            ),
            // Two malformed decisions, then the budget ran out with no answer.
            "c" => traj(
                vec![
                    step(
                        0,
                        PlannerOutput::Malformed {
                            raw: "{".into(),
                            error: "eof".into(),
                        },
                        None,
                    ),
                    step(
                        1,
                        PlannerOutput::Malformed {
                            raw: "?".into(),
                            error: "no json".into(),
                        },
                        None,
                    ),
                ],
                None,
                Outcome::BudgetExhausted,
                (0, 0),
                2000,
            ),
            // Correct despite a failed search; verified.
            "d" => traj(
                vec![
                    step(
                        0,
                        decision(Action::Search, "q"),
                        Some((
                            "search",
                            Err(ToolError::Unavailable {
                                reason: "no key".into(),
                            }),
                        )),
                    ),
                    step(1, decision(Action::Think, "hmm"), None),
                ],
                Some("The answer is (c)."),
                Outcome::Verified,
                (10, 5),
                0,
            ),
            // The run failed outright.
            _ => traj(
                vec![],
                None,
                Outcome::Failed {
                    error: "connection refused".into(),
                },
                (0, 0),
                0,
            ),
        };
        std::future::ready(t)
    };
    (items, solve)
}

fn no_progress(path: Option<&Path>, concurrency: usize) -> EvalOptions {
    EvalOptions {
        concurrency,
        results_path: path.map(Path::to_path_buf),
        progress: false,
    }
}

fn map(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn report_numbers_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("out/results.jsonl");
    let (items, solve) = scenario();
    let report = run_eval(items, solve, &no_progress(Some(&results), 2))
        .await
        .unwrap();

    assert_eq!((report.total, report.correct, report.answered), (5, 2, 3));
    assert_eq!(report.resumed, 0);
    assert!((report.accuracy - 0.4).abs() < 1e-12);
    assert!((report.mean_steps - 9.0 / 5.0).abs() < 1e-12);
    assert!((report.mean_duration_ms - 1200.0).abs() < 1e-12);
    assert_eq!(
        report.usage,
        Usage {
            prompt_tokens: 160,
            completion_tokens: 35
        }
    );
    assert!((report.mean_tokens - 39.0).abs() < 1e-12);
    assert_eq!(report.tool_calls, map(&[("code", 2), ("search", 2)]));
    assert_eq!(report.items_using_tool, map(&[("code", 1), ("search", 2)]));
    assert_eq!(
        report.tool_errors,
        map(&[("timed_out", 1), ("unavailable", 1)])
    );
    assert_eq!(
        report.failures,
        map(&[
            ("budget_exhausted", 1),
            ("failed_run", 1),
            ("wrong_answer", 1)
        ])
    );
    assert_eq!(
        report.outcomes,
        map(&[
            ("answered", 2),
            ("budget_exhausted", 1),
            ("failed", 1),
            ("verified", 1)
        ])
    );
    assert_eq!(
        (report.malformed_decisions, report.items_with_malformed),
        (2, 1)
    );
    assert_eq!(
        (
            report.by_kind["integer"].total,
            report.by_kind["integer"].correct
        ),
        (3, 1)
    );
    assert_eq!(
        (
            report.by_kind["choice"].total,
            report.by_kind["choice"].correct
        ),
        (2, 1)
    );

    // One line per item, each a full record.
    let records = read_results(&results).unwrap();
    assert_eq!(records.len(), 5);
    let by_id: BTreeMap<_, _> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    let b = by_id["b"];
    assert_eq!(
        (b.predicted.as_deref(), b.expected.as_str()),
        (Some("8"), "7")
    );
    assert_eq!(b.failure, Some(FailureKind::WrongAnswer));
    assert_eq!(b.steps, 3);
    assert_eq!(b.tool_calls, map(&[("code", 2)]));
    assert_eq!(b.outcome, "answered");
    assert_eq!(by_id["d"].predicted.as_deref(), Some("C"));
    assert_eq!(by_id["d"].failure, None);
    assert_eq!(by_id["c"].malformed_decisions, 2);
    assert_eq!(by_id["e"].failure, Some(FailureKind::FailedRun));
    assert_eq!(by_id["a"].trajectory.steps.len(), 2);
    let raw = std::fs::read_to_string(&results).unwrap();
    let line: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    for key in [
        "id",
        "correct",
        "predicted",
        "expected",
        "steps",
        "tool_calls",
        "outcome",
        "failure",
        "trajectory",
    ] {
        assert!(line.get(key).is_some(), "{key}");
    }

    // The same report from the records; JSON and Markdown on disk.
    let again = EvalReport::from_records(&records);
    assert_eq!(
        (again.total, again.correct, again.tool_calls.clone()),
        (5, 2, report.tool_calls.clone())
    );
    let (json, md) = report.write(dir.path().join("out")).unwrap();
    let back: EvalReport = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(back, report);
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("| accuracy | 40.0% (2/5) |"), "{md}");
    assert!(md.contains("| mean steps | 1.80 |"), "{md}");
    assert!(md.contains("| search | 2 | 2 |"), "{md}");
    assert!(md.contains("| budget_exhausted | 1 |"), "{md}");
    assert!(md.contains("| timed_out | 1 |"), "{md}");
}

#[tokio::test]
async fn record_from_a_trajectory() {
    let i = item("x", "3", AnswerKind::Integer);
    let t = traj(vec![], Some("no number"), Outcome::Answered, (1, 1), 5);
    let r = EvalRecord::new(&i, t, Duration::from_millis(7));
    assert_eq!(r.failure, Some(FailureKind::NoAnswer));
    assert_eq!((r.wall_ms, r.duration_ms), (7, 5));
    let t = traj(vec![], Some("3"), Outcome::BudgetExhausted, (0, 0), 0);
    let r = EvalRecord::new(&i, t, Duration::ZERO);
    assert!(r.correct, "a correct fallback answer counts");
    assert_eq!(r.failure, None);
}

/// A solve closure answering every integer item correctly and counting its calls.
fn counting_solve(
    calls: Arc<Mutex<Vec<String>>>,
) -> impl Fn(EvalItem) -> std::future::Ready<Trajectory> {
    move |item: EvalItem| {
        calls.lock().unwrap().push(item.id.clone());
        std::future::ready(traj(
            vec![step(0, decision(Action::Answer, &item.answer), None)],
            Some(&item.answer),
            Outcome::Answered,
            (1, 1),
            10,
        ))
    }
}

fn int_items(n: usize) -> Vec<EvalItem> {
    (0..n)
        .map(|i| item(&format!("q{i}"), &i.to_string(), AnswerKind::Integer))
        .collect()
}

#[tokio::test]
async fn resume_skips_finished_ids() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let items = int_items(6);

    let r = run_eval(
        items[..3].to_vec(),
        counting_solve(calls.clone()),
        &no_progress(Some(&results), 2),
    )
    .await
    .unwrap();
    assert_eq!((r.total, r.resumed), (3, 0));
    assert_eq!(calls.lock().unwrap().len(), 3);

    calls.lock().unwrap().clear();
    let r = run_eval(
        items.clone(),
        counting_solve(calls.clone()),
        &no_progress(Some(&results), 2),
    )
    .await
    .unwrap();
    let mut asked = calls.lock().unwrap().clone();
    asked.sort();
    assert_eq!(asked, ["q3", "q4", "q5"]);
    assert_eq!((r.total, r.correct, r.resumed), (6, 6, 3));
    assert_eq!(read_results(&results).unwrap().len(), 6);

    calls.lock().unwrap().clear();
    let r = run_eval(
        items[1..4].to_vec(),
        counting_solve(calls.clone()),
        &no_progress(Some(&results), 2),
    )
    .await
    .unwrap();
    assert!(calls.lock().unwrap().is_empty());
    assert_eq!(
        (r.total, r.resumed),
        (3, 3),
        "only the items asked for are reported"
    );
}

#[tokio::test]
async fn a_torn_last_line_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let items = int_items(3);
    run_eval(
        items[..2].to_vec(),
        counting_solve(calls.clone()),
        &no_progress(Some(&results), 1),
    )
    .await
    .unwrap();
    // An interrupted write: half a record for q2, no newline.
    let mut raw = std::fs::read_to_string(&results).unwrap();
    raw.push_str("{\"id\": \"q2\", \"corr");
    std::fs::write(&results, &raw).unwrap();
    assert_eq!(read_results(&results).unwrap().len(), 2);

    calls.lock().unwrap().clear();
    let r = run_eval(
        items.clone(),
        counting_solve(calls.clone()),
        &no_progress(Some(&results), 1),
    )
    .await
    .unwrap();
    assert_eq!(*calls.lock().unwrap(), ["q2"]);
    assert_eq!((r.total, r.correct, r.resumed), (3, 3, 2));
    let raw = std::fs::read_to_string(&results).unwrap();
    assert_eq!(raw.lines().count(), 3);
    assert!(
        raw.lines()
            .all(|l| serde_json::from_str::<EvalRecord>(l).is_ok())
    );

    // A complete last record without its newline is kept, and the next record goes on its
    // own line.
    std::fs::write(&results, raw.trim_end()).unwrap();
    calls.lock().unwrap().clear();
    let r = run_eval(
        int_items(4),
        counting_solve(calls.clone()),
        &no_progress(Some(&results), 1),
    )
    .await
    .unwrap();
    assert_eq!(*calls.lock().unwrap(), ["q3"]);
    assert_eq!((r.total, r.resumed), (4, 3));
    let raw = std::fs::read_to_string(&results).unwrap();
    assert_eq!(raw.lines().count(), 4);
    assert!(
        raw.lines()
            .all(|l| serde_json::from_str::<EvalRecord>(l).is_ok())
    );
}

#[tokio::test]
async fn each_result_is_written_before_the_next_item_starts() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.jsonl");
    let seen_lines = Arc::new(Mutex::new(Vec::new()));
    let path = results.clone();
    let seen = seen_lines.clone();
    let solve = move |item: EvalItem| {
        let lines = std::fs::read_to_string(&path)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        seen.lock().unwrap().push(lines);
        std::future::ready(traj(
            vec![],
            Some(&item.answer),
            Outcome::Answered,
            (0, 0),
            0,
        ))
    };
    run_eval(int_items(4), solve, &no_progress(Some(&results), 1))
        .await
        .unwrap();
    assert_eq!(*seen_lines.lock().unwrap(), [0, 1, 2, 3]);
}

async fn max_in_flight(concurrency: usize, n: usize) -> usize {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (f, m) = (in_flight.clone(), max.clone());
    let solve = move |item: EvalItem| {
        let (f, m) = (f.clone(), m.clone());
        async move {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(15)).await;
            f.fetch_sub(1, Ordering::SeqCst);
            traj(vec![], Some(&item.answer), Outcome::Answered, (0, 0), 0)
        }
    };
    let report = run_eval(int_items(n), solve, &no_progress(None, concurrency))
        .await
        .unwrap();
    assert_eq!(report.correct, n);
    max.load(Ordering::SeqCst)
}

#[tokio::test]
async fn concurrency_is_bounded() {
    assert_eq!(max_in_flight(3, 12).await, 3);
    assert_eq!(max_in_flight(1, 4).await, 1);
    assert_eq!(max_in_flight(0, 3).await, 1, "0 counts as 1");
    assert_eq!(max_in_flight(10, 4).await, 4);
}

#[tokio::test]
async fn duplicate_ids_are_refused_before_solving() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut items = int_items(2);
    items[1].id = "q0".into();
    let err = run_eval(items, counting_solve(calls.clone()), &no_progress(None, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, EvalError::DuplicateId { .. }));
    assert!(calls.lock().unwrap().is_empty());
}
