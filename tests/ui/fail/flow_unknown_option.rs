use orchflow::{flow, step};

#[step]
async fn start(x: u32) -> u32 { x }

fn main() {
    let _f = flow! { #[flow(title = "x", retry_if = start)] start };
}
