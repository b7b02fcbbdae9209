//! The macros work in a crate that depends on `orchflow-core` alone (as this one does), when the
//! crate root aliases it: the expansions' `::orchflow::…` paths then resolve to `orchflow_core`.

extern crate orchflow_core as orchflow;

use orchflow_core::{flow, step};

#[step]
async fn triple(x: u32) -> u32 {
    x * 3
}

#[tokio::test]
async fn runs() {
    let f = flow! { triple => triple };
    assert_eq!(f.run(1).await.output, Some(9));
}
