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
    // One error, at `.durable`, naming `Draft` and where it is; not one per method.
    let durable = f.durable(MemoryStore::default());
    let first = durable.run(1).await;
    let _ = durable.resume(first.run_id).await;
    let _ = durable.answer(first.run_id, "yes").await;
}
