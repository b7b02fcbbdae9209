//! Human questions in durable runs: several pending at once, each answer bound to the question
//! it answers, and questions asked inside nested flows.

use orchflow::human::{self, Answer};
use orchflow::store::{PointRecord, RunStatus};
use orchflow::{CheckpointStore, JsonCheckpointStore, MemoryStore, ResumeError, flow, step};
use std::sync::atomic::{AtomicU32, Ordering};

#[step]
fn both(x: (Answer<u8>, Answer<u8>)) -> String {
    format!("legal={} brand={}", x.0.text, x.1.text)
}

/// `[(legal), (brand)] => both`: two questions in two branches.
macro_rules! two_questions {
    () => {{
        let legal = human::ask("legal", |x: &u8| format!("legal review of {x}?"));
        let brand = human::ask("brand", |x: &u8| format!("brand review of {x}?"));
        flow! { #[flow(name = "two_questions")] [(legal), (brand)] => both }
            .with_input(human::Suspend)
    }};
}

#[tokio::test]
async fn questions_in_parallel_branches_are_all_pending() {
    let f = two_questions!();
    let store = MemoryStore::default();
    let run = f.durable(store.clone()).run(7).await;
    assert!(!run.success && run.error.is_none(), "{:?}", run.error);
    let questions: Vec<_> = run
        .suspended
        .iter()
        .map(|p| (p.question.as_str(), p.step.as_str(), p.prompt.as_str()))
        .collect();
    assert_eq!(
        questions,
        [
            ("0/legal", "legal", "legal review of 7?"),
            ("1/brand", "brand", "brand review of 7?")
        ]
    );
    let doc = store.load(run.run_id).await.unwrap().unwrap().document;
    assert_eq!(doc.status, RunStatus::Suspended);
    assert_eq!(doc.pending, run.suspended);
}

#[tokio::test]
async fn each_answer_goes_to_the_question_it_names() {
    let f = two_questions!();
    let dir = tempfile::tempdir().unwrap();
    let store = JsonCheckpointStore::new(dir.path());
    let run = f.durable(store.clone()).run(7).await;

    // The brand question is answered first; on replay the legal question is asked first, and
    // must not take the brand's answer.
    let after_brand = f
        .durable(store.clone())
        .answer_to(run.run_id, "1/brand", "brand-ok")
        .await
        .unwrap();
    assert!(after_brand.output.is_none());
    let still: Vec<_> = after_brand.suspended.iter().map(|p| &p.question).collect();
    assert_eq!(still, ["0/legal"]);

    // In another process (another store value): the answer named by its step alone.
    let other = JsonCheckpointStore::new(dir.path());
    let done = f
        .durable(other.clone())
        .answer_to(run.run_id, "legal", "legal-ok")
        .await
        .unwrap();
    assert_eq!(
        done.output.as_deref(),
        Some("legal=legal-ok brand=brand-ok"),
        "{:?}",
        done.error
    );
    let journal = other.load(run.run_id).await.unwrap().unwrap().journal;
    let answers: Vec<_> = journal
        .iter()
        .filter_map(|e| match &e.record {
            PointRecord::Answer { question, text } => Some((question.as_str(), text.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(answers, [("1/brand", "brand-ok"), ("0/legal", "legal-ok")]);
    // Each answer was retired by the save of the branch that took it.
    let retired: Vec<&str> = journal
        .iter()
        .flat_map(|e| e.answered.iter().map(String::as_str))
        .collect();
    assert_eq!(retired, ["1/brand", "0/legal"]);
}

#[tokio::test]
async fn an_answer_must_say_which_question_when_several_wait() {
    let f = two_questions!();
    let store = MemoryStore::default();
    let run = f.durable(store.clone()).run(1).await;
    let journal_before = store.journal_len(run.run_id);

    let err = f
        .durable(store.clone())
        .answer(run.run_id, "yes")
        .await
        .unwrap_err();
    match &err {
        ResumeError::AmbiguousAnswer { pending, .. } => {
            assert_eq!(pending, &["0/legal", "1/brand"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("0/legal, 1/brand"), "{err}");

    let err = f
        .durable(store.clone())
        .answer_to(run.run_id, "finance", "yes")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ResumeError::UnknownQuestion { question, .. } if question == "finance"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("it waits on: 0/legal, 1/brand"),
        "{err}"
    );
    // Refused answers write nothing and leave the run waiting on both.
    assert_eq!(store.journal_len(run.run_id), journal_before);
    let doc = store.load(run.run_id).await.unwrap().unwrap().document;
    assert_eq!(doc.status, RunStatus::Suspended);
    assert_eq!(doc.pending.len(), 2);
}

#[step]
fn pair(x: (Answer<u8>, Answer<u8>)) -> String {
    format!("{} {}", x.0.text, x.1.text)
}

#[tokio::test]
async fn the_same_nested_flow_in_two_branches_asks_two_questions() {
    let sign = human::ask("sign", |x: &u8| format!("sign {x}?"));
    let contract = flow! { #[flow(name = "contract")] (sign) };
    let f = flow! { #[flow(name = "deal")] [(contract.clone()), (contract)] => pair }
        .with_input(human::Suspend);
    let store = MemoryStore::default();
    let run = f.durable(store.clone()).run(3).await;
    let questions: Vec<_> = run.suspended.iter().map(|p| p.question.as_str()).collect();
    assert_eq!(questions, ["0/contract/sign", "1/contract/sign"]);

    // The step's name alone is ambiguous here.
    let err = f
        .durable(store.clone())
        .answer_to(run.run_id, "sign", "x")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ResumeError::AmbiguousAnswer { pending, .. } if pending.len() == 2),
        "{err:?}"
    );
    let r = f
        .durable(store.clone())
        .answer_to(run.run_id, "1/contract/sign", "second")
        .await
        .unwrap();
    assert_eq!(r.suspended.len(), 1);
    let r = f
        .durable(store.clone())
        .answer(run.run_id, "first")
        .await
        .unwrap();
    assert_eq!(r.output.as_deref(), Some("first second"), "{:?}", r.error);
}

static AFTER_APPROVAL: AtomicU32 = AtomicU32::new(0);

#[step]
async fn prepare(x: u32) -> u32 {
    x + 1
}

#[step]
async fn ship(a: Answer<u32>) -> String {
    AFTER_APPROVAL.fetch_add(1, Ordering::SeqCst);
    format!("{} {}", a.value, a.text)
}

#[step]
async fn wrap(s: String) -> String {
    format!("[{s}]")
}

#[tokio::test]
async fn a_nested_flow_that_asks_suspends_the_outer_run() {
    let approve = human::ask("approve", |x: &u32| format!("ship {x}?"));
    let release = flow! { #[flow(name = "release")] (approve) => ship };
    let f =
        flow! { #[flow(name = "outer")] prepare => (release) => wrap }.with_input(human::Suspend);
    let store = MemoryStore::default();
    let run = f.durable(store.clone()).run(1).await;
    assert!(run.error.is_none(), "{:?}", run.error);
    let [q] = run.suspended.as_slice() else {
        panic!("{:?}", run.suspended)
    };
    assert_eq!(
        (q.question.as_str(), q.prompt.as_str()),
        ("release/approve", "ship 2?")
    );
    assert_eq!(
        store
            .load(run.run_id)
            .await
            .unwrap()
            .unwrap()
            .document
            .status,
        RunStatus::Suspended
    );
    assert_eq!(AFTER_APPROVAL.load(Ordering::SeqCst), 0);

    let done = f
        .durable(store.clone())
        .answer(run.run_id, "yes")
        .await
        .unwrap();
    assert_eq!(done.output.as_deref(), Some("[2 yes]"), "{:?}", done.error);
    assert_eq!(AFTER_APPROVAL.load(Ordering::SeqCst), 1);
}

#[step]
fn merge(a: Answer<Answer<u8>>) -> String {
    format!("{}+{}", a.value.text, a.text)
}

#[tokio::test]
async fn a_nested_flow_asking_twice_keeps_its_first_answer_across_replays() {
    // The nested flow runs whole on replay: its first question must get its answer again, not
    // be asked again.
    let first = human::ask("first", |_: &u8| "first?".to_string());
    let second = human::ask("second", |a: &Answer<u8>| {
        format!("second after {}?", a.text)
    });
    let inner = flow! { #[flow(name = "inner")] (first) => (second) => merge };
    let f = flow! { #[flow(name = "twice")] (inner) }.with_input(human::Suspend);
    let store = MemoryStore::default();
    let run = f.durable(store.clone()).run(0).await;
    assert_eq!(run.suspended[0].question, "inner/first");
    let r = f
        .durable(store.clone())
        .answer(run.run_id, "A")
        .await
        .unwrap();
    assert_eq!(r.suspended[0].question, "inner/second");
    assert_eq!(r.suspended[0].prompt, "second after A?");
    let r = f
        .durable(store.clone())
        .answer(run.run_id, "B")
        .await
        .unwrap();
    assert_eq!(r.output.as_deref(), Some("A+B"), "{:?}", r.error);
}

#[step]
async fn count_approvals(a: Answer<u32>) -> u32 {
    a.value + u32::from(a.text == "yes")
}

#[tokio::test]
async fn a_question_in_a_loop_takes_each_answer_once() {
    let approve = human::ask("approve", |x: &u32| format!("approve at {x}?"));
    let f = flow! { #[flow(name = "approvals")] loop(max = 3) { (approve) => count_approvals } }
        .with_input(human::Suspend);
    let store = MemoryStore::default();
    let mut r = f.durable(store.clone()).run(0).await;
    let mut prompts = Vec::new();
    for answer in ["yes", "no", "yes"] {
        prompts.push(r.suspended[0].prompt.clone());
        r = f
            .durable(store.clone())
            .answer(r.run_id, answer)
            .await
            .unwrap();
    }
    assert_eq!(prompts, ["approve at 0?", "approve at 1?", "approve at 1?"]);
    assert_eq!(r.output, Some(2), "{:?} {:?}", r.error, r.suspended);
}
