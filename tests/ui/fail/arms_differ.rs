use orchflow::{flow, step};

#[step]
async fn draft(x: u32) -> u32 { x }
#[step]
async fn publish(x: u32) -> String { x.to_string() }
#[step]
async fn revise(x: u32) -> u64 { x as u64 }

fn short(x: &u32) -> bool { *x < 3 }

fn main() {
    let _f = flow! { draft => if short { publish } else { revise } };
}
