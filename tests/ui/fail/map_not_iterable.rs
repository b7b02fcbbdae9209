use orchflow::{flow, step};

#[step]
async fn one(n: u32) -> u32 {
    n
}

#[step]
async fn enrich(x: u32) -> u32 {
    x
}

fn main() {
    let _f = flow! { one => map(enrich, limit = 8) };
}
