use orchflow::step;
use std::rc::Rc;

#[step]
async fn hold_rc(x: u32) -> u32 {
    let counter = Rc::new(x);
    tokio::task::yield_now().await;
    *counter
}

fn main() {}
