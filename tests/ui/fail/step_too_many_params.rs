use orchflow::{step, StepContext};

#[step]
async fn plan(x: u32, ctx: &StepContext, extra: bool) -> u32 {
    let _ = (ctx, extra);
    x
}

fn main() {}
