use orchflow::step;

// One error each: `delay` is not also reported as having no effect without `retry`.
#[step(retries = 3, delay = "1s")]
async fn a(x: u32) -> u32 { x }

#[step(retry = "3", delay = "1s")]
async fn b(x: u32) -> u32 { x }

fn main() {}
