//! The launch-brief pipeline from the original Python seed, in orchflow:
//!
//! ```text
//! plan => [research_docs, research_market] => synthesize => if short { publish } else { revise }
//! ```
//!
//! It shows, in one small program:
//! - typed shared state (`Brief`) reached from every step through `&StepContext<Brief>`,
//! - a step with `retry = 2` whose first attempt fails and is retried,
//! - a parallel group whose output is a tuple in declaration order,
//! - a sync step (run on tokio's blocking pool) and a branch on a plain predicate,
//! - live events from `stream`, then the traces and the state from the final result.
//!
//! Run it with `cargo run --example launch_brief`.

#[path = "support/replay_check.rs"]
mod replay_check;
use replay_check::replay_check;

use futures::StreamExt;
use orchflow::{Event, StepContext, flow, step};
use std::sync::Mutex;
use std::time::Duration;

/// The run's shared state: a log that every step appends to, and the word budget of the brief.
#[derive(Debug)]
struct Brief {
    log: Mutex<Vec<String>>,
    word_budget: usize,
}

impl Brief {
    fn with_budget(word_budget: usize) -> Self {
        Brief {
            log: Mutex::new(Vec::new()),
            word_budget,
        }
    }

    fn note(&self, line: String) {
        // A poisoned lock only means another step panicked; the log is still usable.
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }
}

impl Default for Brief {
    fn default() -> Self {
        Brief::with_budget(60)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Plan {
    topic: String,
    questions: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Draft {
    text: String,
    words: usize,
    budget: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Published {
    text: String,
    words: usize,
    revised: bool,
}

#[derive(Debug, thiserror::Error)]
enum BriefError {
    #[error("the planner is busy (attempt {0})")]
    PlannerBusy(u32),
    #[error("the topic is empty")]
    EmptyTopic,
}

/// Plans the brief. The first attempt of every run fails on purpose, to show `retry = 2`
/// (two retries after the first attempt, so at most three attempts).
#[step(retry = 2)]
async fn plan(topic: String, ctx: &StepContext<Brief>) -> Result<Plan, BriefError> {
    ctx.state().note(format!("plan: attempt {}", ctx.attempt()));
    if topic.trim().is_empty() {
        return Err(BriefError::EmptyTopic);
    }
    if ctx.attempt() == 1 {
        return Err(BriefError::PlannerBusy(ctx.attempt()));
    }
    Ok(Plan {
        topic,
        questions: ["what is new", "who is it for", "how to upgrade"]
            .map(String::from)
            .to_vec(),
    })
}

#[step]
async fn research_docs(plan: &Plan, ctx: &StepContext<Brief>) -> String {
    tokio::time::sleep(Duration::from_millis(3)).await;
    ctx.state().note(format!(
        "research_docs: read the changelog for {}",
        plan.topic
    ));
    format!(
        "{} adds typed steps, parallel groups and retries; the docs answer {}.",
        plan.topic,
        plan.questions.join(", ")
    )
}

#[step]
async fn research_market(plan: &Plan, ctx: &StepContext<Brief>) -> String {
    tokio::time::sleep(Duration::from_millis(5)).await;
    ctx.state().note(format!(
        "research_market: compared {} with two rivals",
        plan.topic
    ));
    "Teams want workflows that fail at compile time, not in production.".to_string()
}

/// A sync step: it runs on tokio's blocking pool. It receives the parallel group's tuple.
#[step]
fn synthesize(findings: (String, String), ctx: &StepContext<Brief>) -> Draft {
    let (docs, market) = findings;
    let text = format!("{docs} {market}");
    let words = text.split_whitespace().count();
    ctx.state().note(format!("synthesize: {words} words"));
    Draft {
        text,
        words,
        budget: ctx.state().word_budget,
    }
}

/// The branch predicate: a plain function of the previous output.
fn short(draft: &Draft) -> bool {
    draft.words <= draft.budget
}

#[step]
async fn publish(draft: Draft) -> Published {
    Published {
        text: draft.text,
        words: draft.words,
        revised: false,
    }
}

#[step]
async fn revise(draft: Draft, ctx: &StepContext<Brief>) -> Published {
    let text: Vec<&str> = draft.text.split_whitespace().take(draft.budget).collect();
    ctx.state().note(format!(
        "revise: cut {} words to {}",
        draft.words,
        text.len()
    ));
    Published {
        text: format!("{} ...", text.join(" ")),
        words: text.len(),
        revised: true,
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let topic = "Orchflow v0.5 release".to_string();
    let launch = flow! {
        #[flow(name = "launch_brief")]
        plan => [research_docs, research_market] => synthesize => if short { publish } else { revise }
    };
    println!("flow {:?}: {}", launch.name(), launch.info().shape);
    println!("topic: {topic:?}");

    // 1. Stream the run: events arrive while the flow runs; the last one carries the result.
    println!();
    println!("Events, as they arrive:");
    let mut events = launch.stream(topic.clone());
    let mut result = None;
    while let Some(event) = events.next().await {
        match event.step_event() {
            Some(e) => {
                let group = e
                    .parallel_group_id()
                    .map(|g| format!(" group {g}"))
                    .unwrap_or_default();
                let extra = match (e.error(), e.delay()) {
                    (Some(err), _) => format!(" error: {err}"),
                    (None, Some(delay)) if delay.is_zero() => " (no delay)".to_string(),
                    (None, Some(delay)) => format!(" after {}", millis(delay)),
                    _ => String::new(),
                };
                println!(
                    "  {:>7}  {:<16} {} attempt {}{group}{extra}",
                    millis(e.elapsed()),
                    event.kind(),
                    e.step(),
                    e.attempt()
                );
            }
            None => match &event {
                Event::FlowStarted { run_id, flow, .. } => {
                    println!("  {:>7}  {:<16} {flow} run {run_id}", "", event.kind())
                }
                _ => println!("  {:>7}  {}", "", event.kind()),
            },
        }
        if let Event::FlowCompleted(r) | Event::FlowFailed(r) = event {
            result = Some(*r);
        }
    }
    let Some(result) = result else {
        println!("the stream ended without a result");
        return;
    };

    // 2. The output (or the error).
    println!();
    match (&result.output, &result.error) {
        (Some(out), _) => {
            println!("Output ({} words, revised: {}):", out.words, out.revised);
            println!("  {}", out.text);
        }
        (None, Some(err)) => println!("Failed at {:?}: {err}", result.failed_step),
        (None, None) => println!("Failed without an error"),
    }
    println!("run {} took {}", result.run_id, millis(result.duration));

    // 3. One trace per attempt, failed attempts included.
    println!();
    println!("Traces:");
    println!(
        "  {:<16} {:>7}  {:<5}  {:<9}  {:>7}",
        "step", "attempt", "group", "outcome", "took"
    );
    for t in &result.traces {
        let group = t
            .parallel_group_id
            .map(|g| g.to_string())
            .unwrap_or_else(|| "-".into());
        let outcome = format!("{:?}", t.outcome);
        println!(
            "  {:<16} {:>7}  {:<5}  {:<9}  {:>7}",
            t.step,
            t.attempt,
            group,
            outcome,
            millis(t.duration)
        );
        if let Some(err) = &t.error {
            println!("  {:<16} error: {err}", "");
        }
    }

    // 4. The shared state after the run.
    println!();
    println!("Shared log (word budget {}):", result.state.word_budget);
    for line in result
        .state
        .log
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        println!("  {line}");
    }

    // 5. The same flow with a tighter budget takes the other arm of the `if`.
    println!();
    let tight = launch.run_with_state(topic, Brief::with_budget(12)).await;
    let arm = if tight.traces_of("revise").next().is_some() {
        "revise"
    } else {
        "publish"
    };
    println!("Second run with a 12-word budget (run_with_state) took the `{arm}` arm:");
    match tight.output {
        Some(out) => println!(
            "  {} ({} words, revised: {})",
            out.text, out.words, out.revised
        ),
        None => println!("  failed: {:?}", tight.error),
    }

    println!();
    replay_check!(launch, "Orchflow v0.5 release".to_string());
}
