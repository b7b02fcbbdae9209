//! The solver with a scripted model and counting tools: decisions, dispatch, verdicts, the
//! budget, malformed replies, a model that is down, and a durable run resumed without repeating
//! a finished tool call. The offline solver end to end (real sandbox, real local search).

use orchflow_agent::solver::{Solver, SolverConfig};
use orchflow_agent::testing::ScriptedLlm;
use orchflow_agent::tools::{Tool, ToolFuture, ToolOutput};
use orchflow_agent::trajectory::{Action, Outcome, PlannerOutput};
use orchflow_agent::{ChatRequest, LlmError};
use orchflow_core::{JsonCheckpointStore, MemoryStore, RunId};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A `search` tool that counts its calls and answers with a fixed text.
struct CountingSearch {
    calls: AtomicUsize,
}

impl Tool for CountingSearch {
    fn name(&self) -> &str {
        "search"
    }
    fn description(&self) -> &str {
        "looks things up"
    }
    fn input_schema(&self) -> serde_json::Value {
        serde_json::json!({"type": "object", "properties": {"query": {"type": "string"}}})
    }
    fn call<'a>(&'a self, input: &'a serde_json::Value) -> ToolFuture<'a> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(ToolOutput::text(format!(
                "hit {n} for {}: the answer is 42",
                input["query"].as_str().unwrap_or("?")
            )))
        })
    }
}

fn search_tool() -> Arc<CountingSearch> {
    Arc::new(CountingSearch {
        calls: AtomicUsize::new(0),
    })
}

/// Which solver prompt a request is: the title of its reply schema.
fn kind(req: &ChatRequest) -> String {
    req.schema
        .as_ref()
        .and_then(|s| s.get("title"))
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string()
}

fn decision(action: &str, input: &str) -> String {
    serde_json::json!({"thought": "t", "action": action, "action_input": input}).to_string()
}

fn config(max_steps: u32) -> SolverConfig {
    SolverConfig {
        max_steps,
        ..SolverConfig::default()
    }
}

#[tokio::test]
async fn a_run_searches_is_judged_insufficient_then_answers() {
    let planned = Arc::new(AtomicUsize::new(0));
    let p = planned.clone();
    let llm = Arc::new(ScriptedLlm::from_fn(move |req| {
        Ok(match kind(req).as_str() {
            "Decision" => match p.fetch_add(1, Ordering::SeqCst) {
                0 => decision("search", "meaning of life"),
                _ => decision("answer", " 42 "),
            },
            "VerdictReply" => r#"{"sufficient": false, "reason": "let me answer myself"}"#.into(),
            other => panic!("unexpected prompt {other}"),
        })
    }));
    let search = search_tool();
    let solver = Solver::new(llm.clone(), vec![search.clone()], config(5));
    let t = solver.solve("What is the meaning of life?").await;

    assert_eq!(t.answer.as_deref(), Some("42"));
    assert_eq!(t.outcome, Outcome::Answered);
    assert_eq!(t.steps.len(), 2);
    let first = &t.steps[0];
    assert_eq!(first.decision.decision().unwrap().action, Action::Search);
    let call = first.tool_call.as_ref().unwrap();
    assert_eq!(call.tool, "search");
    assert_eq!(call.input["query"], "meaning of life");
    assert!(call.result.as_ref().unwrap().content.contains("42"));
    assert!(!first.verdict.as_ref().unwrap().sufficient);
    assert!(t.steps[1].verdict.is_none(), "no verdict after an answer");
    assert_eq!(search.calls.load(Ordering::SeqCst), 1);
    assert_eq!(llm.calls(), 3, "plan, verify, plan");
    assert!(t.usage.total() > 0);
    assert_eq!(
        t.usage.total(),
        t.steps.iter().map(|s| s.usage.total()).sum::<u64>()
    );
    // The planner saw the tool's result in its second prompt.
    let second_prompt = &llm.requests()[2];
    assert!(
        second_prompt
            .messages
            .last()
            .unwrap()
            .content
            .contains("hit 1"),
        "{second_prompt:?}"
    );
    // The trajectory round-trips through JSON.
    let json = serde_json::to_string(&t).unwrap();
    let back: orchflow_agent::trajectory::Trajectory = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
}

#[tokio::test]
async fn a_malformed_decision_is_retried_once_then_recorded_and_the_run_goes_on() {
    let planned = Arc::new(AtomicUsize::new(0));
    let p = planned.clone();
    let llm = Arc::new(ScriptedLlm::from_fn(move |req| {
        Ok(match kind(req).as_str() {
            "Decision" => match p.fetch_add(1, Ordering::SeqCst) {
                0 => "I think we should search".into(),
                1 => r#"{"thought": "x", "action": "fly", "action_input": "?"}"#.into(),
                _ => decision("answer", "7"),
            },
            "VerdictReply" => r#"{"sufficient": false, "reason": "no"}"#.into(),
            other => panic!("unexpected prompt {other}"),
        })
    }));
    let t = Solver::new(llm.clone(), vec![search_tool()], config(4))
        .solve("q")
        .await;
    assert_eq!(t.steps.len(), 2);
    match &t.steps[0].decision {
        PlannerOutput::Malformed { raw, error } => {
            assert!(raw.contains("fly"), "the last reply is kept: {raw}");
            assert!(!error.is_empty());
        }
        other => panic!("expected a malformed decision, got {other:?}"),
    }
    assert!(t.steps[0].tool_call.is_none());
    assert_eq!(t.answer.as_deref(), Some("7"));
    // The next planner prompt tells the model its reply was not valid.
    let prompts = llm.requests();
    let third_planner = prompts
        .iter()
        .filter(|r| kind(r) == "Decision")
        .nth(2)
        .unwrap();
    assert!(
        third_planner
            .messages
            .last()
            .unwrap()
            .content
            .contains("not a valid decision")
    );
}

#[tokio::test]
async fn an_unparsable_verdict_means_continue() {
    let planned = Arc::new(AtomicUsize::new(0));
    let p = planned.clone();
    let llm = Arc::new(ScriptedLlm::from_fn(move |req| {
        Ok(match kind(req).as_str() {
            "Decision" => match p.fetch_add(1, Ordering::SeqCst) {
                0 => decision("think", "hmm"),
                _ => decision("answer", "B"),
            },
            "VerdictReply" => "yes, probably".into(),
            other => panic!("unexpected prompt {other}"),
        })
    }));
    let t = Solver::new(llm, vec![], config(4)).solve("q").await;
    let v = t.steps[0].verdict.as_ref().unwrap();
    assert!(!v.parsed && !v.sufficient);
    assert_eq!(v.raw.as_deref(), Some("yes, probably"));
    assert_eq!(t.answer.as_deref(), Some("B"));
}

#[tokio::test]
async fn the_budget_runs_out_with_the_models_best_answer_or_the_fallback() {
    let llm = Arc::new(ScriptedLlm::from_fn(|req| {
        Ok(match kind(req).as_str() {
            "Decision" => decision("think", "still thinking"),
            "VerdictReply" => r#"{"sufficient": false, "reason": "no"}"#.into(),
            "FinalAnswer" => r#"{"answer": "best guess"}"#.into(),
            other => panic!("unexpected prompt {other}"),
        })
    }));
    let t = Solver::new(llm, vec![], config(3)).solve("q").await;
    assert_eq!(t.steps.len(), 3);
    assert_eq!(t.outcome, Outcome::BudgetExhausted);
    assert_eq!(t.answer.as_deref(), Some("best guess"));

    // The model cannot compose one either: the configured fallback.
    let llm = Arc::new(ScriptedLlm::from_fn(|req| match kind(req).as_str() {
        "Decision" => Ok(decision("think", "…")),
        "VerdictReply" => Ok(r#"{"sufficient": false, "reason": "no"}"#.into()),
        _ => Ok("not json at all".into()),
    }));
    let solver = Solver::new(llm, vec![], config(2));
    let t = solver.solve("q").await;
    assert_eq!(t.outcome, Outcome::BudgetExhausted);
    assert_eq!(
        t.answer.as_deref(),
        Some(solver.config().fallback_answer.as_str())
    );
}

#[tokio::test]
async fn a_verdict_of_sufficient_ends_the_loop_with_a_composed_answer() {
    let llm = Arc::new(ScriptedLlm::from_fn(|req| {
        Ok(match kind(req).as_str() {
            "Decision" => decision("search", "x"),
            "VerdictReply" => r#"{"sufficient": true, "reason": "hit says 42"}"#.into(),
            "FinalAnswer" => r#"{"answer": "42"}"#.into(),
            other => panic!("unexpected prompt {other}"),
        })
    }));
    let t = Solver::new(llm, vec![search_tool()], config(5))
        .solve("q")
        .await;
    assert_eq!(t.steps.len(), 1);
    assert_eq!(t.outcome, Outcome::Verified);
    assert_eq!(t.answer.as_deref(), Some("42"));
}

#[tokio::test]
async fn a_missing_tool_is_a_recorded_tool_error_not_a_failed_run() {
    let planned = Arc::new(AtomicUsize::new(0));
    let p = planned.clone();
    let llm = Arc::new(ScriptedLlm::from_fn(move |req| {
        Ok(match kind(req).as_str() {
            "Decision" => match p.fetch_add(1, Ordering::SeqCst) {
                0 => decision("code", "print(1)"),
                _ => decision("answer", "1"),
            },
            "VerdictReply" => r#"{"sufficient": false, "reason": "no"}"#.into(),
            other => panic!("unexpected prompt {other}"),
        })
    }));
    let t = Solver::new(llm, vec![search_tool()], config(3))
        .solve("q")
        .await;
    let err = t.steps[0]
        .tool_call
        .as_ref()
        .unwrap()
        .result
        .as_ref()
        .unwrap_err();
    assert_eq!(err.kind(), "unknown_tool");
    assert_eq!(t.answer.as_deref(), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn a_model_that_is_down_fails_the_run_with_the_fallback_and_keeps_memory() {
    let planned = Arc::new(AtomicUsize::new(0));
    let p = planned.clone();
    let llm = Arc::new(ScriptedLlm::from_fn(move |req| match kind(req).as_str() {
        "Decision" if p.fetch_add(1, Ordering::SeqCst) == 0 => Ok(decision("search", "x")),
        _ => Err(LlmError::ScriptExhausted { call: 0 }),
    }));
    let solver = Solver::new(llm, vec![search_tool()], config(3));
    let t = solver.solve("q").await;
    assert!(
        matches!(t.outcome, Outcome::Failed { .. }),
        "{:?}",
        t.outcome
    );
    assert_eq!(
        t.answer.as_deref(),
        Some(solver.config().fallback_answer.as_str())
    );
    assert_eq!(t.steps.len(), 1, "the step that ran is kept");
    assert!(t.steps[0].tool_call.is_some());
}

/// A model whose verifier is down until `healthy` is set; its planner searches first and
/// answers once memory holds a result.
fn flaky_verifier(healthy: Arc<AtomicBool>) -> Arc<ScriptedLlm> {
    Arc::new(ScriptedLlm::from_fn(move |req| match kind(req).as_str() {
        "Decision" => {
            let prompt = &req.messages.last().unwrap().content;
            Ok(if prompt.contains("result:") {
                decision("answer", "42")
            } else {
                decision("search", "first")
            })
        }
        "VerdictReply" if healthy.load(Ordering::SeqCst) => {
            Ok(r#"{"sufficient": false, "reason": "answer it"}"#.into())
        }
        _ => Err(LlmError::ScriptExhausted { call: 0 }),
    }))
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_does_not_repeat_a_finished_tool_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonCheckpointStore::new(dir.path());
    let search = search_tool();
    let healthy = Arc::new(AtomicBool::new(false));
    let run_id = RunId::new_v4();

    let solver = Solver::new(
        flaky_verifier(healthy.clone()),
        vec![search.clone()],
        config(5),
    );
    let first = solver.solve_durable(store.clone(), run_id, "q").await;
    assert!(
        matches!(first.outcome, Outcome::Failed { .. }),
        "{:?}",
        first.outcome
    );
    assert_eq!(
        search.calls.load(Ordering::SeqCst),
        1,
        "the search ran, then the verifier failed"
    );

    // A new process would build the solver again; the checkpoint is on disk.
    healthy.store(true, Ordering::SeqCst);
    let solver = Solver::new(
        flaky_verifier(healthy.clone()),
        vec![search.clone()],
        config(5),
    );
    let done = solver.resume(store.clone(), run_id).await.unwrap();
    assert_eq!(done.answer.as_deref(), Some("42"), "{:?}", done.outcome);
    assert_eq!(done.outcome, Outcome::Answered);
    assert_eq!(
        search.calls.load(Ordering::SeqCst),
        1,
        "the finished search was not repeated"
    );
    assert_eq!(done.question, "q");
    assert_eq!(done.steps.len(), 2);
    assert!(done.steps[0].tool_call.as_ref().unwrap().result.is_ok());

    // Resuming a completed run returns its trajectory and calls nothing.
    let again = solver.resume(store, run_id).await.unwrap();
    assert_eq!(again.answer.as_deref(), Some("42"));
    assert_eq!(search.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_durable_run_in_memory_gives_the_same_trajectory_as_a_plain_one() {
    let llm = || {
        let planned = Arc::new(Mutex::new(0));
        Arc::new(ScriptedLlm::from_fn(move |req| {
            Ok(match kind(req).as_str() {
                "Decision" => {
                    let mut n = planned.lock().unwrap();
                    *n += 1;
                    if *n == 1 {
                        decision("search", "x")
                    } else {
                        decision("answer", "42")
                    }
                }
                _ => r#"{"sufficient": false, "reason": "no"}"#.into(),
            })
        }))
    };
    let plain = Solver::new(llm(), vec![search_tool()], config(4))
        .solve("q")
        .await;
    let durable = Solver::new(llm(), vec![search_tool()], config(4))
        .solve_durable(MemoryStore::default(), RunId::new_v4(), "q")
        .await;
    assert_eq!(plain.answer, durable.answer);
    assert_eq!(plain.steps.len(), durable.steps.len());
}

#[tokio::test]
async fn the_offline_solver_computes_with_the_sandbox_and_looks_up_with_local_search() {
    let solver = Solver::offline();
    let t = solver.solve("What is 12 * 12 + 1?").await;
    assert_eq!(t.answer.as_deref(), Some("145"), "{t:#?}");
    let call = t.tool_calls().next().unwrap();
    assert_eq!(call.tool, "code");
    assert!(
        t.steps[0]
            .decision
            .decision()
            .unwrap()
            .thought
            .contains("offline rule-based")
    );

    let t = solver.solve("What is the gcd of 84 and 36?").await;
    assert_eq!(t.answer.as_deref(), Some("12"), "{t:#?}");

    let t = solver.solve("What is a prime number?").await;
    assert_eq!(t.tool_calls().next().unwrap().tool, "search");
    let answer = t.answer.unwrap_or_default().to_lowercase();
    assert!(answer.contains("prime"), "{answer}");
}

/// The solver over HTTP: a local server speaking Ollama's `/api/chat` plays the model; the
/// planner searches, then answers from the result.
#[tokio::test]
async fn the_solver_runs_against_an_ollama_server() {
    use axum::routing::post;
    use axum::{Json, Router};
    use orchflow_agent::OllamaClient;

    async fn chat(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
        assert_eq!(body["think"], false, "the solver asks for no thinking");
        assert_eq!(body["stream"], false);
        let title = body["format"]["title"].as_str().unwrap_or("").to_string();
        let prompt = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        let content = match title.as_str() {
            "Decision" if prompt.contains("result:") => decision("answer", "42"),
            "Decision" => decision("search", "the answer"),
            "VerdictReply" => r#"{"sufficient": false, "reason": "answer it"}"#.to_string(),
            other => panic!("unexpected schema {other}"),
        };
        Json(serde_json::json!({
            "model": body["model"],
            "message": {"role": "assistant", "content": content},
            "done": true,
            "prompt_eval_count": 100,
            "eval_count": 10
        }))
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/api/chat", post(chat)))
            .await
            .unwrap();
    });
    let client = OllamaClient::builder()
        .base_url(format!("http://{addr}"))
        .build()
        .unwrap();
    let search = search_tool();
    let t = Solver::new(Arc::new(client), vec![search.clone()], config(4))
        .solve("What is the answer?")
        .await;
    assert_eq!(t.answer.as_deref(), Some("42"), "{:?}", t.outcome);
    assert_eq!(t.steps.len(), 2);
    assert_eq!(search.calls.load(Ordering::SeqCst), 1);
    assert_eq!(t.usage.prompt_tokens, 300, "planner, verifier, planner");
    assert_eq!(t.usage.completion_tokens, 30);
}

#[tokio::test]
async fn replies_that_say_the_same_thing_in_other_shapes_are_understood() {
    let llm = Arc::new(ScriptedLlm::from_fn(|req| {
        Ok(match kind(req).as_str() {
            // Capitalised action, input as an object.
            "Decision" => r#"{"action": "Search", "action_input": {"query": "x"}}"#.into(),
            // "yes" for true, no reason.
            "VerdictReply" => r#"```json
{"sufficient": "yes"}
```"#
                .into(),
            // A number for the answer.
            "FinalAnswer" => r#"{"answer": 42}"#.into(),
            other => panic!("unexpected prompt {other}"),
        })
    }));
    let t = Solver::new(llm, vec![search_tool()], config(3))
        .solve("q")
        .await;
    assert_eq!(t.steps.len(), 1);
    assert_eq!(t.tool_calls().next().unwrap().input["query"], "x");
    assert_eq!(t.outcome, Outcome::Verified);
    assert_eq!(t.answer.as_deref(), Some("42"));
}

#[tokio::test]
async fn with_no_composed_answer_the_last_tool_output_is_the_fallback() {
    let llm = Arc::new(ScriptedLlm::from_fn(|req| {
        Ok(match kind(req).as_str() {
            "Decision" => decision("search", "x"),
            "VerdictReply" => r#"{"sufficient": false, "reason": "no"}"#.into(),
            _ => "I refuse to use JSON".into(),
        })
    }));
    let t = Solver::new(llm, vec![search_tool()], config(2))
        .solve("q")
        .await;
    assert_eq!(t.outcome, Outcome::BudgetExhausted);
    assert_eq!(t.answer.as_deref(), Some("hit 2 for x: the answer is 42"));
}

/// A planner reply that is a JSON array is not read positionally as a decision: it is
/// malformed (retried once, then recorded), and the run does not answer with its last item.
#[tokio::test]
async fn a_json_array_is_not_a_decision() {
    assert!(
        serde_json::from_str::<orchflow_agent::trajectory::Decision>(r#"["t","answer","72"]"#)
            .is_err()
    );
    let llm = Arc::new(ScriptedLlm::from_fn(|req| {
        Ok(match kind(req).as_str() {
            "Decision" => r#"["t","answer","72"]"#.into(),
            "VerdictReply" => r#"{"sufficient": false, "reason": "no"}"#.into(),
            "FinalAnswer" => r#"{"answer": "unknown"}"#.into(),
            other => panic!("unexpected prompt {other}"),
        })
    }));
    let t = Solver::new(llm.clone(), vec![], config(1)).solve("q").await;
    assert_eq!(t.steps.len(), 1);
    match &t.steps[0].decision {
        PlannerOutput::Malformed { raw, error } => {
            assert_eq!(raw, r#"["t","answer","72"]"#);
            assert!(error.contains("sequence"), "{error}");
        }
        other => panic!("expected a malformed decision, got {other:?}"),
    }
    assert_eq!(t.outcome, Outcome::BudgetExhausted);
    assert_eq!(t.answer.as_deref(), Some("unknown"));
    let planner_calls = llm
        .requests()
        .iter()
        .filter(|r| kind(r) == "Decision")
        .count();
    assert_eq!(planner_calls, 2, "one reply, one corrective retry");
}

/// `max_steps = 0` makes no model call at all and ends with the fallback answer, as a run whose
/// budget ran out with nothing in memory does; durable runs too.
#[tokio::test]
async fn zero_max_steps_makes_no_model_call_and_gives_the_fallback() {
    let llm = Arc::new(ScriptedLlm::new(Vec::<String>::new()));
    let search = search_tool();
    let solver = Solver::new(llm.clone(), vec![search.clone()], config(0));
    let t = solver.solve("What is 6 * 7?").await;
    assert_eq!(llm.calls(), 0, "no model call");
    assert_eq!(t.outcome, Outcome::BudgetExhausted);
    assert_eq!(
        t.answer.as_deref(),
        Some(solver.config().fallback_answer.as_str())
    );
    assert!(t.steps.is_empty());
    assert_eq!(t.usage.total(), 0);

    let durable = solver
        .solve_durable(MemoryStore::default(), RunId::new_v4(), "What is 6 * 7?")
        .await;
    assert_eq!(llm.calls(), 0, "no model call in a durable run either");
    assert_eq!(durable.outcome, Outcome::BudgetExhausted);
    assert_eq!(durable.answer, t.answer);
    assert!(durable.steps.is_empty());
    assert_eq!(search.calls.load(Ordering::SeqCst), 0);
}
