//! Typed questions (`human::ask_typed`): the answer's schema travels with the question, an
//! answer that does not fit is refused (a provider is asked again; a suspended run suspends on
//! the question again with the reason, and takes the next answer), and a fitting one is read
//! as the type.

use orchflow::human::{self, TypedAnswer};
use orchflow::store::{CheckpointStore, RunStatus, ops};
use orchflow::testing::ScriptedInput;
use orchflow::{FlowError, MemoryStore, StepError, flow};

/// What a person answers: the schema comes from the derive.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Budget {
    amount: u32,
    approved: bool,
}

fn budget() -> human::AskTyped<String, Budget, impl Fn(&String) -> String + Clone> {
    human::ask_typed::<Budget, _, _>("budget", |p: &String| format!("budget for {p}?"))
}

#[tokio::test]
async fn a_suspended_run_refuses_an_answer_that_does_not_fit_and_takes_the_next() {
    let store = MemoryStore::default();
    let f = flow! { (budget()) }.with_input(human::Suspend);
    let first = f.durable(store.clone()).run("launch".to_string()).await;
    let doc = store.load(first.run_id).await.unwrap().unwrap().document;
    assert_eq!(doc.status, RunStatus::Suspended);
    let schema = doc.pending[0]
        .schema
        .as_deref()
        .expect("the answer's schema");
    assert_eq!(
        schema["required"],
        serde_json::json!(["amount", "approved"])
    );
    assert_eq!(doc.pending[0].error, None);

    ops::answer(&store, first.run_id, None, r#"{"amount": "lots"}"#)
        .await
        .unwrap();
    let again = f.durable(store.clone()).resume(first.run_id).await.unwrap();
    assert!(again.output.is_none());
    let doc = store.load(first.run_id).await.unwrap().unwrap().document;
    assert_eq!(doc.status, RunStatus::Suspended, "asked again");
    let error = doc.pending[0].error.as_deref().expect("why it was refused");
    assert!(
        error.contains("does not fit") && error.contains("lots"),
        "{error}"
    );

    // The refused answer is retired: the next answer is journaled and taken.
    ops::answer(
        &store,
        first.run_id,
        None,
        r#"{"amount": 1200, "approved": true}"#,
    )
    .await
    .unwrap();
    let done = f.durable(store.clone()).resume(first.run_id).await.unwrap();
    let a: TypedAnswer<String, Budget> = done.output.expect("completed");
    assert_eq!(
        a.answer,
        Budget {
            amount: 1200,
            approved: true
        }
    );
    assert_eq!(a.value, "launch");
}

#[tokio::test]
async fn a_provider_is_asked_again_then_the_step_fails() {
    let f = flow! { (budget()) }.with_input(ScriptedInput::new(["no", "{}", "[1]"]));
    let r = f.run("x".to_string()).await;
    let Some(FlowError::Step {
        source: StepError::Failed(e),
        ..
    }) = &r.error
    else {
        panic!("expected a failed step, got {:?}", r.error)
    };
    let refused = e
        .downcast_ref::<human::HumanError>()
        .expect("a human error");
    assert!(
        matches!(refused, human::HumanError::Refused { question, reason } if question == "budget" && reason.contains("[1]")),
        "{refused}"
    );
}
