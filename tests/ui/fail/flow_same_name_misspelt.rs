use orchflow::{flow, step};

#[step]
async fn plan(x: u32) -> u32 { x }

fn main() {
    // One error: the name check between the steps does not add its own.
    let _f = flow! { plan => pln => plan };
}
