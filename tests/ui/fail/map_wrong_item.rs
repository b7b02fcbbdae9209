use orchflow::{flow, step};

#[derive(Clone)]
struct Page;

#[step]
async fn ids(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[step]
async fn enrich(_p: Page) -> u32 {
    1
}

fn main() {
    let _f = flow! { ids => map(enrich, limit = 8) };
}
