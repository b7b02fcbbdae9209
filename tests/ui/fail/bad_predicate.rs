use orchflow::{flow, step};

#[step]
async fn draft(x: u32) -> u32 { x }
#[step]
async fn publish(x: u32) -> u32 { x }

fn short(x: &String) -> bool { x.is_empty() }

fn main() {
    let _f = flow! { draft => if short { publish } };
}
