use orchflow::{flow, step};

#[derive(Clone)]
struct Page(u32);

#[step]
async fn pages(n: u32) -> Vec<Page> {
    (0..n).map(Page).collect()
}

#[step]
async fn enrich(p: Page) -> u32 {
    p.0 + 1
}

#[step]
async fn peek(p: &Page) -> u32 {
    p.0
}

#[step]
async fn total(v: Vec<u32>) -> u32 {
    v.iter().sum()
}

const LIMIT: u32 = 4;

fn main() {
    // By value, by reference, a borrowed collection in a branch, a const limit, a pipeline.
    let _f = flow! {
        pages => [map(enrich, limit = 8), map(peek => total_of_one, limit = LIMIT) => total]
    };
}

#[step]
async fn total_of_one(x: u32) -> u32 {
    x
}
