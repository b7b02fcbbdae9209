use orchflow::{flow, step};

#[step]
async fn a(x: u32) -> u32 { x }

fn main() {
    let _f = flow! { #[flow(retry = 2, delay = "1s", max_delay = "10ms")] a };
}
