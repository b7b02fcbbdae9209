use orchflow::{flow, step};

#[step]
async fn a(x: u32) -> u32 { x }

fn big(x: &u32) -> bool { *x > 3 }

fn main() {
    let _f = flow! { a => if big { } else { a } };
}
