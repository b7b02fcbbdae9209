//! Retry policies, timeouts and which errors are worth retrying.
//!
//! 1. Exponential backoff: `retry = 3, delay = "20ms", backoff = 2.0, max_delay = "50ms"`
//!    waits 20ms, 40ms, then 50ms (capped) between four attempts.
//! 2. Timeouts: `timeout = "30ms"` ends an attempt that runs too long; a timed-out attempt is a
//!    failed attempt, and is retried like any other.
//! 3. `retry_if`: a predicate on the step's typed error; a fatal error is not retried.
//! 4. A flow-level default, `#[flow(retry = 2)]`, for steps that set no policy of their own.
//!
//! `retry = N` counts retries after the first attempt, so a step makes at most N + 1 attempts.
//!
//! Run it with `cargo run --example retries`.

#[path = "support/replay_check.rs"]
mod replay_check;
use replay_check::replay_check;

use orchflow::testing::{Flaky, FlakyError};
use orchflow::{FlowResult, RetryPolicy, StepContext, flow, step};
use std::time::Duration;

// ---------------------------------------------------------------- 1. backoff

/// Fails its first three calls, then succeeds.
static UPSTREAM: Flaky = Flaky::failing(3);

#[step(retry = 3, delay = "20ms", backoff = 2.0, max_delay = "50ms")]
async fn call_upstream(request: u32) -> Result<u32, FlakyError> {
    UPSTREAM.attempt()?;
    Ok(request * 10)
}

// ---------------------------------------------------------------- 2. timeout

/// The first attempt hangs for a second and is cut off at 30ms; the retry answers quickly.
#[step(timeout = "30ms", retry = 1)]
async fn slow_lookup(key: u32, ctx: &StepContext) -> u32 {
    let work = if ctx.attempt() == 1 { 1_000 } else { 2 };
    tokio::time::sleep(Duration::from_millis(work)).await;
    key + 1
}

// ---------------------------------------------------------------- 3. retry_if

#[derive(Debug, thiserror::Error)]
enum PaymentError {
    #[error("gateway timed out")]
    Transient,
    #[error("card declined")]
    Fatal,
}

fn is_transient(e: &PaymentError) -> bool {
    matches!(e, PaymentError::Transient)
}

/// Card "good" hits a transient error twice, then goes through; card "declined" is fatal.
#[step(retry = 5, delay = "2ms", retry_if = is_transient)]
async fn charge(card: String, ctx: &StepContext) -> Result<String, PaymentError> {
    match card.as_str() {
        "declined" => Err(PaymentError::Fatal),
        _ if ctx.attempt() <= 2 => Err(PaymentError::Transient),
        _ => Ok(format!("charged card {card:?}")),
    }
}

// ---------------------------------------------------------------- 4. flow-level default

/// No policy of its own: the flow's default applies. Fails twice, then succeeds.
#[step]
async fn sync_inventory(n: u32, ctx: &StepContext) -> Result<u32, FlakyError> {
    if ctx.attempt() <= 2 {
        return Err(FlakyError {
            call: ctx.attempt(),
            failures: 2,
        });
    }
    Ok(n)
}

/// Fails on its first attempt; its own `retry = 0` wins over the flow's default, so that first
/// attempt is its only one.
#[step(retry = 0)]
async fn notify(n: u32, ctx: &StepContext) -> Result<u32, FlakyError> {
    if ctx.attempt() == 1 {
        return Err(FlakyError {
            call: 1,
            failures: 1,
        });
    }
    Ok(n)
}

// ---------------------------------------------------------------- printing

fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

/// One line per attempt: when it started (relative to the run), how long it took, how it ended.
fn print_attempts<O, S>(r: &FlowResult<O, S>, indent: &str) {
    for t in &r.traces {
        let start = t
            .started_at
            .duration_since(r.started_at)
            .unwrap_or_default();
        let error = t
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        let outcome = format!("{:?}", t.outcome);
        println!(
            "{indent}{} #{} started at {:>7}, took {:>6}, {outcome}{error}",
            t.step,
            t.attempt,
            millis(start),
            millis(t.duration)
        );
    }
    match &r.error {
        None => println!("{indent}-> success in {}", millis(r.duration)),
        Some(e) => println!("{indent}-> failed in {}: {e}", millis(r.duration)),
    }
}

/// The waits between consecutive attempts of one step.
fn gaps<O, S>(r: &FlowResult<O, S>, step: &str) -> Vec<String> {
    let traces: Vec<_> = r.traces_of(step).collect();
    traces
        .windows(2)
        .map(|w| {
            w[1].started_at
                .duration_since(w[0].ended_at)
                .unwrap_or_default()
        })
        .map(millis)
        .collect()
}

#[tokio::main]
async fn main() {
    println!("1. backoff: retry = 3, delay = 20ms, backoff = 2.0, max_delay = 50ms");
    let r = flow! { call_upstream }.run(4).await;
    print_attempts(&r, "   ");
    let waits = gaps(&r, "call_upstream").join(", ");
    println!("   waits between attempts: {waits} (policy: 20ms, 40ms, 50ms)");

    println!();
    println!("2. timeout = 30ms, retry = 1");
    let r = flow! { slow_lookup }.run(7).await;
    print_attempts(&r, "   ");

    println!();
    println!("3. retry = 5, retry_if = is_transient");
    let payment = flow! { charge };
    for card in ["good", "declined"] {
        println!("   card {card:?}:");
        let r = payment.run(card.to_string()).await;
        print_attempts(&r, "     ");
    }

    println!();
    println!("4. #[flow(retry = 2, delay = 5ms)]: a default for steps without a policy");
    let inventory = flow! {
        #[flow(name = "inventory", retry = 2, delay = "5ms")]
        sync_inventory => notify
    };
    let r = inventory.run(3).await;
    print_attempts(&r, "   ");
    println!(
        "   sync_inventory took the flow default ({} attempts); notify kept its own retry = 0 ({} attempt)",
        r.traces_of("sync_inventory").count(),
        r.traces_of("notify").count()
    );

    // The same default can be set at runtime on any flow value.
    let policy = RetryPolicy::retries(2).with_delay(Duration::from_millis(5));
    let r = flow! { sync_inventory }.default_retry(policy).run(3).await;
    println!(
        "   .default_retry(RetryPolicy::retries(2)) at runtime: {} attempts, success: {}",
        r.traces.len(),
        r.success
    );

    println!();
    replay_check!(payment, "good".to_string());
    replay_check!(inventory, 3);
}
