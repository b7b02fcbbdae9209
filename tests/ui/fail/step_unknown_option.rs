use orchflow::step;

#[step(retries = 2)]
async fn plan(x: u32) -> u32 {
    x
}

fn main() {}
