//! `orchflow serve`: the offline viewer. One HTTP server with the viewer's assets compiled in
//! ([`assets`]) and the JSON API they read (`/api/…`, see the handlers in `api`), over a store
//! or over one exported [`Bundle`] with no store.
//!
//! Invariants:
//! * the server binds a loopback address unless it is given a token: [`bind`] refuses a
//!   non-loopback address without one ([`ServeError::TokenRequired`]);
//! * with a token, every `/api` request shows it (`Authorization: Bearer T`, or the cookie
//!   `orchflow_token` that visiting `/?token=T` sets) or is answered 401; without one, a
//!   loopback server answers only requests whose `Host` is a loopback name, so that a web page
//!   elsewhere cannot reach it through DNS rebinding;
//! * every `POST` carries `Content-Type: application/json` (415 otherwise) and a body of at
//!   most [`BODY_LIMIT`] bytes (413 otherwise); no CORS headers are ever sent;
//! * every error is JSON, `{"error": "message"}`, with 400, 401, 403 (a foreign `Host`), 404,
//!   409, 413, 415, 500 or 501 (replay and fork on a server with no flows);
//! * over a bundle the server changes nothing: every `POST` is 409;
//! * replay and fork run the flows of [`ServeOptions::flows`] (the build's, from
//!   [`App`](crate::App)); a server without flows answers them 501.

use crate::CliError;
use crate::bundle::Bundle;
use crate::store::Store;
use orchflow::registry::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod api;
pub mod assets;
mod auth;
mod replay;
mod sse;

/// The most a request body may hold: 64 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How often a server polls the store for a run's new entries while a client listens to its
/// events, by default.
pub const DEFAULT_POLL: Duration = Duration::from_millis(50);

/// What the server shows.
#[derive(Debug, Clone)]
pub enum Source {
    /// The runs of a store, live.
    Store(Store),
    /// One exported run, with no store.
    Bundle(Arc<Bundle>),
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The address to listen on (port 0: any free port).
    pub bind: SocketAddr,
    /// The token every API request must show, when set.
    pub token: Option<String>,
    /// How often the store is polled for a listened run's new entries (at most 50 ms is
    /// what the viewer expects).
    pub poll: Duration,
    /// The build's flows, which replay and fork run (none: those endpoints answer 501).
    pub flows: Registry,
}

impl ServeOptions {
    /// Options for `bind` with no token and the default poll interval.
    ///
    /// ```
    /// let o = orchflow_cli::serve::ServeOptions::new("127.0.0.1:0".parse().unwrap());
    /// assert!(o.token.is_none());
    /// ```
    pub fn new(bind: SocketAddr) -> Self {
        ServeOptions {
            bind,
            token: None,
            poll: DEFAULT_POLL,
            flows: Registry::new(),
        }
    }

    /// The same options with the build's `flows`, for replay and fork.
    ///
    /// ```
    /// use orchflow::registry::Registry;
    /// use orchflow::{flow, step};
    /// #[step] async fn plan(x: u32) -> u32 { x + 1 }
    /// let o = orchflow_cli::serve::ServeOptions::new("127.0.0.1:0".parse().unwrap())
    ///     .flows(Registry::new().register(flow! { #[flow(name = "launch")] plan }));
    /// assert_eq!(o.flows.names(), ["launch"]);
    /// ```
    pub fn flows(mut self, flows: Registry) -> Self {
        self.flows = flows;
        self
    }

    /// The same options with `token` required on every API request.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to listen on {addr} without a token: anyone who can reach it could read and change runs; pass --token T (or set ORCHFLOW_TOKEN), or bind 127.0.0.1"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// An empty token.
    #[error("the token is empty: give a non-empty --token")]
    EmptyToken,
    /// A token with characters a cookie cannot carry (spaces, `"`, `,`, `;`, `\`, control
    /// or non-ASCII characters).
    #[error(
        "the token has characters a cookie cannot carry: use letters, digits and punctuation other than \" , ; \\"
    )]
    TokenCharacters,
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("the server stopped: {0}")]
    Server(#[source] std::io::Error),
}

impl ServeError {
    /// Whether the error is the user's request's (a missing or empty token), not the
    /// machine's.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ServeError::TokenRequired { .. } | ServeError::EmptyToken
        )
    }
}

/// A bound server, not yet serving: its address is known ([`Server::local_addr`]) before it
/// runs, so tests and `--open` can use it.
pub struct Server {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    router: axum::Router,
    /// Set when the server stops: event streams end on it, so that the graceful shutdown
    /// does not wait for them forever.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The forks running in the background.
    background: api::Background,
}

/// How long a stopping server waits for the forks it runs in the background.
pub const FORK_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then ends the open event streams, finishes the
    /// requests in flight, and waits for the forks it started to end or suspend, for at most
    /// [`FORK_GRACE`]: a fork still running then is stopped between two saves, its claim given
    /// up, and `orchflow runs resume` continues it. Fails with [`ServeError::Server`] when
    /// accepting fails for good.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let stopping = self.stopping;
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stopping.send_replace(true);
            })
            .await
            .map_err(ServeError::Server);
        let mut forks =
            std::mem::take(&mut *self.background.lock().unwrap_or_else(|e| e.into_inner()));
        let ended = tokio::time::timeout(FORK_GRACE, async {
            while forks.join_next().await.is_some() {}
        })
        .await;
        if ended.is_err() {
            // Said on standard error, where it cannot panic; the runs stay in the store.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr().lock(),
                "orchflow serve: {} fork(s) still running after {} s were stopped; `orchflow runs resume` continues them",
                forks.len(),
                FORK_GRACE.as_secs()
            );
            forks.shutdown().await;
        }
        served
    }

    /// Serves until the process is stopped.
    pub async fn run(self) -> Result<(), ServeError> {
        self.run_until(std::future::pending()).await
    }
}

/// Binds the server that shows `source` with `options`. Fails with
/// [`ServeError::TokenRequired`] for a non-loopback address without a token,
/// [`ServeError::EmptyToken`], or [`ServeError::Bind`].
///
/// ```no_run
/// use orchflow_cli::serve::{bind, ServeOptions, Source};
/// # async fn f(store: orchflow_cli::Store) -> Result<(), orchflow_cli::serve::ServeError> {
/// let server = bind(Source::Store(store), ServeOptions::new("127.0.0.1:0".parse().unwrap())).await?;
/// println!("http://{}/", server.local_addr());
/// server.run().await
/// # }
/// ```
pub async fn bind(source: Source, options: ServeOptions) -> Result<Server, ServeError> {
    if let Some(token) = options.token.as_deref() {
        if token.is_empty() {
            return Err(ServeError::EmptyToken);
        }
        // RFC 6265's cookie-octet: what the token cookie can hold as it is.
        let cookie_octet =
            |b: u8| matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e);
        if !token.bytes().all(cookie_octet) {
            return Err(ServeError::TokenCharacters);
        }
    }
    if !options.bind.ip().is_loopback() && options.token.is_none() {
        return Err(ServeError::TokenRequired { addr: options.bind });
    }
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: options.bind,
        source,
    })?;
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let background = api::Background::default();
    let state = api::AppState::new(source, &options, addr, stop, background.clone());
    Ok(Server {
        listener,
        addr,
        router: api::router(state),
        stopping,
        background,
    })
}

/// `orchflow serve`: opens the store (or reads the bundle), binds, prints the address, opens
/// a browser when asked, and serves the build's `flows` until interrupted (Ctrl-C or SIGTERM),
/// then stops gracefully.
pub async fn serve_command(
    store: Option<&str>,
    args: crate::ServeArgs,
    flows: Registry,
) -> Result<(), CliError> {
    let source = match &args.bundle {
        Some(path) => Source::Bundle(Arc::new(Bundle::read(path)?)),
        None => Source::Store(crate::open(store).await?),
    };
    let what = match &source {
        Source::Store(s) => s.location().to_string(),
        Source::Bundle(b) => format!("the bundle of run {}", b.document.run_id),
    };
    let mut options = ServeOptions::new(args.bind).flows(flows);
    options.token = args.token.clone();
    let server = bind(source, options).await?;
    let addr = server.local_addr();
    let url = match &args.token {
        Some(token) => format!("http://{addr}/?token={}", percent_encode(token)),
        None => format!("http://{addr}/"),
    };
    {
        // `println!` would panic on a closed standard output; the server runs without it.
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "orchflow serve: {url} ({what}); Ctrl-C stops it");
        let _ = out.flush();
    }
    if args.open {
        open_browser(&url);
    }
    server.run_until(stop_signal()).await?;
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM; a signal that cannot be listened to
/// never completes (the server then runs until killed).
async fn stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Opens `url` in the desktop's browser; a failure is reported on standard error and
/// otherwise ignored (the address is printed anyway).
fn open_browser(url: &str) {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match command.spawn() {
        // Reaped in the background so that it leaves no zombie.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "could not open a browser ({e}); open {url} yourself"
            );
        }
    }
}

/// `text` with every byte outside `A-Za-z0-9-._~` percent-encoded, for a query value.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_percent_encoded_for_the_printed_url() {
        assert_eq!(percent_encode("a b&c=d~"), "a%20b%26c%3Dd~");
    }

    #[tokio::test]
    async fn a_public_address_needs_a_token() {
        let bundle: Source = Source::Bundle(Arc::new(crate::bundle::tests_support::bundle()));
        let public = ServeOptions::new("0.0.0.0:0".parse().unwrap_or_else(|e| panic!("{e}")));
        let e = bind(bundle.clone(), public.clone()).await.err();
        assert!(matches!(e, Some(ServeError::TokenRequired { .. })), "{e:?}");
        assert!(e.is_some_and(|e| e.is_usage()));
        let e = bind(bundle.clone(), public.clone().token("")).await.err();
        assert!(matches!(e, Some(ServeError::EmptyToken)), "{e:?}");
        for bad in ["a b", "a;b", "a,b", "a\"b", "é"] {
            let e = bind(bundle.clone(), public.clone().token(bad)).await.err();
            assert!(
                matches!(e, Some(ServeError::TokenCharacters)),
                "{bad}: {e:?}"
            );
        }
        let bound = bind(bundle, public.token("t")).await;
        assert!(bound.is_ok_and(|s| !s.local_addr().ip().is_loopback()));
    }
}
