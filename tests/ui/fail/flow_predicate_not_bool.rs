use orchflow::{flow, step};

#[step]
async fn draft(x: u32) -> u32 { x }
#[step]
async fn publish(x: u32) -> u32 { x }

fn score(x: &u32) -> u32 { *x }

fn main() {
    let _f = flow! { draft => if score { publish } };
}
