//! Dynamic fan-out: fetch a list of pages, at most four at a time, and summarise them in the
//! order they were listed.
//!
//! ```text
//! list_pages => map(fetch => word_count, limit = 4) => summarize
//! ```
//!
//! `map` runs its pipeline once per item of the incoming `Vec`; the outputs come back as a `Vec`
//! in input order, whichever item finishes first. Every item's traces carry its index and the
//! map's one `parallel_group_id`.
//!
//! Run it with `cargo run --example map_fanout`.

#[path = "support/replay_check.rs"]
mod replay_check;
use replay_check::replay_check;

use orchflow::{flow, step};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[error("{0} answered 503")]
struct Unavailable(String);

#[step]
async fn list_pages(site: String) -> Vec<String> {
    (1..=10).map(|i| format!("{site}/page/{i}")).collect()
}

/// Stands in for an HTTP request: later pages answer faster, so they finish first.
#[step(retry = 2, delay = "5ms")]
async fn fetch(url: &String) -> Result<String, Unavailable> {
    let n: u64 = url
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    tokio::time::sleep(Duration::from_millis(40 - 3 * n)).await;
    Ok(format!(
        "<h1>{url}</h1> {}",
        "lorem ipsum ".repeat(n as usize)
    ))
}

#[step]
async fn word_count(body: String) -> usize {
    body.split_whitespace().count()
}

#[step]
async fn summarize(counts: Vec<usize>) -> String {
    let total: usize = counts.iter().sum();
    format!("{} pages, {total} words: {counts:?}", counts.len())
}

#[tokio::main]
async fn main() {
    let f = flow! { list_pages => map(fetch => word_count, limit = 4) => summarize };
    let started = Instant::now();
    let r = f.run("https://example.com".to_string()).await;
    match &r.output {
        Some(summary) => println!("{summary}"),
        None => {
            eprintln!("failed: {:?}", r.error);
            std::process::exit(1);
        }
    }
    println!(
        "took {:?} (10 pages of up to 37 ms, 4 at a time)",
        started.elapsed()
    );
    let fetched: Vec<_> = r
        .traces
        .iter()
        .filter(|t| t.step == "fetch")
        .filter_map(|t| t.item)
        .collect();
    println!("fetches finished in the order of items {fetched:?}");

    println!();
    replay_check!(f, "https://example.com".to_string());
}
