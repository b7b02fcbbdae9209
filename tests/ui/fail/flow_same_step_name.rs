use orchflow::{flow, step};

#[step(name = "fetch")]
async fn fetch_page(url: String) -> String {
    url
}

#[step(name = "fetch")]
async fn fetch_cached(url: &String) -> String {
    url.clone()
}

fn main() {
    // `fetch_page` twice is one step used twice: legal. `fetch_cached` is another step with
    // the same name: traces, events and checkpoints could not tell them apart.
    let _f = flow! { fetch_page => fetch_page => fetch_cached };
}
