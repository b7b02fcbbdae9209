//! A durable run that fails on purpose, then resumes from its checkpoint without redoing the
//! work that finished.
//!
//! `cargo run --example checkpoint_resume` (offline; the checkpoint goes to a SQLite file in the
//! temp dir, removed at the end). `-- --store runs.db` keeps the runs in `runs.db`, to look at
//! with `orchflow serve --store runs.db`.

#[path = "support/store.rs"]
mod support;

use orchflow::replay::{ReplayOptions, ReplayOutcome};
use orchflow::store::CheckpointStore;
use orchflow::{flow, step};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Set once the "outage" is over.
static UPSTREAM_UP: AtomicBool = AtomicBool::new(false);
static EXPENSIVE_CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    pages: u32,
    summary: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the upstream service is down")]
struct Outage;

/// Pretend this costs money: it must not run twice.
#[step]
async fn crawl(site: String) -> u32 {
    EXPENSIVE_CALLS.fetch_add(1, Ordering::SeqCst);
    println!("  crawl: crawling {site} (expensive)");
    site.len() as u32 * 3
}

#[step]
async fn count_links(pages: &u32) -> u32 {
    println!("  count_links: {pages} pages");
    pages * 7
}

#[step]
async fn count_images(pages: &u32) -> u32 {
    println!("  count_images: {pages} pages");
    pages * 2
}

#[step]
async fn summarize(counts: (u32, u32)) -> Result<Report, Outage> {
    if !UPSTREAM_UP.load(Ordering::SeqCst) {
        println!("  summarize: upstream is down, failing");
        return Err(Outage);
    }
    println!("  summarize: writing the report");
    Ok(Report {
        pages: counts.0 / 7,
        summary: format!("{} links, {} images", counts.0, counts.1),
    })
}

#[tokio::main]
async fn main() {
    let file = support::ExampleStore::from_args("checkpoint-resume");
    let store = file.open();
    let audit =
        flow! { #[flow(name = "site_audit")] crawl => [count_links, count_images] => summarize };

    println!("first run (the upstream is down):");
    let first = audit
        .durable(store.clone())
        .run("example.org".to_string())
        .await;
    println!(
        "  -> success: {}, failed step: {:?}",
        first.success, first.failed_step
    );
    if let Some(e) = &first.error {
        println!("  -> error: {e}");
    }
    let saved = store.journal(first.run_id, 0).await.ok().flatten();
    println!(
        "checkpoint: run {} in {} ({} journal entries)",
        first.run_id,
        file.path.display(),
        saved.map_or(0, |j| j.len())
    );

    UPSTREAM_UP.store(true, Ordering::SeqCst);
    println!("\nresume (the upstream is back):");
    match audit.durable(store.clone()).resume(first.run_id).await {
        Ok(done) => {
            println!("  -> success: {}, output: {:?}", done.success, done.output);
            println!("  -> traces of both sessions:");
            for t in &done.traces {
                println!(
                    "     {:<13} session {} attempt {}  {:?}",
                    t.step, t.session, t.attempt, t.outcome
                );
            }
        }
        Err(e) => println!("  -> cannot resume: {e}"),
    }
    println!(
        "\n`crawl` ran {} time(s)",
        EXPENSIVE_CALLS.load(Ordering::SeqCst)
    );

    println!("\nresume again (the run is complete: nothing runs):");
    if let Ok(again) = audit.durable(store.clone()).resume(first.run_id).await {
        println!("  -> output: {:?}", again.output);
    }
    println!(
        "`crawl` ran {} time(s)",
        EXPENSIVE_CALLS.load(Ordering::SeqCst)
    );

    let changed = flow! { #[flow(name = "site_audit")] crawl => summarize_only };
    println!("\nresume with a changed flow:");
    if let Err(e) = changed.durable(store.clone()).resume(first.run_id).await {
        println!("  -> {e}");
    }

    // A replay drives a build over the recorded run without running a step: the same flow is
    // compatible; the changed one says where it departs from the recording.
    println!(
        "
replay of the recorded run (no step runs):"
    );
    let options = ReplayOptions::default();
    match audit
        .durable(store.clone())
        .replay(first.run_id, &options)
        .await
    {
        Ok(r) if r.is_compatible() => println!(
            "  same flow: compatible ({} calls served from the recording)",
            r.reused
        ),
        Ok(r) => {
            println!("  same flow: {:?}", r.outcome);
            std::process::exit(1);
        }
        Err(e) => {
            println!("  cannot replay: {e}");
            std::process::exit(1);
        }
    }
    match changed
        .durable(store.clone())
        .replay(first.run_id, &options)
        .await
    {
        Ok(r) => match &r.outcome {
            ReplayOutcome::Diverges(d) => {
                println!("  changed flow: diverges at {}: {}", d.path, d.message)
            }
            other => println!("  changed flow: {other:?}"),
        },
        Err(e) => println!("  cannot replay: {e}"),
    }
    file.finish(store);
}

#[step]
async fn summarize_only(pages: u32) -> Report {
    Report {
        pages,
        summary: String::new(),
    }
}
