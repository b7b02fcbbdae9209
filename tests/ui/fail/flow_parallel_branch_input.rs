use orchflow::{flow, step};

#[step]
async fn plan(x: u32) -> u32 { x }
#[step]
async fn docs(x: &u32) -> u32 { *x }
#[step]
async fn market(x: &String) -> usize { x.len() }

fn main() {
    let _f = flow! { plan => [docs, market] };
}
