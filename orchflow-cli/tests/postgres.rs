//! The `orchflow` binary and the server over PostgreSQL (the server of
//! `ORCHFLOW_POSTGRES_URL`, in a schema of the test's own, dropped at the end). Without the
//! variable the test says it was skipped and passes; under CI (`CI` set) it fails instead.

mod common;

use orchflow::{PostgresOptions, PostgresStore};
use orchflow_cli::Bundle;
use orchflow_cli::serve::{ServeOptions, Source, bind};
use orchflow_cli::store::Store;
use orchflow_postgres::tokio_postgres;

/// The server's connection string, or `None` (skipped) outside CI.
fn server() -> Option<String> {
    match std::env::var("ORCHFLOW_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => {
            panic!("ORCHFLOW_POSTGRES_URL is not set, and CI is: the PostgreSQL tests must run")
        }
        _ => {
            println!("skipped: ORCHFLOW_POSTGRES_URL is not set (eval \"$(.ci/postgres)\")");
            None
        }
    }
}

/// `postgres://user@host:port/dbname?schema=…` from `key=value` pairs (as `.ci/postgres`
/// writes them) or a URL.
fn url_of(conninfo: &str, schema: &str) -> String {
    if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
        let sep = if conninfo.contains('?') { '&' } else { '?' };
        return format!("{conninfo}{sep}schema={schema}");
    }
    let value = |key: &str| {
        conninfo
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches('\'').to_string())
    };
    let user = value("user").map(|u| format!("{u}@")).unwrap_or_default();
    let host = value("host").unwrap_or_else(|| "localhost".to_string());
    let port = value("port").map(|p| format!(":{p}")).unwrap_or_default();
    let db = value("dbname").unwrap_or_default();
    format!("postgres://{user}{host}{port}/{db}?schema={schema}")
}

/// Drops the schema when the test ends, however it ends.
struct DropSchema {
    conninfo: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let (conninfo, schema) = (self.conninfo.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.schema);
        }
    }
}

async fn orchflow(args: &[&str]) -> (i32, String, String) {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchflow"))
        .args(args)
        .env_remove("ORCHFLOW_STORE")
        .output()
        .await
        .expect("run orchflow");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_server_over_postgres() {
    let Some(conninfo) = server() else { return };
    let schema = format!("cli_{}", uuid::Uuid::new_v4().simple());
    let _cleanup = DropSchema {
        conninfo: conninfo.clone(),
        schema: schema.clone(),
    };
    let store = PostgresStore::connect_with(&conninfo, PostgresOptions::new().schema(&schema))
        .await
        .expect("connect");
    let (completed, failed, suspended) = common::make_runs(&store).await;
    drop(store);
    let url = url_of(&conninfo, &schema);

    let (code, list, err) = orchflow(&["--store", &url, "runs", "list"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(list.lines().count(), 5, "header, 3 runs, totals: {list}");
    assert!(
        list.contains(&suspended.to_string()) && list.contains("suspended"),
        "{list}"
    );

    let (code, shown, err) =
        orchflow(&["--store", &url, "runs", "show", &failed.to_string()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("attempts (3, 1 session)"), "{shown}");

    let id = suspended.to_string();
    let (code, out, err) = orchflow(&["--store", &url, "runs", "answer", &id, "yes"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("queued"), "{out}");
    let (code, out, err) =
        orchflow(&["--store", &url, "runs", "cancel", &failed.to_string()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cancelled (it was failed)"), "{out}");
    let (code, printed, err) =
        orchflow(&["--store", &url, "runs", "export", &completed.to_string()]).await;
    assert_eq!(code, 0, "{err}");
    let bundle = Bundle::from_json(&printed, "stdout").expect("bundle");
    assert_eq!(
        bundle.graph.map(|g| g.name.to_string()),
        Some("pricing".into())
    );

    // The server over the same schema: counts, a run's document read through a listing, and
    // the recorded events.
    let store = Store::open(&url).await.expect("open");
    let server = bind(
        Source::Store(store),
        ServeOptions::new("127.0.0.1:0".parse().expect("addr")),
    )
    .await
    .expect("bind");
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let text = client
        .get(format!("http://{addr}/api/runs"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("body");
    let listing: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(listing["counts"]["queued"], 1, "{listing}");
    assert_eq!(listing["counts"]["cancelled"], 1, "{listing}");
    assert_eq!(listing["counts"]["completed"], 1, "{listing}");
    let text = client
        .get(format!("http://{addr}/api/runs/{suspended}"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("body");
    let run: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(run["document"]["status"], "queued", "{run}");
    assert_eq!(run["graph"]["name"], "publish", "{run}");
    let events = client
        .get(format!("http://{addr}/api/runs/{completed}/events"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("the stream ends: the run finished");
    assert!(events.starts_with("event: document\n"), "{events}");
    assert!(events.contains("id: 1\n") && events.ends_with("event: end\ndata: {}\n\n"));
    let _ = stop.send(());
    serving.await.expect("task").expect("served");
}
