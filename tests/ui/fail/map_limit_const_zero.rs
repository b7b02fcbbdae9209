use orchflow::{flow, step};

#[step]
async fn ids(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[step]
async fn enrich(x: u32) -> u32 {
    x
}

const NONE: u32 = 0;

fn main() {
    let _f = flow! { ids => map(enrich, limit = NONE) };
}
