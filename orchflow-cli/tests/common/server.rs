//! A real `orchflow serve` on 127.0.0.1:0 in the test's process, and a client's two calls.

use orchflow_cli::serve::{ServeOptions, Source, bind};
use orchflow_cli::store::Store;
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;

/// A running server; dropped, it stops.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub async fn start(source: Source, options: ServeOptions) -> Running {
    let server = bind(source, options).await.expect("bind");
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
    }
}

pub fn local() -> ServeOptions {
    ServeOptions::new("127.0.0.1:0".parse().expect("addr"))
}

pub async fn open(path: &std::path::Path) -> Store {
    Store::open(&format!("sqlite:{}", path.display()))
        .await
        .expect("open")
}

pub async fn get(client: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    let r = client.get(url).send().await.expect("send");
    let status = r.status();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub async fn post(client: &reqwest::Client, url: &str, body: &str) -> (StatusCode, Value) {
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = r.status();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
