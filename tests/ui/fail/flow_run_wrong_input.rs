use orchflow::{flow, step};

#[step]
async fn plan(x: u32) -> u32 { x }

async fn go() {
    let f = flow! { plan };
    let _ = f.run("not a number".to_string()).await;
}

fn main() {
    let _ = go();
}
