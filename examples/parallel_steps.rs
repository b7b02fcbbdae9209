//! A fan-out: three branches run concurrently, and their outputs come back as one tuple in
//! declaration order.
//!
//! ```text
//! [load_profile, load_orders, load_recommendations] => summarize
//! ```
//!
//! The first run shows that the group takes about as long as its slowest branch, not the sum,
//! and that every branch's trace carries the same `parallel_group_id`. The second run makes one
//! branch fail: its unfinished siblings are cancelled (and traced as `Cancelled`), so the run
//! ends as soon as the failure is known.
//!
//! Run it with `cargo run --example parallel_steps`.

#[path = "support/replay_check.rs"]
mod replay_check;
use replay_check::replay_check;

use orchflow::{AttemptOutcome, FlowResult, flow, step};
use std::time::{Duration, Instant};

const PROFILE_MS: u64 = 4;
const ORDERS_MS: u64 = 8;
const RECOMMENDATIONS_MS: u64 = 12;

#[derive(Debug, thiserror::Error)]
#[error("order service has no record of user {0}")]
struct NoSuchUser(u32);

#[step]
async fn load_profile(user: &u32) -> String {
    tokio::time::sleep(Duration::from_millis(PROFILE_MS)).await;
    format!("user-{user}")
}

/// Fails fast (after 1ms) for user 0; otherwise answers after `ORDERS_MS`.
#[step]
async fn load_orders(user: &u32) -> Result<Vec<String>, NoSuchUser> {
    if *user == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        return Err(NoSuchUser(*user));
    }
    tokio::time::sleep(Duration::from_millis(ORDERS_MS)).await;
    Ok(vec!["order-17".to_string(), "order-42".to_string()])
}

#[step]
async fn load_recommendations(_user: &u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(RECOMMENDATIONS_MS)).await;
    5
}

/// Receives the group's outputs as a tuple, in the order the branches are written.
#[step]
async fn summarize(parts: (String, Vec<String>, u32)) -> String {
    let (profile, orders, recommendations) = parts;
    format!(
        "{profile}: {} orders, {recommendations} recommendations",
        orders.len()
    )
}

fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

fn print_traces<O, S>(result: &FlowResult<O, S>) {
    for t in &result.traces {
        let group = t
            .parallel_group_id
            .map(|g| g.to_string())
            .unwrap_or_else(|| "-".into());
        let outcome = format!("{:?}", t.outcome);
        println!(
            "  {:<22} group {:<2} {:<10} {:>7}",
            t.step,
            group,
            outcome,
            millis(t.duration)
        );
    }
}

#[tokio::main]
async fn main() {
    let dashboard = flow! {
        #[flow(name = "dashboard")]
        [load_profile, load_orders, load_recommendations] => summarize
    };
    println!("flow: {}", dashboard.info().shape);

    // Run 1: every branch succeeds.
    println!();
    println!("Run 1: user 7, every branch succeeds");
    let t0 = Instant::now();
    let ok = dashboard.run(7).await;
    let elapsed = t0.elapsed();
    match &ok.output {
        Some(out) => println!("  output: {out}"),
        None => println!("  failed: {:?}", ok.error),
    }
    print_traces(&ok);
    let sum = PROFILE_MS + ORDERS_MS + RECOMMENDATIONS_MS;
    let slowest = PROFILE_MS.max(ORDERS_MS).max(RECOMMENDATIONS_MS);
    println!(
        "  wall time {}; branch sleeps sum to {sum}ms, the slowest is {slowest}ms",
        millis(elapsed)
    );
    let groups: Vec<u32> = ok
        .traces
        .iter()
        .filter_map(|t| t.parallel_group_id)
        .collect();
    let shared = groups.windows(2).all(|w| w[0] == w[1]);
    println!(
        "  {} branch traces share one parallel_group_id: {shared}",
        groups.len()
    );

    // Run 2: `load_orders` fails after 1ms; the two slower siblings are cancelled.
    println!();
    println!("Run 2: user 0, load_orders fails");
    let t0 = Instant::now();
    let failed = dashboard.run(0).await;
    let elapsed = t0.elapsed();
    println!("  success: {}", failed.success);
    println!(
        "  failed step: {}",
        failed.failed_step.as_deref().unwrap_or("-")
    );
    if let Some(err) = &failed.error {
        println!("  error: {err}");
    }
    print_traces(&failed);
    let cancelled: Vec<&str> = failed
        .traces
        .iter()
        .filter(|t| t.outcome == AttemptOutcome::Cancelled)
        .map(|t| t.step.as_ref())
        .collect();
    println!("  cancelled: {}", cancelled.join(", "));
    println!(
        "  wall time {} (no wait for the {RECOMMENDATIONS_MS}ms branch; summarize never ran)",
        millis(elapsed)
    );

    println!();
    replay_check!(dashboard, 7);
}
