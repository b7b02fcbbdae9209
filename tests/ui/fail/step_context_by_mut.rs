use orchflow::{step, StepContext};

#[step]
async fn a(x: u32, ctx: &mut StepContext) -> u32 {
    let _ = ctx;
    x
}

fn main() {}
