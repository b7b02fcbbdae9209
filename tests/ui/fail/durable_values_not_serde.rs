use orchflow::{MemoryStore, flow, step};

struct Draft;

#[step]
async fn write(x: u32) -> Draft {
    let _ = x;
    Draft
}

#[step]
async fn count(_d: &Draft) -> u32 {
    1
}

#[tokio::main]
async fn main() {
    let f = flow! { write => count };
    let _ = f.run(1).await; // fine: a plain run saves nothing
    let _ = f.durable(MemoryStore::default()).run(1).await;
}
