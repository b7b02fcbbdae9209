use orchflow::{flow, step};

#[step]
async fn publish(x: u32) -> u32 { x }

fn main() {
    let _f = flow! { publsh };
}
