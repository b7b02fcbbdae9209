//! `store::ops`: answering and requeueing a stored run with no flow code, as the CLI and the
//! viewer do, and what each refuses.

use orchflow::store::{CheckpointStore, RunQueue, RunStatus, ops};
use orchflow::{MemoryStore, ResumeError, flow, human, step};

#[step]
async fn inc(x: u32) -> u32 {
    x + 1
}

#[tokio::test]
async fn requeue_refuses_what_cannot_continue() {
    let store = MemoryStore::default();
    let done = flow! { inc }.durable(store.clone()).run(1).await;
    assert!(matches!(
        ops::requeue(&store, done.run_id).await,
        Err(ResumeError::Finished(id)) if id == done.run_id
    ));

    let a = human::ask("a", |x: &u32| format!("a {x}?"));
    let b = human::ask("b", |x: &u32| format!("b {x}?"));
    let two = flow! { [(a.clone()), (b)] }.with_input(human::Suspend);
    let waiting = two.durable(store.clone()).run(1).await;
    match ops::requeue(&store, waiting.run_id).await {
        Err(ResumeError::StillWaiting { pending, .. }) => assert_eq!(pending, ["0/a", "1/b"]),
        other => panic!("expected StillWaiting, got {other:?}"),
    }
    // One answer: still waiting on the other; both: the run is queued.
    assert!(matches!(
        ops::answer(&store, waiting.run_id, None, "x").await,
        Err(ResumeError::AmbiguousAnswer { .. })
    ));
    assert!(matches!(
        ops::answer(&store, waiting.run_id, Some("c"), "x").await,
        Err(ResumeError::UnknownQuestion { .. })
    ));
    ops::answer(&store, waiting.run_id, Some("a"), "yes")
        .await
        .unwrap();
    let doc = store.load(waiting.run_id).await.unwrap().unwrap().document;
    assert_eq!(doc.status, RunStatus::Queued);
    assert_eq!(doc.pending.len(), 1);
    ops::answer(&store, waiting.run_id, Some("b"), "no")
        .await
        .unwrap();
    assert_eq!(
        ops::requeue(&store, waiting.run_id).await.unwrap(),
        RunStatus::Queued
    );
    let out = two
        .durable(store.clone())
        .resume(waiting.run_id)
        .await
        .unwrap();
    let (first, second) = out.output.unwrap();
    assert_eq!((first.text.as_str(), second.text.as_str()), ("yes", "no"));

    let again = flow! { (a) }
        .with_input(human::Suspend)
        .durable(store.clone())
        .run(3)
        .await;
    store.cancel(again.run_id).await.unwrap();
    assert!(matches!(
        ops::requeue(&store, again.run_id).await,
        Err(ResumeError::Cancelled(_))
    ));
    assert!(matches!(
        ops::answer(&store, again.run_id, None, "late").await,
        Err(ResumeError::Cancelled(_) | ResumeError::NotSuspended { .. })
    ));
    let unknown = orchflow::RunId::new_v4();
    assert!(matches!(
        ops::requeue(&store, unknown).await,
        Err(ResumeError::NotFound(_))
    ));
}
