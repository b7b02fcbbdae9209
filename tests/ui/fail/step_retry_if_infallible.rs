use orchflow::step;

fn transient(_: &std::io::Error) -> bool {
    true
}

#[step(retry = 1, retry_if = transient)]
async fn plan(x: u32) -> u32 {
    x
}

fn main() {}
