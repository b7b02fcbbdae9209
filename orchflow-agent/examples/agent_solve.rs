//! The Planner → Executor → Verifier agent on a few questions, printing each trajectory.
//!
//! ```text
//! cargo run -p orchflow-agent --example agent_solve                          # offline: no network, no model
//! cargo run -p orchflow-agent --example agent_solve -- --ollama qwen3:8b     # Ollama (OLLAMA_URL, default localhost)
//! cargo run -p orchflow-agent --example agent_solve -- --openai gpt-4o-mini  # OPENAI_API_KEY, OPENAI_BASE_URL
//! cargo run -p orchflow-agent --example agent_solve -- "What is 7 * 191?"    # your own question
//! ```
//!
//! Offline, the planner is a deterministic rule-based stand-in (labelled "[offline rule-based
//! planner]" in every thought); the executor, the Python sandbox and the BM25 local search are
//! the real ones.

use orchflow_agent::LlmClient;
use orchflow_agent::llm::ollama::OllamaClient;
use orchflow_agent::llm::openai::OpenAiClient;
use orchflow_agent::offline::offline_tools;
use orchflow_agent::solver::{Solver, SolverConfig};
use orchflow_agent::trajectory::{PlannerOutput, Trajectory};
use std::sync::Arc;

const QUESTIONS: [&str; 3] = [
    "What is 12 * 12 + 1?",
    "What is the remainder when 2024 is divided by 7?",
    "What is the speed of light in vacuum?",
];

fn print(t: &Trajectory) {
    println!("Q: {}", t.question);
    for s in &t.steps {
        match &s.decision {
            PlannerOutput::Decision(d) => {
                println!(
                    "  step {}: {} — {}",
                    s.index + 1,
                    d.action.as_str(),
                    d.thought
                );
                let input = d.action_input.trim().replace('\n', "\n      ");
                println!("      input: {input}");
            }
            PlannerOutput::Malformed { error, .. } => {
                println!("  step {}: malformed decision ({error})", s.index + 1);
            }
        }
        if let Some(call) = &s.tool_call {
            match &call.result {
                Ok(o) => {
                    let first = o.content.lines().next().unwrap_or("");
                    println!("      {} → {first} ({} ms)", call.tool, call.duration_ms);
                }
                Err(e) => println!("      {} failed: {e}", call.tool),
            }
        }
        if let Some(v) = &s.verdict {
            println!(
                "      verifier: sufficient = {} ({})",
                v.sufficient, v.reason
            );
        }
    }
    println!(
        "A: {}   [{:?}, {} steps, {} tokens, {} ms]\n",
        t.answer.as_deref().unwrap_or("-"),
        t.outcome,
        t.steps.len(),
        t.usage.total(),
        t.duration_ms
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut questions = Vec::new();
    let mut solver = None;
    let mut i = 0;
    while i < args.len() {
        let model = args.get(i + 1).cloned();
        let client: Option<Result<Arc<dyn LlmClient>, String>> = match args[i].as_str() {
            "--ollama" => {
                let mut b = OllamaClient::builder();
                if let Ok(url) = std::env::var("OLLAMA_URL") {
                    b = b.base_url(url);
                }
                Some(
                    b.build()
                        .map(|c| Arc::new(c) as Arc<dyn LlmClient>)
                        .map_err(|e| e.to_string()),
                )
            }
            "--openai" => {
                let mut b = OpenAiClient::builder();
                if let Ok(url) = std::env::var("OPENAI_BASE_URL") {
                    b = b.base_url(url);
                }
                Some(
                    b.build()
                        .map(|c| Arc::new(c) as Arc<dyn LlmClient>)
                        .map_err(|e| e.to_string()),
                )
            }
            q => {
                questions.push(q.to_string());
                None
            }
        };
        if let Some(client) = client {
            let (Some(model), Ok(client)) = (model, client.clone()) else {
                eprintln!(
                    "{} needs a model name and a reachable client: {:?}",
                    args[i],
                    client.err()
                );
                std::process::exit(2);
            };
            let mut config = SolverConfig::default();
            config.model.model = model;
            solver = Some(Solver::new(client, offline_tools(), config));
            i += 1;
        }
        i += 1;
    }
    let solver = solver.unwrap_or_else(|| {
        println!("(offline: a deterministic rule-based planner stands in for the model)\n");
        Solver::offline()
    });
    if questions.is_empty() {
        questions = QUESTIONS.iter().map(|q| q.to_string()).collect();
    }
    for q in &questions {
        let t = solver.solve(q).await;
        print(&t);
    }
}
