use orchflow::step;

#[step]
async fn plan(x: u32, y: u32) -> u32 {
    x + y
}

fn main() {}
