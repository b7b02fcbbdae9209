use orchflow::{flow, step};

#[step]
async fn plan(x: u32) -> u32 { x }
#[step]
async fn docs(x: &u32) -> String { x.to_string() }
#[step]
async fn market(x: &u32) -> u64 { u64::from(*x) }
#[step]
fn synthesize(parts: (String, String)) -> String { parts.0 + &parts.1 }

fn main() {
    let _f = flow! { plan => [docs, market] => synthesize };
}
