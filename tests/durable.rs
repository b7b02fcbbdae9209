//! Durable runs: checkpoints after every resumable point, resume without redoing finished work,
//! typed errors for checkpoints that do not fit, and human input that suspends a run.

use futures::StreamExt;
use orchflow::human::{self, Answer};
use orchflow::store::RunStatus;
use orchflow::{CheckpointStore, MemoryStore, ResumeError, flow, step};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// Counts calls per step name, and lets a test decide when a step fails.
#[derive(Default)]
struct World {
    calls: Mutex<Vec<&'static str>>,
    broken: Mutex<Vec<&'static str>>,
}

impl World {
    fn call(&self, name: &'static str) -> Result<(), std::io::Error> {
        self.calls.lock().unwrap().push(name);
        if self.broken.lock().unwrap().contains(&name) {
            Err(std::io::Error::other(format!("{name} is broken")))
        } else {
            Ok(())
        }
    }
    fn count(&self, name: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|n| **n == name)
            .count()
    }
    fn fix(&self, name: &str) {
        self.broken.lock().unwrap().retain(|n| *n != name);
    }
    fn breaks(self, name: &'static str) -> Self {
        self.broken.lock().unwrap().push(name);
        self
    }
}

// Each test has its own world: steps reach it through a thread-local-free global keyed by test.
static WORLDS: Mutex<Vec<(&'static str, Arc<World>)>> = Mutex::new(Vec::new());

fn world(test: &'static str) -> Arc<World> {
    let worlds = WORLDS.lock().unwrap();
    worlds
        .iter()
        .find(|(t, _)| *t == test)
        .map(|(_, w)| w.clone())
        .unwrap()
}

fn install(test: &'static str, w: World) -> Arc<World> {
    let w = Arc::new(w);
    WORLDS.lock().unwrap().push((test, w.clone()));
    w
}

macro_rules! counted {
    ($test:literal: $($name:ident($x:ident: $t:ty) -> $o:ty $body:block)*) => {$(
        #[step]
        async fn $name($x: $t) -> Result<$o, std::io::Error> {
            world($test).call(stringify!($name))?;
            let out: $o = $body;
            Ok(out)
        }
    )*};
}

mod sequence {
    use super::*;
    counted! { "sequence":
        a(x: u32) -> u32 { x + 1 }
        b(x: u32) -> u32 { x * 10 }
        c(x: u32) -> u32 { x + 5 }
    }

    #[tokio::test]
    async fn resume_skips_finished_steps_and_a_completed_run_runs_nothing() {
        let w = install("sequence", World::default().breaks("c"));
        let store = Arc::new(MemoryStore::default());
        let f = flow! { #[flow(name = "sequence")] a => b => c };
        let first = f.durable(store.clone()).run(1).await;
        assert!(!first.success);
        assert_eq!(first.failed_step.as_deref(), Some("c"));
        assert_eq!(
            store.journal_len(first.run_id),
            3,
            "a, b, and the traces of the stop"
        );

        w.fix("c");
        let second = f.durable(store.clone()).resume(first.run_id).await.unwrap();
        assert_eq!(second.output, Some(25));
        assert_eq!((w.count("a"), w.count("b"), w.count("c")), (1, 1, 2));
        assert_eq!(second.run_id, first.run_id);
        assert_eq!(
            second.traces.len(),
            4,
            "traces of both sessions: a, b, c failed, c"
        );

        let third = f.durable(store.clone()).resume(first.run_id).await.unwrap();
        assert_eq!(third.output, Some(25));
        assert_eq!(
            (w.count("a"), w.count("b"), w.count("c")),
            (1, 1, 2),
            "nothing ran"
        );
        let doc = store.load(first.run_id).await.unwrap().unwrap().document;
        assert_eq!(doc.status, RunStatus::Completed);
        assert_eq!(doc.output, Some(serde_json::json!(25)));
    }
}

mod parallel {
    use super::*;
    counted! { "parallel":
        start(x: u32) -> u32 { x }
        left(x: &u32) -> u32 { x + 1 }
        right(x: &u32) -> u32 { x + 2 }
        join(p: (u32, u32)) -> u32 { p.0 * p.1 }
    }

    #[tokio::test]
    async fn resume_runs_only_the_branches_that_had_not_finished() {
        let w = install("parallel", World::default().breaks("right"));
        let store = Arc::new(MemoryStore::default());
        let f = flow! { #[flow(name = "parallel")] start => [left, right] => join };
        let first = f.durable(store.clone()).run(1).await;
        assert!(!first.success);
        w.fix("right");
        let second = f.durable(store.clone()).resume(first.run_id).await.unwrap();
        assert_eq!(second.output, Some(6));
        assert_eq!(
            (w.count("start"), w.count("left"), w.count("right")),
            (1, 1, 2)
        );
    }
}

mod looping {
    use super::*;
    static FAIL_AT: AtomicU32 = AtomicU32::new(3);

    #[step]
    async fn grow(x: u32) -> Result<u32, std::io::Error> {
        world("looping").call("grow")?;
        if x + 1 == FAIL_AT.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("not now"));
        }
        Ok(x + 1)
    }

    fn done(x: &u32) -> bool {
        *x >= 5
    }

    #[tokio::test]
    async fn resume_continues_a_loop_at_its_iteration() {
        let w = install("looping", World::default());
        let store = Arc::new(MemoryStore::default());
        let f = flow! { #[flow(name = "looping")] loop(max = 10) { grow } until done };
        let first = f.durable(store.clone()).run(0).await;
        assert!(!first.success);
        assert_eq!(w.count("grow"), 3, "1, 2, then the failure at 3");
        FAIL_AT.store(0, Ordering::SeqCst);
        let second = f.durable(store.clone()).resume(first.run_id).await.unwrap();
        assert_eq!(second.output, Some(5));
        assert_eq!(
            w.count("grow"),
            6,
            "3, 4, 5 after the resume; 1 and 2 not again"
        );
    }
}

mod mismatch {
    use super::*;

    mod v1 {
        use orchflow::step;
        #[step]
        pub async fn a(x: u32) -> u32 {
            x
        }
        #[step]
        pub async fn b(x: u32) -> Result<u32, std::io::Error> {
            let _ = x;
            Err(std::io::Error::other("stop here"))
        }
    }
    mod v2 {
        use orchflow::step;
        #[step]
        pub async fn a(x: u32) -> String {
            x.to_string()
        }
        #[step]
        pub async fn b(x: String) -> String {
            x
        }
    }

    #[tokio::test]
    async fn a_changed_flow_another_flow_or_changed_types_are_typed_errors() {
        let store = Arc::new(MemoryStore::default());
        let run = flow! { #[flow(name = "m")] v1::a => v1::b }
            .durable(store.clone())
            .run(1)
            .await;
        assert!(!run.success);

        let changed = flow! { #[flow(name = "m")] v1::a => v1::a => v1::b };
        let err = changed
            .durable(store.clone())
            .resume(run.run_id)
            .await
            .unwrap_err();
        assert!(matches!(err, ResumeError::FlowChanged { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("it was `v1::a => v1::b`, it is now `v1::a => v1::a => v1::b`"),
            "{err}"
        );

        let other = flow! { #[flow(name = "other")] v1::a => v1::b };
        let err = other
            .durable(store.clone())
            .resume(run.run_id)
            .await
            .unwrap_err();
        assert!(matches!(err, ResumeError::OtherFlow { .. }), "{err}");
        assert!(
            err.to_string().contains("of flow `m`, not of flow `other`"),
            "{err}"
        );

        let retyped = {
            use v2::{a, b};
            flow! { #[flow(name = "m")] a => b }
        };
        let original = {
            use v1::{a, b};
            flow! { #[flow(name = "m")] a => b }
        };
        let run = original.durable(store.clone()).run(7).await;
        let err = retyped
            .durable(store.clone())
            .resume(run.run_id)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ResumeError::Undecodable {
                    what: "resumable point",
                    ..
                }
            ),
            "{err}"
        );

        let err = original
            .durable(store.clone())
            .resume(orchflow::RunId::new_v4())
            .await
            .unwrap_err();
        assert!(matches!(err, ResumeError::NotFound(_)));
    }
}

mod humans {
    use super::*;

    #[step]
    async fn draft(topic: String) -> String {
        format!("a post about {topic}")
    }

    #[step]
    async fn decide(a: Answer<String>) -> String {
        if a.text == "yes" {
            format!("published {}", a.value)
        } else {
            "shelved".into()
        }
    }

    #[tokio::test]
    async fn a_suspended_run_resumes_with_the_answer() {
        let store = Arc::new(MemoryStore::default());
        let review = human::ask("review", |d: &String| format!("publish {d}?"));
        let f = flow! { #[flow(name = "review")] draft => (review) => decide }
            .with_input(human::Suspend);

        let first = f.durable(store.clone()).run("rust".into()).await;
        assert!(!first.success);
        let [pending] = first.suspended.as_slice() else {
            panic!("one question: {:?}", first.suspended)
        };
        assert_eq!(pending.prompt, "publish a post about rust?");
        assert_eq!(pending.step, "review");
        assert_eq!(pending.question, "review");
        assert!(first.error.is_none());
        let doc = store.load(first.run_id).await.unwrap().unwrap().document;
        assert_eq!(doc.status, RunStatus::Suspended);
        assert_eq!(doc.pending, first.suspended);

        let done = f
            .durable(store.clone())
            .answer(first.run_id, "yes")
            .await
            .unwrap();
        assert_eq!(done.output.as_deref(), Some("published a post about rust"));

        let err = f
            .durable(store.clone())
            .answer(first.run_id, "no")
            .await
            .unwrap_err();
        assert!(matches!(err, ResumeError::NotSuspended { .. }));
    }

    #[tokio::test]
    async fn providers_answer_without_suspending_and_events_mark_question_and_answer() {
        let review = human::ask("review", |d: &String| format!("publish {d}?"));
        let f = flow! { draft => (review) => decide }
            .with_input(orchflow::testing::ScriptedInput::new(["yes"]));
        let kinds: Vec<_> = f.stream("x".into()).map(|e| e.kind()).collect().await;
        assert!(
            kinds
                .windows(2)
                .any(|w| w == ["input_requested", "input_received"]),
            "{kinds:?}"
        );
        assert_eq!(kinds.last(), Some(&"flow_completed"));
    }
}

mod events {
    use super::*;
    counted! { "events":
        one(x: u32) -> u32 { x }
        two(x: u32) -> u32 { x }
    }

    #[tokio::test]
    async fn saves_and_loads_are_events() {
        let w = install("events", World::default().breaks("two"));
        let store = Arc::new(MemoryStore::default());
        let f = flow! { #[flow(name = "events")] one => two };
        let saved: Vec<_> = f
            .durable(store.clone())
            .stream(1)
            .filter_map(|e| async move {
                match e {
                    orchflow::Event::CheckpointSaved(c) => Some(c.point),
                    _ => None,
                }
            })
            .collect()
            .await;
        // The failure's checkpoint is announced like any other.
        assert_eq!(saved, ["AfterOne", "stopped"]);
        let run_id = store.runs()[0];
        w.fix("two");
        let stream = f
            .durable(store.clone())
            .resume_stream(run_id)
            .await
            .unwrap();
        let kinds: Vec<_> = stream.map(|e| e.kind()).collect().await;
        assert_eq!(&kinds[..2], ["flow_started", "checkpoint_loaded"]);
        assert_eq!(kinds.last(), Some(&"flow_completed"));
    }
}

mod files {
    use super::*;
    use orchflow::JsonCheckpointStore;

    #[step]
    async fn first(x: u32) -> u32 {
        x + 1
    }

    #[step]
    async fn second(x: u32) -> Result<u32, std::io::Error> {
        if x > 100 {
            Ok(x)
        } else {
            Err(std::io::Error::other("too small"))
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("orchflow-durable-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn bad_checkpoint_files_are_typed_errors_naming_the_file() {
        let dir = scratch("bad");
        let store = JsonCheckpointStore::new(&dir);
        let f = flow! { #[flow(name = "files")] first => second };
        let run = f.durable(store.clone()).run(1).await;
        assert!(!run.success);
        let doc = store.document_path(run.run_id);
        let bytes = std::fs::read(&doc).unwrap();

        // Truncated document.
        std::fs::write(&doc, &bytes[..bytes.len() / 2]).unwrap();
        let err = f
            .durable(store.clone())
            .resume(run.run_id)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ResumeError::Store(orchflow::store::StoreError::Corrupt { .. })
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains(&doc.display().to_string()),
            "{err}"
        );

        // Unknown format version.
        let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        json["version"] = serde_json::json!(99);
        std::fs::write(&doc, serde_json::to_vec(&json).unwrap()).unwrap();
        let err = f
            .durable(store.clone())
            .resume(run.run_id)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("version 99"), "{err}");

        // Restored, it resumes; a resumed run that fails again keeps its checkpoint readable.
        std::fs::write(&doc, &bytes).unwrap();
        let again = f.durable(store.clone()).resume(run.run_id).await.unwrap();
        assert!(!again.success);
        assert_eq!(again.traces.len(), 3);

        // Another flow's checkpoint names the file.
        let other = flow! { #[flow(name = "another")] first => second };
        let err = other
            .durable(store.clone())
            .resume(run.run_id)
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with(&doc.display().to_string()),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Groups and loops inside an `if` arm, steps inside a loop body, a group inside a branch:
/// each finished step inside a top-level item is saved, and a resumed run replays the item
/// taking those values instead of running the steps again.
mod inner_positions {
    use super::*;
    static GROW_FAILS_AT: AtomicU32 = AtomicU32::new(0);

    counted! { "inner_arm":
        start(x: u32) -> u32 { x }
        left(x: &u32) -> u32 { x + 1 }
        right(x: &u32) -> u32 { x + 2 }
        slow(x: u32) -> u32 { x * 10 }
        merge(p: (u32, u32)) -> u32 { p.0 + p.1 }
        other(x: u32) -> u32 { x }
        finish(x: u32) -> u32 { x + 1000 }
    }

    #[step]
    async fn grow(x: u32) -> Result<u32, std::io::Error> {
        world("inner_arm").call("grow")?;
        if x + 1 == GROW_FAILS_AT.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("not now"));
        }
        Ok(x + 1)
    }

    fn always(_: &u32) -> bool {
        true
    }
    fn big(x: &u32) -> bool {
        *x >= 36
    }

    #[tokio::test]
    async fn a_group_and_a_loop_inside_an_arm_resume_where_they_stopped() {
        let w = install("inner_arm", World::default().breaks("slow"));
        GROW_FAILS_AT.store(35, Ordering::SeqCst);
        let store = Arc::new(MemoryStore::default());
        let f = flow! { #[flow(name = "inner_arm")]
            start => if always {
                [left, right => slow] => merge => loop(max = 10) { grow } until big
            } else {
                other
            } => finish
        };

        // 1st run: both branches' first steps finish, `slow` fails.
        let first = f.durable(store.clone()).run(1).await;
        assert_eq!(first.failed_step.as_deref(), Some("slow"));
        w.fix("slow");

        // 2nd run: only `slow` runs again (merge: 2 + 30 = 32); the loop then fails at its 3rd
        // iteration (32 -> 33, 33 -> 34, 34 -> 35 fails).
        let second = f.durable(store.clone()).resume(first.run_id).await.unwrap();
        assert_eq!(second.failed_step.as_deref(), Some("grow"));
        assert_eq!(
            (
                w.count("start"),
                w.count("left"),
                w.count("right"),
                w.count("slow")
            ),
            (1, 1, 1, 2),
            "finished steps inside the arm's group did not run again"
        );
        assert_eq!((w.count("merge"), w.count("grow")), (1, 3));

        // 3rd run: the loop continues at its 3rd iteration; nothing before it runs again.
        GROW_FAILS_AT.store(0, Ordering::SeqCst);
        let third = f.durable(store.clone()).resume(first.run_id).await.unwrap();
        assert_eq!(third.output, Some(1036), "{:?}", third.error);
        assert_eq!(
            (
                w.count("start"),
                w.count("left"),
                w.count("right"),
                w.count("slow")
            ),
            (1, 1, 1, 2)
        );
        assert_eq!(w.count("merge"), 1, "merge ran once");
        assert_eq!(
            w.count("grow"),
            5,
            "32->33, 33->34, failed; then 34->35, 35->36"
        );
        assert_eq!(w.count("other"), 0);
        assert_eq!(w.count("finish"), 1);
    }

    counted! { "inner_body":
        plan(x: u32) -> u32 { x + 1 }
        act(x: u32) -> u32 { x * 2 }
        check(x: u32) -> u32 { x }
    }

    static CHECKS_FAIL_AT: AtomicU32 = AtomicU32::new(0);

    #[step]
    async fn checked(x: u32) -> Result<u32, std::io::Error> {
        world("inner_body").call("checked")?;
        if x == CHECKS_FAIL_AT.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("verifier down"));
        }
        Ok(x)
    }

    #[tokio::test]
    async fn each_step_of_a_loop_body_is_saved_so_a_resume_does_not_repeat_it() {
        let w = install("inner_body", World::default());
        // Iteration 1: 0 -> plan 1 -> act 2 -> checked 2; iteration 2: plan 3 -> act 6 -> fails.
        CHECKS_FAIL_AT.store(6, Ordering::SeqCst);
        let store = Arc::new(MemoryStore::default());
        let f = flow! { #[flow(name = "inner_body")]
            loop(max = 3) { plan => act => checked } => check
        };
        let first = f.durable(store.clone()).run(0).await;
        assert_eq!(first.failed_step.as_deref(), Some("checked"));
        assert_eq!(
            (w.count("plan"), w.count("act"), w.count("checked")),
            (2, 2, 2)
        );

        CHECKS_FAIL_AT.store(0, Ordering::SeqCst);
        let second = f.durable(store.clone()).resume(first.run_id).await.unwrap();
        // Iteration 2 resumes at `checked`; iteration 3: 6 -> 7 -> 14.
        assert_eq!(second.output, Some(14), "{:?}", second.error);
        assert_eq!(
            (w.count("plan"), w.count("act"), w.count("checked")),
            (3, 3, 4),
            "plan and act of iteration 2 did not run again"
        );
    }

    mod branch {
        use super::super::*;
        counted! { "inner_branch":
            plan(x: u32) -> u32 { x + 1 }
            act(x: &u32) -> u32 { x * 2 }
            sub_a(x: &u32) -> u32 { *x }
            sub_b(x: &u32) -> u32 { x + 1 }
            pair(p: (u32, u32)) -> u32 { p.0 + p.1 }
            check(x: &u32) -> u32 { *x }
            bump(x: u32) -> u32 { x + 1 }
        }

        fn at_least_3(x: &u32) -> bool {
            *x >= 3
        }

        #[tokio::test]
        async fn a_group_and_a_loop_inside_branches_resume_inside_them() {
            let w = install("inner_branch", World::default().breaks("sub_b"));
            let store = Arc::new(MemoryStore::default());
            let f = flow! { #[flow(name = "inner_branch")]
                plan => [
                    act => [sub_a, sub_b] => pair,
                    check => loop(max = 5) { bump } until at_least_3
                ] => pair
            };
            let first = f.durable(store.clone()).run(1).await;
            assert_eq!(first.failed_step.as_deref(), Some("sub_b"));
            w.fix("sub_b");
            let second = f.durable(store.clone()).resume(first.run_id).await.unwrap();
            // plan 2; act 4, sub_a 4, sub_b 5, pair 9; check 2, bump 3; pair 12.
            assert_eq!(second.output, Some(12), "{:?}", second.error);
            assert_eq!(
                (
                    w.count("plan"),
                    w.count("act"),
                    w.count("sub_a"),
                    w.count("sub_b")
                ),
                (1, 1, 1, 2),
                "steps finished before the failure ran once"
            );
            assert!(
                w.count("check") <= 1 && w.count("bump") <= 1,
                "no branch step twice"
            );
            assert_eq!(w.count("pair"), 2, "the branch's pair, then the last one");
        }
    }
}

/// A flow nested in a durable flow is one step of it: it runs whole, and its output is saved
/// as the enclosing flow's point.
mod nested_flow {
    use super::*;
    counted! { "nested_flow":
        one(x: u32) -> u32 { x + 1 }
        two(x: u32) -> u32 { x * 2 }
        three(x: u32) -> u32 { x + 3 }
    }

    #[tokio::test]
    async fn a_nested_flow_is_saved_as_one_step_of_a_durable_run() {
        let w = install("nested_flow", World::default().breaks("three"));
        let inner = flow! { #[flow(name = "inner")] one => two };
        let f = flow! { #[flow(name = "outer")] one => (inner) => three };
        let store = Arc::new(MemoryStore::default());
        let first = f.durable(store.clone()).run(1).await;
        assert_eq!(first.failed_step.as_deref(), Some("three"));
        w.fix("three");
        let second = f.durable(store.clone()).resume(first.run_id).await.unwrap();
        assert_eq!(second.output, Some(9), "{:?}", second.error);
        assert_eq!(
            (w.count("one"), w.count("two"), w.count("three")),
            (2, 1, 2)
        );
    }
}
