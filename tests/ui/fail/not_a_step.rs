use orchflow::{flow, step};

#[step]
async fn draft(x: u32) -> u32 { x }

async fn publish(x: u32) -> u32 { x }

fn main() {
    let _f = flow! { draft => publish };
}
