use orchflow::{flow, step};

#[step]
async fn plan(x: u32) -> u32 { x }

fn main() {
    let _f = flow! { plan => [] => plan };
}
