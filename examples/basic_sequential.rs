//! Three steps in sequence, with value capture on: each trace records its step's input and
//! output as JSON (for types that are `Serialize`).
//!
//! ```text
//! parse_order => price_order => format_receipt
//! ```
//!
//! Run it with `cargo run --example basic_sequential`.

#[path = "support/replay_check.rs"]
mod replay_check;
use replay_check::replay_check;

use orchflow::{flow, step};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    item: String,
    quantity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Quote {
    order: Order,
    unit_cents: u64,
    total_cents: u64,
}

#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error("expected `<quantity> x <item>`, got {0:?}")]
    BadFormat(String),
    #[error("unknown item {0:?}")]
    UnknownItem(String),
}

/// Step 1: text in, a typed `Order` out. Returning `Result` makes the step fallible.
#[step]
async fn parse_order(line: String) -> Result<Order, OrderError> {
    let Some((qty, item)) = line.split_once(" x ") else {
        return Err(OrderError::BadFormat(line));
    };
    let quantity = qty
        .trim()
        .parse()
        .map_err(|_| OrderError::BadFormat(line.clone()))?;
    Ok(Order {
        item: item.trim().to_string(),
        quantity,
    })
}

/// Step 2: takes the previous output by value.
#[step]
async fn price_order(order: Order) -> Result<Quote, OrderError> {
    let unit_cents = match order.item.as_str() {
        "widget" => 250,
        "gadget" => 1_999,
        _ => return Err(OrderError::UnknownItem(order.item)),
    };
    let total_cents = unit_cents * u64::from(order.quantity);
    Ok(Quote {
        order,
        unit_cents,
        total_cents,
    })
}

/// Step 3: takes the previous output by reference, and cannot fail.
#[step]
async fn format_receipt(quote: &Quote) -> String {
    format!(
        "{} x {} at ${:.2} = ${:.2}",
        quote.order.quantity,
        quote.order.item,
        quote.unit_cents as f64 / 100.0,
        quote.total_cents as f64 / 100.0
    )
}

fn show_json(value: &Option<serde_json::Value>) -> String {
    match value {
        Some(v) => v.to_string(),
        None => "(not captured)".to_string(),
    }
}

#[tokio::main]
async fn main() {
    // `capture_values(true)` is off by default: it costs one serialisation per attempt.
    let receipt = flow! { #[flow(name = "receipt")] parse_order => price_order => format_receipt }
        .capture_values(true);
    println!("flow: {}", receipt.info().shape);

    for line in ["3 x widget", "2 x sprocket", "three widgets"] {
        println!();
        println!("input: {line:?}");
        // `try_run` gives `Ok(result)` or `Err(FlowFailed)`; the error still holds the traces.
        let result = match receipt.try_run(line.to_string()).await {
            Ok(result) => {
                println!(
                    "  output: {:?}",
                    result.output.as_deref().unwrap_or_default()
                );
                result
            }
            Err(failed) => {
                println!("  failed: {failed}");
                *failed.result
            }
        };
        for (i, t) in result.traces.iter().enumerate() {
            println!(
                "  trace {}: {} ({:?}, {:?})",
                i + 1,
                t.step,
                t.outcome,
                t.duration
            );
            println!("    input:  {}", show_json(&t.input));
            match &t.error {
                Some(err) => println!("    error:  {err}"),
                None => println!("    output: {}", show_json(&t.output)),
            }
        }
    }

    println!();
    replay_check!(receipt, "3 x widget".to_string());
}
