// Several independent mistakes are reported together, each at its own token.
use orchflow::step;

#[step(retry = "two", delay = 100, jitter = 2.5, timeout = "soon")]
async fn plan(x: u32) -> u32 {
    x
}

fn main() {}
