//! Branches and loops inside `flow!`:
//!
//! 1. `if pred { … } else { … }`: both arms produce the same type.
//! 2. `if pred { … }` without `else`: when the predicate is false the value passes through.
//! 3. `if … else if … else …`: a chain, with a closure as the first predicate.
//! 4. `loop(max = N) { … } until pred`: repeat the body until the predicate holds, at most N
//!    times (the body's output type equals its input type).
//!
//! Each flow runs on a few inputs; the path taken is read back from the traces.
//!
//! Run it with `cargo run --example conditional_flow`.

#[path = "support/replay_check.rs"]
mod replay_check;
use replay_check::replay_check;

use orchflow::{FlowResult, flow, step};

// ---------------------------------------------------------------- text steps (1 and 2)

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Text {
    body: String,
    words: usize,
}

#[step]
async fn measure(body: String) -> Text {
    let words = body.split_whitespace().count();
    Text { body, words }
}

fn is_long(t: &Text) -> bool {
    t.words > 8
}

#[step]
async fn summarize(t: Text) -> Text {
    let first: Vec<&str> = t.body.split_whitespace().take(5).collect();
    Text {
        words: first.len(),
        body: format!("{} ...", first.join(" ")),
    }
}

#[step]
async fn keep(t: Text) -> Text {
    t
}

fn has_shouting(t: &Text) -> bool {
    t.body.chars().any(|c| c.is_ascii_uppercase())
}

#[step]
async fn calm_down(t: Text) -> Text {
    Text {
        body: t.body.to_lowercase(),
        ..t
    }
}

// ---------------------------------------------------------------- order steps (3)

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Order {
    total: u32,
    member: bool,
}

fn is_member(o: &Order) -> bool {
    o.member
}

#[step]
async fn manual_review(o: Order) -> String {
    format!("order of {} held for manual review", o.total)
}

#[step]
async fn member_discount(o: Order) -> String {
    format!("member pays {} (10% off {})", o.total * 9 / 10, o.total)
}

#[step]
async fn standard_price(o: Order) -> String {
    format!("pays {}", o.total)
}

// ---------------------------------------------------------------- draft steps (4)

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Draft {
    version: u32,
    score: u32,
}

/// One round of editing: the loop body. Input and output are both `Draft`.
#[step]
async fn refine(d: Draft) -> Draft {
    Draft {
        version: d.version + 1,
        score: d.score + 15,
    }
}

fn good_enough(d: &Draft) -> bool {
    d.score >= 80
}

/// The steps that ran, in order, read from the traces.
fn path<O, S>(r: &FlowResult<O, S>) -> String {
    r.traces
        .iter()
        .map(|t| t.step.as_ref())
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[tokio::main]
async fn main() {
    // 1. if / else
    let shorten = flow! { measure => if is_long { summarize } else { keep } };
    println!("1. {}", shorten.info().shape);
    for input in [
        "ship it",
        "the release notes cover steps, groups, retries, events and traces",
    ] {
        let r = shorten.run(input.to_string()).await;
        match r.output {
            Some(ref t) => println!(
                "   {input:?}\n     path: {}\n     -> {:?}",
                path(&r),
                t.body
            ),
            None => println!("   {input:?} failed: {:?}", r.error),
        }
    }

    // 2. if without else: a false predicate passes the value through unchanged.
    let tidy = flow! { measure => if has_shouting { calm_down } };
    println!();
    println!("2. {}", tidy.info().shape);
    for input in ["PLEASE read this", "all quiet here"] {
        let r = tidy.run(input.to_string()).await;
        match r.output {
            Some(ref t) => println!(
                "   {input:?}\n     path: {}\n     -> {:?}",
                path(&r),
                t.body
            ),
            None => println!("   {input:?} failed: {:?}", r.error),
        }
    }

    // 3. else-if chain; the first predicate is a closure with an annotated parameter type.
    let pricing = flow! {
        if |o: &Order| o.total > 1000 { manual_review }
        else if is_member { member_discount }
        else { standard_price }
    };
    println!();
    println!("3. {}", pricing.info().shape);
    let orders = [
        Order {
            total: 5000,
            member: true,
        },
        Order {
            total: 200,
            member: true,
        },
        Order {
            total: 200,
            member: false,
        },
    ];
    for order in orders {
        let label = format!("{order:?}");
        let r = pricing.run(order).await;
        match r.output {
            Some(ref out) => println!("   {label}\n     path: {}\n     -> {out}", path(&r)),
            None => println!("   {label} failed: {:?}", r.error),
        }
    }

    // 4. bounded loop with `until`: stops when the predicate holds, or after `max` rounds.
    let polish = flow! { loop(max = 5) { refine } until good_enough };
    println!();
    println!("4. {}", polish.info().shape);
    for start in [
        Draft {
            version: 1,
            score: 40,
        },
        Draft {
            version: 1,
            score: 0,
        },
    ] {
        let label = format!("{start:?}");
        let r = polish.run(start).await;
        match r.output {
            Some(ref d) => {
                let rounds = r.traces_of("refine").count();
                let why = if good_enough(d) {
                    "until held"
                } else {
                    "hit max = 5"
                };
                println!("   {label}\n     {rounds} round(s), {why}\n     -> {d:?}");
            }
            None => println!("   {label} failed: {:?}", r.error),
        }
    }

    println!();
    replay_check!(shorten, "a short note".to_string());
    replay_check!(tidy, "STOP SHOUTING".to_string());
    replay_check!(
        pricing,
        Order {
            total: 200,
            member: true
        }
    );
    replay_check!(
        polish,
        Draft {
            version: 1,
            score: 40
        }
    );
}
