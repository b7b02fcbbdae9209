//! The macros work in a crate that depends on `orchflow-core` alone (as this one does), with the
//! `crate = orchflow_core` option and no `orchflow` in scope.

use orchflow_core::{flow, step};

#[step(crate = orchflow_core)]
async fn double(x: u32) -> u32 {
    x * 2
}

#[step(crate = orchflow_core, retry = 1)]
fn describe(x: &u32) -> String {
    format!("got {x}")
}

#[tokio::test]
async fn runs() {
    let f = flow! { #[flow(crate = orchflow_core)] double => describe };
    assert_eq!(f.run(21).await.output.as_deref(), Some("got 42"));
}
