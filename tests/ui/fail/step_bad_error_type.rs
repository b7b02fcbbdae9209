use orchflow::step;

struct NotAnError;

#[step]
async fn plan(x: u32) -> Result<u32, NotAnError> {
    if x > 1 { Ok(x) } else { Err(NotAnError) }
}

fn main() {}
