use orchflow::{flow, step, StepContext};

struct A;
struct B;

#[step]
async fn first(x: u32, _ctx: &StepContext<A>) -> u32 { x }
#[step]
async fn second(x: u32, _ctx: &StepContext<B>) -> u32 { x }

fn main() {
    let _f = flow! { first => second };
}
