use orchflow::{flow, step};
#[step]
async fn a(x: u32) -> u32 { x + 1 }
#[tokio::test]
async fn one() {
    let f = flow! { a };
    let r = f.run(1).await;
    assert_eq!(r.output, Some(2));
}
