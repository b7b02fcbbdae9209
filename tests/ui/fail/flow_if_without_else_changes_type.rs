use orchflow::{flow, step};

#[step]
async fn start(x: u32) -> u32 { x }
#[step]
async fn render(x: u32) -> String { x.to_string() }

fn big(x: &u32) -> bool { *x > 3 }

fn main() {
    let _f = flow! { start => if big { render } };
}
