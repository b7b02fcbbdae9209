//! Two different human questions with one name: every run of the flow fails before any step
//! runs, with a typed error. One question used twice is legal.

use orchflow::human::{self, Answer, DuplicateQuestion};
use orchflow::{FlowError, MemoryStore, StepError, flow, step};

#[step]
async fn draft(topic: String) -> String {
    format!("a post about {topic}")
}

#[step]
async fn text(a: Answer<String>) -> String {
    a.text
}

fn duplicate(r: &Option<FlowError>) -> Option<DuplicateQuestion> {
    match r {
        Some(FlowError::Step {
            source: StepError::Failed(e),
            ..
        }) => e.downcast_ref::<DuplicateQuestion>().copied(),
        _ => None,
    }
}

#[tokio::test]
async fn two_questions_with_one_name_fail_every_run() {
    let legal = human::ask("review", |d: &String| format!("legal ok: {d}?"));
    let brand = human::ask("review", |d: &String| format!("brand ok: {d}?"));
    let f = flow! { draft => (legal) => text => (brand) => text }
        .with_input(human::callback(|_| "yes".to_string()));
    for _ in 0..2 {
        let r = f.run("x".into()).await;
        assert!(!r.success);
        assert!(r.traces.is_empty(), "no step ran");
        assert_eq!(r.failed_step.as_deref(), Some("review"));
        assert_eq!(
            duplicate(&r.error),
            Some(DuplicateQuestion { name: "review" })
        );
    }
    let durable = f.durable(MemoryStore::default()).run("x".into()).await;
    assert_eq!(
        duplicate(&durable.error),
        Some(DuplicateQuestion { name: "review" })
    );

    // In parallel branches too: `answer_to(run, "review", …)` would be ambiguous.
    let a = human::ask("review", |d: &String| format!("a {d}?"));
    let b = human::ask("review", |d: &String| format!("b {d}?"));
    let g = flow! { [(a), (b)] };
    let r = g.run("x".into()).await;
    assert_eq!(
        duplicate(&r.error),
        Some(DuplicateQuestion { name: "review" })
    );
}

#[tokio::test]
async fn one_question_used_twice_is_legal() {
    let review = human::ask("review", |d: &String| format!("ok: {d}?"));
    let f = flow! { draft => (review.clone()) => text => (review) => text }
        .with_input(human::callback(|_| "yes".to_string()));
    let r = f.run("x".into()).await;
    assert!(r.success, "{:?}", r.error);
    assert_eq!(r.output.as_deref(), Some("yes"));

    // A nested flow asking the question, used twice: its positions differ from the outer ones.
    let inner_q = human::ask("review", |d: &String| format!("inner {d}?"));
    let inner = flow! { #[flow(name = "inner")] (inner_q) => text };
    let outer_q = human::ask("review", |d: &String| format!("outer {d}?"));
    let g = flow! { (inner.clone()) => (inner) => (outer_q) => text }
        .with_input(human::callback(|_| "yes".to_string()));
    let r = g.run("x".into()).await;
    assert!(r.success, "{:?}", r.error);
}
