use orchflow::{flow, step};

#[step]
async fn ids(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[step]
async fn enrich(x: u32) -> u32 {
    x
}

fn main() {
    let _a = flow! { ids => map(enrich) };
    let _b = flow! { ids => map(enrich, limit = 0) };
    let _c = flow! { ids => map(enrich, max = 2) };
}
