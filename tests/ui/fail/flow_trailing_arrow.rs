use orchflow::{flow, step};

#[step]
async fn start(x: u32) -> u32 { x }

fn main() {
    let _f = flow! { start => };
}
