use orchflow::{flow, step};

#[step]
async fn grow(x: u32) -> u32 { x + 1 }

const NONE: u32 = 0;

fn main() {
    let _f = flow! { grow => loop(max = NONE) { grow } };
}
