//! The replay check every example ends with: one run of a flow of the example is recorded in a
//! memory store, then replayed against this very build (`Durable::replay`), which runs no step.
//! The same code must be compatible; anything else is a bug, and the example exits with 1.

/// Records a run of `$flow` with `$input` and replays it; prints one line, or exits with 1.
macro_rules! replay_check {
    ($flow:expr, $input:expr) => {{
        let flow = &$flow;
        let store = orchflow::MemoryStore::default();
        let run = flow.durable(store.clone()).run($input).await;
        let report = flow
            .durable(store)
            .replay(run.run_id, &orchflow::replay::ReplayOptions::default())
            .await;
        match report {
            Ok(r) if r.is_compatible() => println!(
                "replay check `{}`: a recorded run replayed against this build is compatible ({} call(s) served from the recording, no step ran)",
                r.flow, r.reused
            ),
            Ok(r) => {
                println!("replay check `{}` failed: {:#?}", r.flow, r.outcome);
                std::process::exit(1);
            }
            Err(e) => {
                println!("replay check failed: {e}");
                std::process::exit(1);
            }
        }
    }};
}
pub(crate) use replay_check;
