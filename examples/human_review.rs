//! A flow with a human-input step, in two modes:
//!
//! * `cargo run --example human_review` (default): the run **suspends** at the question with a
//!   checkpoint, and is resumed later with the answer, as a server would (no task blocks while
//!   the person thinks);
//! * `cargo run --example human_review -- --stdin`: the question is asked on the terminal.
//!
//! `-- --store runs.db` keeps the runs in `runs.db` (else a temp file, removed at the end), with
//! one more run left waiting for its review: `orchflow serve --store runs.db` shows it in the
//! inbox, where it can be answered.

#[path = "support/store.rs"]
mod support;

use orchflow::human::{self, Answer};
use orchflow::{flow, step};

#[step]
async fn draft(topic: String) -> String {
    format!("Orchflow now checks your workflows at compile time ({topic})")
}

#[step]
async fn decide(review: Answer<String>) -> String {
    match review.text.trim() {
        "y" | "yes" => format!("PUBLISHED: {}", review.value),
        other => format!("not published (answer: {other:?})"),
    }
}

#[tokio::main]
async fn main() {
    let review = human::ask("review", |d: &String| {
        format!("Publish this post? \"{d}\" (yes/no)")
    });
    let post = flow! { #[flow(name = "post_review")] draft => (review) => decide };

    if std::env::args().any(|a| a == "--stdin") {
        let result = post.run("release notes".to_string()).await;
        match (&result.output, &result.error) {
            (Some(out), _) => println!("{out}"),
            (None, Some(e)) => println!("the run failed: {e}"),
            (None, None) => println!("the run stopped"),
        }
        return;
    }

    let file = support::ExampleStore::from_args("human-review");
    let store = file.open();
    let post = post.with_input(human::Suspend);

    println!("starting the run; the review step will suspend it");
    let first = post
        .durable(store.clone())
        .run("release notes".to_string())
        .await;
    if first.suspended.is_empty() {
        println!("  unexpected: the run did not suspend ({:?})", first.error);
    }
    for pending in &first.suspended {
        println!(
            "  suspended: question `{}` (step `{}`) asks: {}",
            pending.question, pending.step, pending.prompt
        );
    }
    println!(
        "  checkpoint: run {} in {}",
        first.run_id,
        file.path.display()
    );

    println!("\n... later, in this process or another, the answer arrives: \"yes\"");
    match post
        .durable(store.clone())
        .answer(first.run_id, "yes")
        .await
    {
        Ok(done) => {
            println!("  {}", done.output.as_deref().unwrap_or("(no output)"));
            for t in &done.traces {
                println!(
                    "  trace: {:<7} session {} attempt {} {:?}",
                    t.step, t.session, t.attempt, t.outcome
                );
            }
        }
        Err(e) => println!("  cannot resume: {e}"),
    }
    if std::env::args().any(|a| a == "--store") {
        let waiting = post
            .durable(store.clone())
            .run("the roadmap".to_string())
            .await;
        println!(
            "\nrun {} waits for its review (answer it from the viewer's inbox)",
            waiting.run_id
        );
    }

    // The answered run, replayed against this build: the answer is served from the recording.
    let report = post
        .durable(store.clone())
        .replay(first.run_id, &orchflow::replay::ReplayOptions::default())
        .await;
    match report {
        Ok(r) if r.is_compatible() => println!(
            "\nreplay of run {}: compatible ({} calls served from the recording, the answer among them)",
            r.run_id, r.reused
        ),
        Ok(r) => {
            println!("\nreplay of run {}: {:?}", r.run_id, r.outcome);
            std::process::exit(1);
        }
        Err(e) => {
            println!("\ncannot replay: {e}");
            std::process::exit(1);
        }
    }
    file.finish(store);
}
