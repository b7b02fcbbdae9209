//! Live lifecycle events: `flow.stream(input)` is a `futures::Stream` of `Event`s that arrive
//! while the run makes progress. The last event is `FlowCompleted` (or `FlowFailed`) and carries
//! the whole `FlowResult`.
//!
//! ```text
//! fetch => [thumbnail, transcript] => publish
//! ```
//!
//! `fetch` fails on its first attempt and is retried after 5ms, so the stream shows
//! `step_failed` and `retry_scheduled` before the second `step_started`.
//!
//! Run it with `cargo run --example live_events`.

#[path = "support/replay_check.rs"]
mod replay_check;
use replay_check::replay_check;

use futures::StreamExt;
use orchflow::{Event, StepContext, flow, step};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[error("connection reset while fetching {0}")]
struct FetchError(String);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Video {
    url: String,
    seconds: usize,
}

/// Fails on the first attempt of each run, then succeeds.
#[step(retry = 1, delay = "5ms")]
async fn fetch(url: String, ctx: &StepContext) -> Result<Video, FetchError> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if ctx.attempt() == 1 {
        return Err(FetchError(url));
    }
    Ok(Video { url, seconds: 95 })
}

/// Both branches borrow the same `Video`.
#[step]
async fn thumbnail(video: &Video) -> String {
    tokio::time::sleep(Duration::from_millis(3)).await;
    format!("thumbnail of {}", video.url)
}

#[step]
async fn transcript(video: &Video) -> usize {
    tokio::time::sleep(Duration::from_millis(6)).await;
    video.seconds * 2
}

#[step]
async fn publish(parts: (String, usize)) -> String {
    format!(
        "published with {} and a {}-word transcript",
        parts.0, parts.1
    )
}

fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let pipeline = flow! { #[flow(name = "video")] fetch => [thumbnail, transcript] => publish };
    println!("flow: {}", pipeline.info().shape);
    println!();

    let started = Instant::now();
    let mut events = pipeline.stream("https://example.com/v/42".to_string());
    let mut last = None;

    // Each `next().await` drives the run until the next event is ready.
    while let Some(event) = events.next().await {
        let at = millis(started.elapsed());
        let kind = event.kind();
        match &event {
            Event::FlowStarted { run_id, flow, .. } => {
                println!("[{at:>7}] {kind:<16} {flow} (run {run_id})")
            }
            Event::StepStarted(e) | Event::StepCompleted(e) => {
                let group = e
                    .parallel_group_id()
                    .map(|g| format!(", group {g}"))
                    .unwrap_or_default();
                let took = e
                    .duration()
                    .map(|d| format!(" in {}", millis(d)))
                    .unwrap_or_default();
                println!(
                    "[{at:>7}] {kind:<16} {} #{}{group}{took}",
                    e.step(),
                    e.attempt()
                );
            }
            Event::StepFailed(e) => {
                let error = e.error().unwrap_or("unknown error");
                let next = if e.will_retry() {
                    "will retry"
                } else {
                    "no retry left"
                };
                let took = e
                    .duration()
                    .map(|d| format!(" after {}", millis(d)))
                    .unwrap_or_default();
                println!(
                    "[{at:>7}] {kind:<16} {} #{}{took}: {error} ({next})",
                    e.step(),
                    e.attempt()
                );
            }
            Event::RetryScheduled(e) => {
                let delay = e.delay().map(millis).unwrap_or_else(|| "0ms".into());
                println!(
                    "[{at:>7}] {kind:<16} {} #{} in {delay}",
                    e.step(),
                    e.attempt()
                );
            }
            Event::FlowCompleted(_) | Event::FlowFailed(_) => println!("[{at:>7}] {kind}"),
            // `Event` is non-exhaustive (checkpoint events, and more to come).
            other => println!("[{at:>7}] {}", other.kind()),
        }
        if let Event::FlowCompleted(result) | Event::FlowFailed(result) = event {
            last = Some(*result);
        }
    }

    println!();
    let Some(result) = last else {
        println!("the stream ended without a final event");
        return;
    };
    match (&result.output, &result.error) {
        (Some(out), _) => println!("result: {out}"),
        (None, Some(err)) => println!("failed: {err}"),
        (None, None) => println!("failed"),
    }
    println!(
        "{} attempts traced, run took {}",
        result.traces.len(),
        millis(result.duration)
    );

    println!();
    replay_check!(pipeline, "https://example.com/v/42".to_string());
}
