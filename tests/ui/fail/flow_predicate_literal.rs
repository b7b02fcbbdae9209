use orchflow::{flow, step};

#[step]
async fn a(x: u32) -> u32 { x }

fn main() {
    let _f = flow! { a => if "yes" { a } };
}
