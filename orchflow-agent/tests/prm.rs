//! Process-reward pieces: step texts, rewards, dynamic sampling and the export.

use orchflow_agent::prm::{
    FilterStats, MIN_REWARD_STD, PrmRecord, PromptGroup, ScoredTrajectory, filter_groups,
    filter_groups_with, group_by_question, prm_records, reward_std, step_completion, step_prompt,
    step_reward, step_text, trajectory_step_rewards, write_prm_jsonl,
};
use orchflow_agent::trajectory::{
    Action, Decision, Outcome, PlannerOutput, ToolCall, Trajectory, TrajectoryStep, Verdict,
};
use orchflow_agent::{ToolError, ToolOutput, Usage};
use std::cell::Cell;

fn step(
    index: u32,
    action: Action,
    input: &str,
    result: Option<Result<&str, ToolError>>,
) -> TrajectoryStep {
    TrajectoryStep {
        index,
        decision: PlannerOutput::Decision(Decision {
            thought: format!("thought {index}"),
            action,
            action_input: input.into(),
        }),
        tool_call: result.map(|r| ToolCall {
            tool: action.as_str().into(),
            input: serde_json::json!(input),
            result: r.map(ToolOutput::text),
            duration_ms: 3,
        }),
        verdict: Some(Verdict {
            sufficient: false,
            reason: "VERDICT-REASON".into(),
            parsed: true,
            raw: None,
        }),
        usage: Usage::default(),
        planner_ms: 0,
        executor_ms: 0,
        verifier_ms: 0,
    }
}

fn malformed(index: u32) -> TrajectoryStep {
    TrajectoryStep {
        index,
        decision: PlannerOutput::Malformed {
            raw: "not json".into(),
            error: "expected value".into(),
        },
        tool_call: None,
        verdict: None,
        usage: Usage::default(),
        planner_ms: 0,
        executor_ms: 0,
        verifier_ms: 0,
    }
}

fn trajectory() -> Trajectory {
    let mut t = Trajectory::new("What is 2^10?");
    t.steps = vec![
        step(
            0,
            Action::Search,
            "powers of two",
            Some(Ok("SEARCH-RESULT 2^10 = 1024")),
        ),
        malformed(1),
        step(
            2,
            Action::Code,
            "print(2**10)",
            Some(Err(ToolError::Failed {
                message: "CODE-ERROR".into(),
            })),
        ),
        step(
            3,
            Action::Code,
            "print(2**10)",
            Some(Ok("CURRENT-RESULT 1024")),
        ),
    ];
    t.answer = Some("1024".into());
    t.outcome = Outcome::Answered;
    t
}

#[test]
fn step_text_has_question_memory_and_decision_but_not_its_own_result() {
    let t = trajectory();
    let text = step_text(&t.question, &t.steps[..3], &t.steps[3]);
    let expected = "Question:\nWhat is 2^10?\n\nMemory:\n\
        Step 1 (search):\nThought: thought 0\nInput: powers of two\n\
        Result (search): SEARCH-RESULT 2^10 = 1024\n\
        Step 2 (malformed planner output):\nOutput: not json\nError: expected value\n\
        Step 3 (code):\nThought: thought 2\nInput: print(2**10)\n\
        Result (code): error (failed): CODE-ERROR\n\
        \nNext step:\n\
        {\"thought\":\"thought 3\",\"action\":\"code\",\"action_input\":\"print(2**10)\"}";
    assert_eq!(text, expected);
    assert!(
        !text.contains("CURRENT-RESULT"),
        "this step's tool result is excluded"
    );
    assert!(
        !text.contains("VERDICT-REASON"),
        "verdicts are not part of the memory"
    );
    assert_eq!(
        text,
        step_prompt(&t.question, &t.steps[..3]) + &step_completion(&t.steps[3])
    );

    let first = step_text(&t.question, &[], &t.steps[0]);
    assert!(first.contains("Memory:\n(empty)\n"));
    assert!(!first.contains("SEARCH-RESULT"));
    assert_eq!(step_completion(&t.steps[1]), "not json");
}

#[test]
fn long_results_are_shortened_in_memory() {
    let long = "x".repeat(5000);
    let s = step(0, Action::Search, "q", Some(Ok(&long)));
    let next = step(1, Action::Answer, "a", None);
    let text = step_text("q", &[s], &next);
    assert!(text.contains(&format!("{}… [truncated]", "x".repeat(1500))));
    assert!(!text.contains(&"x".repeat(1501)));
}

#[test]
fn malformed_steps_score_zero_without_asking_the_scorer() {
    let t = trajectory();
    let calls = Cell::new(0);
    let scorer = |_: &str| {
        calls.set(calls.get() + 1);
        0.8
    };
    assert_eq!(
        step_reward(&t.question, &t.steps[..1], &t.steps[1], &scorer),
        0.0
    );
    assert_eq!(calls.get(), 0);
    assert_eq!(step_reward(&t.question, &[], &t.steps[0], &scorer), 0.8);
    assert_eq!(calls.get(), 1);
    assert_eq!(trajectory_step_rewards(&t, &scorer), [0.8, 0.0, 0.8, 0.8]);
}

#[test]
fn scores_are_clamped() {
    let t = trajectory();
    for (score, reward) in [
        (1.7, 1.0),
        (-0.3, 0.0),
        (f64::NAN, 0.0),
        (0.25, 0.25),
        (f64::INFINITY, 1.0),
    ] {
        assert_eq!(
            step_reward(&t.question, &[], &t.steps[0], &|_: &str| score),
            reward,
            "{score}"
        );
    }
}

#[test]
fn the_scorer_sees_the_step_text() {
    let t = trajectory();
    let scorer = |text: &str| {
        if text.contains("CODE-ERROR") {
            0.1
        } else {
            0.9
        }
    };
    // Step 2's own error is excluded from its text; step 3 sees it in memory.
    assert_eq!(trajectory_step_rewards(&t, &scorer), [0.9, 0.0, 0.9, 0.1]);
    let scored = ScoredTrajectory::from_scorer(t, &scorer);
    assert!((scored.reward - 1.9 / 4.0).abs() < 1e-12);
    let empty = ScoredTrajectory::from_scorer(Trajectory::new("q"), &scorer);
    assert_eq!((empty.step_rewards.len(), empty.reward), (0, 0.0));
}

#[test]
fn population_standard_deviation_by_hand() {
    assert_eq!(reward_std(&[0.0, 0.0, 0.0]), 0.0);
    assert_eq!(reward_std(&[0.0, 1.0]), 0.5);
    assert!((reward_std(&[0.5, 0.5005]) - 0.00025).abs() < 1e-12);
    assert!((reward_std(&[1.0, 2.0, 3.0, 4.0]) - 1.25f64.sqrt()).abs() < 1e-12);
    assert!((reward_std(&[0.0, 0.0, 1.0]) - (2.0f64).sqrt() / 3.0).abs() < 1e-12);
    assert_eq!(reward_std(&[0.7]), 0.0);
    assert_eq!(reward_std(&[]), 0.0);
    assert!(reward_std(&[0.0, f64::NAN]).is_nan());
    assert_eq!(MIN_REWARD_STD, 1e-3);
}

fn group(q: &str, rewards: &[f64]) -> PromptGroup {
    PromptGroup {
        question: q.into(),
        samples: rewards
            .iter()
            .map(|&r| ScoredTrajectory::new(Trajectory::new(q), vec![r], r))
            .collect(),
    }
}

#[test]
fn groups_without_spread_are_dropped() {
    let out = filter_groups(vec![
        group("zeros", &[0.0, 0.0, 0.0]),     // std 0: dropped, all zero
        group("half", &[0.0, 1.0]),           // std 0.5: kept
        group("close", &[0.5, 0.5005]),       // std 0.00025: dropped
        group("ones", &[1.0, 1.0, 1.0, 1.0]), // dropped, all one
        group("spread", &[0.0, 0.004]),       // std 0.002: kept
        group("single", &[0.3]),              // one sample: dropped
        group("empty", &[]),                  // dropped
        group("nan", &[0.0, f64::NAN]),       // dropped
        group("third", &[0.0, 0.0, 1.0]),     // std 0.471: kept
    ]);
    let kept: Vec<_> = out.kept.iter().map(|g| g.question.as_str()).collect();
    assert_eq!(kept, ["half", "spread", "third"]);
    let s = &out.stats;
    assert_eq!(
        (
            s.groups_in,
            s.groups_kept,
            s.groups_dropped,
            s.samples_kept,
            s.samples_dropped
        ),
        (9, 3, 6, 7, 3 + 2 + 4 + 1 + 2)
    );
    assert_eq!((s.dropped_all_zero, s.dropped_all_one), (1, 1));
    let dropped: Vec<_> = s.dropped.iter().map(|d| d.question.as_str()).collect();
    assert_eq!(
        dropped,
        ["zeros", "close", "ones", "single", "empty", "nan"]
    );
    let close = &s.dropped[1];
    assert_eq!(close.samples, 2);
    assert!((close.mean_reward - 0.50025).abs() < 1e-12);
    assert!((close.reward_std - 0.00025).abs() < 1e-12);

    // A lower threshold keeps the close group.
    let out = filter_groups_with(vec![group("close", &[0.5, 0.5005])], 1e-4);
    assert_eq!(out.kept.len(), 1);
    assert_eq!(filter_groups(vec![]).stats, FilterStats::default());
}

#[test]
fn grouping_by_question() {
    let mk = |q: &str, r: f64| ScoredTrajectory::new(Trajectory::new(q), vec![], r);
    let groups = group_by_question(vec![mk("b", 0.0), mk("a", 1.0), mk("b", 1.0)]);
    assert_eq!(groups.len(), 2);
    assert_eq!(
        (groups[0].question.as_str(), groups[0].rewards()),
        ("b", vec![0.0, 1.0])
    );
    assert_eq!(groups[0].reward_std(), 0.5);
    assert_eq!(groups[1].question, "a");
}

#[test]
fn export_one_line_per_step() {
    let t = trajectory();
    let sample = ScoredTrajectory::new(t.clone(), vec![0.9, 0.0, 0.5, 1.0], 1.0);
    let records = prm_records(&sample);
    assert_eq!(records.len(), 4);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r.prompt.clone() + &r.completion,
            step_text(&t.question, &t.steps[..i], &t.steps[i])
        );
        assert_eq!(r.step, i);
        assert_eq!(r.num_steps, 4);
    }
    assert!(records[1].malformed && !records[0].malformed);
    assert_eq!(records[2].reward, 0.5);

    let mut buf = Vec::new();
    let short = ScoredTrajectory::new(t, vec![0.2], 0.0); // only the rewarded step is exported
    let n = write_prm_jsonl(&mut buf, &[sample, short]).unwrap();
    assert_eq!(n, 5);
    let text = String::from_utf8(buf).unwrap();
    assert_eq!(text.lines().count(), 5);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for key in [
        "prompt",
        "completion",
        "reward",
        "question",
        "step",
        "num_steps",
        "malformed",
        "trajectory_reward",
    ] {
        assert!(first.get(key).is_some(), "{key}");
    }
    let last: PrmRecord = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last.step, last.reward, last.trajectory_reward),
        (0, 0.2, 0.0)
    );
}
