//! A durable run that fails on purpose, then resumes from its checkpoint without redoing the
//! work that finished.
//!
//! `cargo run --example checkpoint_resume` (offline; the checkpoint goes to a SQLite file in the
//! temp dir, removed at the end). `-- --store runs.db` keeps the runs in `runs.db`, to look at
//! with `orchflow serve --store runs.db`.

#[path = "support/store.rs"]
mod support;
#[path = "support/site_audit.rs"]
#[macro_use]
mod site_audit;

use site_audit::*;

use orchflow::replay::{ReplayOptions, ReplayOutcome};
use orchflow::store::CheckpointStore;
use std::sync::atomic::Ordering;

#[tokio::main]
async fn main() {
    let file = support::ExampleStore::from_args("checkpoint-resume");
    let store = file.open();
    let audit = site_audit!();

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

    let changed = site_audit_changed!();
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
