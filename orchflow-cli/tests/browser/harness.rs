//! The browser tests' machinery: Chromium driven through chromedriver (both found on this
//! machine, or the tests skipped, except under CI), the real `orchflow serve` on a store file
//! (the generic binary, or in this process with a build's flows), waits on page conditions
//! with deadlines, and screenshots kept as artifacts.
//!
//! Invariants:
//! * every process started here (chromedriver, and through it Chromium; the server) is
//!   stopped when its value is dropped, a failing test included, and so is the in-process
//!   server of [`AppServer`];
//! * chromedriver and the server listen on free loopback ports; Chromium runs headless with a
//!   fresh temporary profile, and with `--no-sandbox` only when the tests run as root (where
//!   Chromium's sandbox refuses to start);
//! * a wait polls the page and fails with what it last saw once its deadline passes: no
//!   assertion rests on a fixed sleep.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The programs the browser tests drive.
pub struct Tools {
    chromedriver: PathBuf,
    chromium: Option<PathBuf>,
}

/// Whether the tests run under CI (`CI` set and not empty), where a missing browser fails
/// the tests instead of skipping them.
fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The first executable called `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A program named by the environment variable `var` (which must then exist), else the
/// first of `names` on `PATH`.
fn find(var: &str, names: &[&str]) -> Result<Option<PathBuf>, String> {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            if is_executable(&p) {
                Ok(Some(p))
            } else {
                Err(format!("{var}={} is not an executable file", p.display()))
            }
        }
        _ => Ok(names.iter().find_map(|n| on_path(n))),
    }
}

/// chromedriver (`ORCHFLOW_CHROMEDRIVER`, else `chromedriver` on `PATH`) and Chromium
/// (`ORCHFLOW_CHROMIUM`, else `chromium`, `chromium-browser` or `google-chrome` on `PATH`;
/// chromedriver is told its path only when the variable names it). `None`, with a message
/// on standard error, when one is missing: the caller skips its test. Under CI a missing
/// program fails the test: CI never skips the browser tests.
pub fn tools(test: &str) -> Option<Tools> {
    let chromedriver = find("ORCHFLOW_CHROMEDRIVER", &["chromedriver"]);
    let chromium = find(
        "ORCHFLOW_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let missing = match (&chromedriver, &chromium) {
        (Ok(Some(_)), Ok(Some(_))) => None,
        (Err(e), _) | (_, Err(e)) => Some(e.clone()),
        (Ok(None), _) => Some("chromedriver is not installed (no ORCHFLOW_CHROMEDRIVER, none on PATH)".to_string()),
        (_, Ok(None)) => Some("Chromium is not installed (no ORCHFLOW_CHROMIUM; no chromium, chromium-browser or google-chrome on PATH)".to_string()),
    };
    if let Some(why) = missing {
        if under_ci() {
            panic!(
                "{why}, and CI is set: the browser tests must run in CI (.ci/run installs the \
                 Debian packages chromium and chromium-driver with .ci/chromium)"
            );
        }
        eprintln!(
            "skipping browser test {test}: {why}. Install the Debian packages chromium and \
             chromium-driver (`eval \"$(bash .ci/chromium)\"`) to run it."
        );
        return None;
    }
    let chromedriver = chromedriver.ok().flatten()?;
    let chromium = if std::env::var_os("ORCHFLOW_CHROMIUM").is_some() {
        chromium.ok().flatten()
    } else {
        None
    };
    Some(Tools {
        chromedriver,
        chromium,
    })
}

/// A free TCP port on 127.0.0.1 (bound, read and released: another program may take it in
/// between, which the callers notice and retry).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

/// Waits until something accepts connections on `addr` or `deadline` passes.
fn wait_listening(addr: SocketAddr, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Whether the tests run as root (Chromium's sandbox refuses root).
fn running_as_root() -> bool {
    // The effective uid of this process, from the kernel's own record.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The directory screenshots are kept in: `target/browser-artifacts/` (created).
pub fn artifacts_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .to_path_buf();
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/browser-artifacts");
    dir
}

/// A headless Chromium session through a chromedriver of its own.
pub struct Browser {
    pub client: Client,
    driver: Child,
    port: u16,
    session: String,
    closed: bool,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session with a fresh
    /// temporary profile and a 1440×1040 window.
    pub async fn start(tools: &Tools) -> Browser {
        let profile = tempfile::tempdir().expect("a temporary Chromium profile");
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = profile.path().join(format!("chromedriver-{port}.log"));
            let mut driver = Command::new(&tools.chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.chromedriver.display()));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if !wait_listening(addr, Instant::now() + Duration::from_secs(15)) {
                let _ = driver.kill();
                let _ = driver.wait();
                last_error = format!(
                    "chromedriver did not listen on {addr} within 15 s: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                continue;
            }
            let mut args = vec![
                "--headless=new".to_string(),
                "--disable-gpu".to_string(),
                "--disable-dev-shm-usage".to_string(),
                "--no-first-run".to_string(),
                "--no-default-browser-check".to_string(),
                "--disable-extensions".to_string(),
                "--hide-scrollbars".to_string(),
                "--window-size=1440,1040".to_string(),
                format!(
                    "--user-data-dir={}",
                    profile.path().join("profile").display()
                ),
            ];
            if running_as_root() {
                args.push("--no-sandbox".to_string());
            }
            let mut chrome = json!({ "args": args });
            if let Some(bin) = &tools.chromium {
                chrome["binary"] = json!(bin);
            }
            let mut caps = serde_json::Map::new();
            caps.insert("browserName".into(), json!("chrome"));
            caps.insert("goog:chromeOptions".into(), chrome);
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => {
                    let session = client.session_id().await.ok().flatten().unwrap_or_default();
                    return Browser {
                        client,
                        driver,
                        port,
                        session,
                        closed: false,
                        _profile: profile,
                    };
                }
                Err(e) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    last_error = format!(
                        "no Chromium session through chromedriver: {e}; chromedriver's log: {}",
                        tail(&std::fs::read_to_string(&log).unwrap_or_default(), 3000)
                    );
                }
            }
        }
        panic!("{last_error}");
    }

    /// Ends the session (Chromium exits) and stops chromedriver.
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        self.closed = true;
    }

    /// Navigates to `url` from a blank page, so that even a change of hash only is a fresh
    /// page load.
    pub async fn open(&self, url: &str) {
        self.client
            .goto("about:blank")
            .await
            .expect("open about:blank");
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The first element `css` selects; fails when there is none.
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Clicks the first element `css` selects, as a user would (scrolled into view, at its
    /// centre), once it is displayed and enabled: fails when it is not within 10 s.
    ///
    /// The page replaces parts of itself while it runs (the event log repaints its rows on the
    /// next frame after a filter or position change, the details panel and the lineage line
    /// are mounted anew): an element found just before such a repaint is stale by the time of
    /// the click, and is then found again, once.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut found_again = false;
        loop {
            let el = self.interactable(css, deadline).await;
            match el.click().await {
                Ok(()) => return,
                Err(e) if e.is_stale_element_reference() && !found_again => found_again = true,
                Err(e) => {
                    let shot = self.screenshot(&format!("click-{}", slug(css))).await;
                    panic!("click {css}: {e}; screenshot {}", shot.display());
                }
            }
        }
    }

    /// The first element `css` selects once it is displayed and enabled (polled, like
    /// [`wait_for`](Self::wait_for)); fails with what it last saw once `deadline` passes.
    async fn interactable(&self, css: &str, deadline: Instant) -> fantoccini::elements::Element {
        loop {
            let seen = match self.client.find(Locator::Css(css)).await {
                Ok(el) => match (el.is_displayed().await, el.is_enabled().await) {
                    (Ok(true), Ok(true)) => return el,
                    (displayed, enabled) => {
                        format!("found, displayed: {displayed:?}, enabled: {enabled:?}")
                    }
                },
                Err(e) => format!("not found: {e}"),
            };
            if Instant::now() >= deadline {
                let shot = self.screenshot(&format!("click-{}", slug(css))).await;
                panic!(
                    "click {css}: not displayed and enabled in time ({seen}); screenshot {}",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Types `text` into the first element `css` selects.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.element(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Empties the input `css` selects.
    pub async fn clear(&self, css: &str) {
        self.element(css)
            .await
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    }

    /// Chooses the option of value `value` in the `<select>` `css` selects.
    pub async fn select(&self, css: &str, value: &str) {
        self.element(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value:?} in {css}: {e}"));
    }

    /// Polls `script` until it returns something other than `null`, `false`, `0` or `""`, and
    /// returns that; fails with `what` and the last value once `timeout` passes.
    pub async fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(script, vec![]).await;
            if truthy(&v) {
                return v;
            }
            if Instant::now() >= deadline {
                let shot = self.screenshot(&format!("timeout-{}", slug(what))).await;
                panic!(
                    "timed out after {timeout:?} waiting for {what}; the page last gave {v}; \
                     its screenshot: {}",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Saves a PNG screenshot of the window as `target/browser-artifacts/<name>.png`, prints
    /// its path and returns it.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("take a screenshot");
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed && !self.session.is_empty() {
            // A test that failed before close(): end the session synchronously, so that
            // chromedriver closes Chromium rather than leaving it behind.
            let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    s,
                    "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                    self.session, self.port
                );
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect()
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..=s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    &s[start..]
}

/// The real `orchflow serve` (over a SQLite file, or showing one bundle), on a free loopback
/// port.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
}

impl Server {
    /// Starts `orchflow --store sqlite:<db> serve --bind 127.0.0.1:0` and reads the address it
    /// prints.
    pub fn start(db: &Path) -> Server {
        let store = format!("sqlite:{}", db.display());
        Server::spawn(&["--store", &store, "serve", "--bind", "127.0.0.1:0"])
    }

    /// Starts `orchflow serve --bundle <file> --bind 127.0.0.1:0`: one exported run, no store.
    pub fn bundle(file: &Path) -> Server {
        let file = file.display().to_string();
        Server::spawn(&["serve", "--bundle", &file, "--bind", "127.0.0.1:0"])
    }

    fn spawn(args: &[&str]) -> Server {
        let bin = env!("CARGO_BIN_EXE_orchflow");
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stdout = child.stdout.take().expect("the server's stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(at) = line.find("http://") {
                        let url: String = line[at..]
                            .chars()
                            .take_while(|c| !c.is_whitespace())
                            .collect();
                        let base = url.trim_end_matches('/').to_string();
                        return Server { child, base };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("`orchflow serve` printed no address within 30 s; it printed: {seen:?}");
                }
            }
        }
    }

    /// The page at `hash` (e.g. `#/runs`).
    pub fn page(&self, hash: &str) -> String {
        format!("{}/{hash}", self.base)
    }
}

/// `orchflow serve` with a build's flows, in this process: what an application's own binary
/// (made with `orchflow_cli::App` and a registry of its flows) serves, so that replay and fork
/// run real flow code. Over a SQLite file, on a free loopback port; stopped when dropped.
pub struct AppServer {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), orchflow_cli::serve::ServeError>>,
}

impl AppServer {
    /// Binds the server of the runs in `db` with `flows` and serves it on this runtime.
    pub async fn start(db: &Path, flows: orchflow::registry::Registry) -> AppServer {
        use orchflow_cli::serve::{ServeOptions, Source, bind};
        let url = format!("sqlite:{}", db.display());
        let store = orchflow_cli::open(Some(&url))
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        let options = ServeOptions::new(SocketAddr::from(([127, 0, 0, 1], 0))).flows(flows);
        let server = bind(Source::Store(store), options)
            .await
            .unwrap_or_else(|e| panic!("bind the server: {e}"));
        let base = format!("http://{}", server.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async move {
            let _ = stopped.await;
        }));
        AppServer {
            base,
            stop: Some(stop),
            task,
        }
    }

    /// The page at `hash` (e.g. `#/runs`).
    pub fn page(&self, hash: &str) -> String {
        format!("{}/{hash}", self.base)
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// Runs `orchflow <args>` to its end and returns its standard output; fails unless it exits 0.
pub fn orchflow(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_orchflow"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run orchflow {args:?}: {e}"));
    assert!(
        out.status.success(),
        "orchflow {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
