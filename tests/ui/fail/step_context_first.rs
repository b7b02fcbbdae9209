use orchflow::{StepContext, flow, step};

#[step]
async fn start(x: u32) -> u32 { x }

#[step]
async fn plan(_ctx: &StepContext, x: u32) -> u32 { x }

fn main() {
    // One error, at the context: the hand-off `start => plan` is not reported as well.
    let _f = flow! { start => plan };
}
