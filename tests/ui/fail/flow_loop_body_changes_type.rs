use orchflow::{flow, step};

#[step]
async fn start(x: u32) -> u32 { x }
#[step]
async fn render(x: u32) -> String { x.to_string() }

fn main() {
    let _f = flow! { start => loop(max = 3) { render } };
}
