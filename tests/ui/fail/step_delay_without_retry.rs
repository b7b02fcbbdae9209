use orchflow::step;

#[step(delay = "100ms")]
async fn plan(x: u32) -> u32 {
    x
}

fn main() {}
