use orchflow::step;

#[step(inline)]
async fn plan(x: u32) -> u32 {
    x
}

fn main() {}
