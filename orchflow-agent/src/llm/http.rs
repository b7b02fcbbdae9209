//! HTTP plumbing shared by [`OllamaClient`](super::OllamaClient) and
//! [`OpenAiClient`](super::OpenAiClient): timeouts, retries with exponential backoff and
//! `Retry-After`, typed errors, and the line-based streaming both wire formats use.
//!
//! The knobs live in [`HttpConfig`]; both clients' builders expose them one by one.

use super::{ChatChunk, ChatStream, LlmError};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Timeouts and retry policy of an HTTP LLM client.
///
/// A call is retried after connection failures, timeouts, a body that broke off, and HTTP
/// 429, 500, 502, 503 and 504, up to [`max_retries`](HttpConfig::max_retries) times. The wait
/// before retry `n` (1-based) is `backoff_base * 2^(n-1)`, capped at `backoff_max` (with
/// `jitter`, a random point in the upper half of that). On 429 and 503 a `Retry-After` header
/// (seconds, fractional seconds, or an IMF-fixdate HTTP date) replaces the backoff, capped at
/// `max_retry_after`. Other 4xx statuses are not retried.
///
/// ```
/// use orchflow_agent::llm::HttpConfig;
/// use std::time::Duration;
/// let mut config = HttpConfig::default();
/// config.max_retries = 5;
/// assert_eq!(config.retry_delay(1), Duration::from_millis(500));
/// assert_eq!(config.retry_delay(2), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The most time to spend opening a connection (default 10 s).
    pub connect_timeout: Duration,
    /// The most time a non-streaming call may take, from sending the request to the end of the
    /// body; for a streaming call, the most time to wait for the response headers and then for
    /// each next piece of the body (default 300 s: local models can be slow).
    pub timeout: Duration,
    /// Retries after the first attempt (default 3; 0 turns retrying off).
    pub max_retries: u32,
    /// The wait before the first retry (default 500 ms); doubled for each further retry.
    pub backoff_base: Duration,
    /// The longest backoff wait (default 30 s).
    pub backoff_max: Duration,
    /// The longest wait a server's `Retry-After` may impose (default 60 s); a longer request
    /// is shortened to this.
    pub max_retry_after: Duration,
    /// Randomise each backoff wait within its upper half, so that many clients do not retry
    /// in lockstep (default `false`: waits are exactly as documented).
    pub jitter: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(300),
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            jitter: false,
        }
    }
}

impl HttpConfig {
    /// The backoff wait before retry `retry` (1-based), without jitter:
    /// `backoff_base * 2^(retry-1)`, capped at `backoff_max`.
    pub fn retry_delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.backoff_base
            .checked_mul(factor)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }

    /// The wait before retry `retry` after `error`: the server's `Retry-After` (capped at
    /// `max_retry_after`) when it sent one, otherwise the backoff (with jitter when enabled).
    fn wait_before(&self, retry: u32, error: &LlmError) -> Duration {
        if let LlmError::Status {
            retry_after: Some(wait),
            ..
        } = error
        {
            return (*wait).min(self.max_retry_after);
        }
        let delay = self.retry_delay(retry);
        if self.jitter {
            let half = delay / 2;
            let extra = half.mul_f64(random_unit());
            half + extra
        } else {
            delay
        }
    }
}

/// A number in `[0, 1)` from the standard library's randomly keyed hasher (no dependency).
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Generates the builder methods that set [`HttpConfig`] fields (shared by both clients).
macro_rules! http_builder_methods {
    () => {
        /// Replaces all timeout and retry settings at once.
        pub fn http_config(mut self, config: $crate::llm::HttpConfig) -> Self {
            self.http = config;
            self
        }

        /// The most time to spend opening a connection.
        pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.http.connect_timeout = timeout;
            self
        }

        /// The most time a call may take (for streams: to the headers and between chunks).
        /// Past it, the attempt fails with [`LlmError::Timeout`](crate::LlmError::Timeout).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.http.timeout = timeout;
            self
        }

        /// Retries after the first attempt (0: no retry).
        pub fn max_retries(mut self, retries: u32) -> Self {
            self.http.max_retries = retries;
            self
        }

        /// The first backoff wait and the cap of the doubling waits.
        pub fn backoff(mut self, base: std::time::Duration, max: std::time::Duration) -> Self {
            self.http.backoff_base = base;
            self.http.backoff_max = max;
            self
        }

        /// The longest wait a server's `Retry-After` may impose.
        pub fn max_retry_after(mut self, max: std::time::Duration) -> Self {
            self.http.max_retry_after = max;
            self
        }

        /// Randomise backoff waits within their upper half.
        pub fn jitter(mut self, jitter: bool) -> Self {
            self.http.jitter = jitter;
            self
        }
    };
}
pub(crate) use http_builder_methods;

/// The most bytes of a body quoted in an error.
const QUOTE_LIMIT: usize = 500;
/// The most bytes of an error status's body read.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// The longest line a stream may send.
const LINE_LIMIT: usize = 16 * 1024 * 1024;

/// `s` cut to about `max` bytes (on a character boundary), with `…` when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// A body quoted in an error.
pub(crate) fn quote(body: &str) -> String {
    shorten(body, QUOTE_LIMIT)
}

/// The error and its sources, joined with `: ` (reqwest's own message is terse).
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        source = e.source();
    }
    out
}

/// Where in a call a reqwest error happened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending the request and waiting for the headers.
    Send,
    /// Reading the body.
    Body,
}

/// The HTTP client of an LLM client: a reqwest client plus its [`HttpConfig`].
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    config: HttpConfig,
}

impl HttpClient {
    /// Builds the reqwest client (rustls, the connect timeout).
    pub(crate) fn new(config: HttpConfig) -> Result<Self, LlmError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("orchflow-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Config {
                reason: format!("cannot build the HTTP client: {}", chain(&e)),
            })?;
        Ok(HttpClient { client, config })
    }

    /// The timeouts and retry policy.
    pub(crate) fn config(&self) -> &HttpConfig {
        &self.config
    }

    fn error(&self, e: reqwest::Error, url: &str, phase: Phase) -> LlmError {
        let reason = chain(&e);
        if e.is_builder() {
            LlmError::Config { reason }
        } else if e.is_timeout() {
            LlmError::Timeout {
                url: url.to_string(),
                after: if e.is_connect() {
                    self.config.connect_timeout
                } else {
                    self.config.timeout
                },
            }
        } else if e.is_connect() || phase == Phase::Send {
            LlmError::Connect {
                url: url.to_string(),
                reason,
            }
        } else {
            LlmError::Stream {
                reason: format!("reading the reply from {url} failed: {reason}"),
            }
        }
    }

    fn request(
        &self,
        url: &str,
        auth: Option<&HeaderValue>,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        request
    }

    /// Turns a non-success response into [`LlmError::Status`].
    async fn status_error(&self, url: &str, mut response: reqwest::Response) -> LlmError {
        let status = response.status().as_u16();
        let retry_after = if status == 429 || status == 503 {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
        } else {
            None
        };
        // Best effort: the start of the body, within the timeout.
        let mut body = Vec::new();
        let read = async {
            while body.len() < ERROR_BODY_LIMIT {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(self.config.timeout, read).await;
        LlmError::Status {
            url: url.to_string(),
            status,
            body: quote(&String::from_utf8_lossy(&body)),
            retry_after,
        }
    }

    /// Runs `attempt` until it succeeds, fails with a non-retryable error, or the retries are
    /// used up (then [`LlmError::RetriesExhausted`], or the error itself when retrying is off).
    async fn with_retries<T, F, Fut>(&self, url: &str, mut attempt: F) -> Result<T, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, LlmError>>,
    {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if !error.is_retryable() {
                return Err(error);
            }
            if attempts > self.config.max_retries {
                if self.config.max_retries == 0 {
                    return Err(error);
                }
                tracing::warn!(%url, attempts, %error, "LLM call failed; no retry left");
                return Err(LlmError::RetriesExhausted {
                    attempts,
                    last: Box::new(error),
                });
            }
            let wait = self.config.wait_before(attempts, &error);
            tracing::warn!(%url, attempt = attempts, ?wait, %error, "LLM call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// POSTs `body` and returns the reply's body text (retrying as configured; the timeout
    /// covers the whole exchange).
    pub(crate) async fn post_json(
        &self,
        url: &str,
        auth: Option<&HeaderValue>,
        body: &[u8],
    ) -> Result<String, LlmError> {
        self.with_retries(url, || async {
            let response = self
                .request(url, auth, body)
                .timeout(self.config.timeout)
                .send()
                .await
                .map_err(|e| self.error(e, url, Phase::Send))?;
            if !response.status().is_success() {
                return Err(self.status_error(url, response).await);
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| self.error(e, url, Phase::Body))?;
            String::from_utf8(bytes.to_vec()).map_err(|e| LlmError::MalformedBody {
                reason: format!("the body is not UTF-8: {e}"),
                body: quote(&String::from_utf8_lossy(&bytes)),
            })
        })
        .await
    }

    /// POSTs `body` and returns the response once its headers say success (retrying as
    /// configured); the body is read by the caller.
    async fn post_for_stream(
        &self,
        url: &str,
        auth: Option<&HeaderValue>,
        body: &[u8],
    ) -> Result<reqwest::Response, LlmError> {
        self.with_retries(url, || async {
            let send = self.request(url, auth, body).send();
            let response = match tokio::time::timeout(self.config.timeout, send).await {
                Err(_) => {
                    return Err(LlmError::Timeout {
                        url: url.to_string(),
                        after: self.config.timeout,
                    });
                }
                Ok(result) => result.map_err(|e| self.error(e, url, Phase::Send))?,
            };
            if !response.status().is_success() {
                return Err(self.status_error(url, response).await);
            }
            Ok(response)
        })
        .await
    }

    /// POSTs `body` and streams the reply's lines through `decoder`.
    ///
    /// When `strip_think` is set, a leading `<think>…</think>` block is removed from the text.
    pub(crate) fn stream<'a, D: LineDecoder + 'a>(
        &'a self,
        url: String,
        auth: Option<HeaderValue>,
        body: Vec<u8>,
        decoder: D,
        strip_think: bool,
    ) -> ChatStream<'a> {
        let state = StreamState {
            phase: StreamPhase::Connecting,
            url,
            auth,
            body,
            decoder,
            think: strip_think.then(ThinkFilter::default),
        };
        Box::pin(futures_util::stream::unfold(
            state,
            move |mut st| async move {
                let item = st.advance(self).await?;
                Some((item, st))
            },
        ))
    }
}

/// Turns the lines of a streamed reply into chunks (one implementation per wire format).
pub(crate) trait LineDecoder: Send {
    /// One line of the body (without its line ending). `Ok(None)`: nothing to hand out yet.
    /// A chunk with `done` set ends the stream.
    fn line(&mut self, line: &str) -> Result<Option<ChatChunk>, LlmError>;
    /// The body ended: the final chunk, or why the stream is incomplete.
    fn end(&mut self) -> Result<ChatChunk, LlmError>;
}

enum StreamPhase {
    Connecting,
    Reading(Box<LineReader>),
    Finished,
}

struct StreamState<D> {
    phase: StreamPhase,
    url: String,
    auth: Option<HeaderValue>,
    body: Vec<u8>,
    decoder: D,
    think: Option<ThinkFilter>,
}

impl<D: LineDecoder> StreamState<D> {
    /// The next item, or `None` when the stream is over.
    async fn advance(&mut self, http: &HttpClient) -> Option<Result<ChatChunk, LlmError>> {
        loop {
            let decoded = match &mut self.phase {
                StreamPhase::Finished => return None,
                StreamPhase::Connecting => {
                    match http
                        .post_for_stream(&self.url, self.auth.as_ref(), &self.body)
                        .await
                    {
                        Ok(response) => {
                            self.phase = StreamPhase::Reading(Box::new(LineReader {
                                response,
                                buffer: Vec::new(),
                                eof: false,
                                idle: http.config.timeout,
                                url: self.url.clone(),
                            }));
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                }
                StreamPhase::Reading(reader) => match reader.next_line().await {
                    Some(Ok(line)) => self.decoder.line(&line),
                    Some(Err(e)) => Err(e),
                    None => self.decoder.end().map(Some),
                },
            };
            match decoded {
                Err(e) => {
                    self.phase = StreamPhase::Finished;
                    return Some(Err(e));
                }
                Ok(None) => continue,
                Ok(Some(mut chunk)) => {
                    if let Some(filter) = &mut self.think {
                        chunk.content = filter.push(&chunk.content);
                        if chunk.done {
                            chunk.content.push_str(&filter.finish());
                        }
                    }
                    if chunk.done {
                        self.phase = StreamPhase::Finished;
                        return Some(Ok(chunk));
                    }
                    if !chunk.content.is_empty() {
                        return Some(Ok(chunk));
                    }
                }
            }
        }
    }
}

/// Splits a response body into lines, with an idle timeout per read.
struct LineReader {
    response: reqwest::Response,
    buffer: Vec<u8>,
    eof: bool,
    idle: Duration,
    url: String,
}

impl LineReader {
    /// The next line without its `\n` / `\r\n`; `None` at the end of the body.
    async fn next_line(&mut self) -> Option<Result<String, LlmError>> {
        loop {
            let line = if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=pos).collect();
                line.pop();
                line
            } else if self.eof {
                if self.buffer.is_empty() {
                    return None;
                }
                std::mem::take(&mut self.buffer)
            } else {
                if self.buffer.len() > LINE_LIMIT {
                    return Some(Err(LlmError::Stream {
                        reason: format!("a line of the stream is longer than {LINE_LIMIT} bytes"),
                    }));
                }
                match tokio::time::timeout(self.idle, self.response.chunk()).await {
                    Err(_) => {
                        return Some(Err(LlmError::Timeout {
                            url: self.url.clone(),
                            after: self.idle,
                        }));
                    }
                    Ok(Ok(Some(bytes))) => self.buffer.extend_from_slice(&bytes),
                    Ok(Ok(None)) => self.eof = true,
                    Ok(Err(e)) => {
                        let reason = if e.is_timeout() {
                            return Some(Err(LlmError::Timeout {
                                url: self.url.clone(),
                                after: self.idle,
                            }));
                        } else {
                            chain(&e)
                        };
                        return Some(Err(LlmError::Stream {
                            reason: format!(
                                "the connection to {} failed mid-stream: {reason}",
                                self.url
                            ),
                        }));
                    }
                }
                continue;
            };
            let mut line = line;
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(String::from_utf8(line).map_err(|e| LlmError::Stream {
                reason: format!("a line of the stream is not UTF-8: {e}"),
            }));
        }
    }
}

/// Removes a leading `<think>…</think>` block (and the whitespace after it) from `text`.
///
/// Text that does not start (after whitespace) with `<think>` is returned unchanged; an
/// unclosed block (a reply cut off while thinking) leaves nothing.
pub(crate) fn strip_think(text: &str) -> &str {
    let trimmed = text.trim_start();
    match trimmed.strip_prefix(OPEN) {
        None => text,
        Some(rest) => match rest.find(CLOSE) {
            Some(i) => rest[i + CLOSE.len()..].trim_start(),
            None => "",
        },
    }
}

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// [`strip_think`] over a text that arrives in pieces.
#[derive(Debug, Default)]
pub(crate) struct ThinkFilter {
    state: ThinkState,
    buffer: String,
}

#[derive(Debug, Default, PartialEq)]
enum ThinkState {
    /// Nothing but whitespace (or a prefix of `<think>`) seen yet.
    #[default]
    Start,
    /// Inside the block; `buffer` holds the unmatched tail.
    Inside,
    /// After the block: skipping whitespace.
    After,
    /// Passing text through.
    Pass,
}

impl ThinkFilter {
    /// Feeds a piece; returns the text to hand out now.
    pub(crate) fn push(&mut self, piece: &str) -> String {
        match self.state {
            ThinkState::Pass => piece.to_string(),
            ThinkState::After => self.after(piece),
            ThinkState::Start => {
                self.buffer.push_str(piece);
                let trimmed = self.buffer.trim_start();
                if trimmed.is_empty() || OPEN.starts_with(trimmed) {
                    return String::new();
                }
                match trimmed.strip_prefix(OPEN) {
                    Some(rest) => {
                        let rest = rest.to_string();
                        self.buffer.clear();
                        self.state = ThinkState::Inside;
                        self.inside(&rest)
                    }
                    None => {
                        self.state = ThinkState::Pass;
                        std::mem::take(&mut self.buffer)
                    }
                }
            }
            ThinkState::Inside => self.inside(piece),
        }
    }

    fn inside(&mut self, piece: &str) -> String {
        self.buffer.push_str(piece);
        match self.buffer.find(CLOSE) {
            Some(i) => {
                let rest = self.buffer[i + CLOSE.len()..].to_string();
                self.buffer.clear();
                self.state = ThinkState::After;
                self.after(&rest)
            }
            None => {
                // Keep only a tail that may hold the start of `</think>`.
                let keep = CLOSE.len() - 1;
                if self.buffer.len() > keep {
                    let mut cut = self.buffer.len() - keep;
                    while !self.buffer.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    self.buffer.drain(..cut);
                }
                String::new()
            }
        }
    }

    fn after(&mut self, piece: &str) -> String {
        let rest = piece.trim_start();
        if rest.is_empty() {
            String::new()
        } else {
            self.state = ThinkState::Pass;
            rest.to_string()
        }
    }

    /// The text held back when the input ends.
    pub(crate) fn finish(&mut self) -> String {
        match self.state {
            ThinkState::Start => std::mem::take(&mut self.buffer),
            _ => {
                self.buffer.clear();
                String::new()
            }
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds (fractions accepted) or an IMF-fixdate HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`; a date in the past means no wait). `None` if unparsable.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        let secs: f64 = value.parse().ok()?;
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some(Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = parse_imf_fixdate(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_imf_fixdate(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let [weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    if !weekday.ends_with(',') {
        return None;
    }
    let day: u32 = day.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    let (h, m, s): (u64, u64, u64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_fractions_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.25 ", now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 PST", now),
            None
        );
        assert_eq!(
            parse_retry_after("Sun, 32 Nov 1994 08:49:47 GMT", now),
            None
        );
        assert_eq!(
            parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_imf_fixdate("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(951_825_600))
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut c = HttpConfig {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
            ..HttpConfig::default()
        };
        assert_eq!(c.retry_delay(1), Duration::from_millis(100));
        assert_eq!(c.retry_delay(2), Duration::from_millis(200));
        assert_eq!(c.retry_delay(3), Duration::from_millis(350));
        assert_eq!(c.retry_delay(80), Duration::from_millis(350));
        c.jitter = true;
        let e = LlmError::Connect {
            url: String::new(),
            reason: String::new(),
        };
        for _ in 0..20 {
            let w = c.wait_before(2, &e);
            assert!(w >= Duration::from_millis(100) && w <= Duration::from_millis(200));
        }
        let e = LlmError::Status {
            url: String::new(),
            status: 429,
            body: String::new(),
            retry_after: Some(Duration::from_secs(600)),
        };
        assert_eq!(c.wait_before(1, &e), c.max_retry_after);
    }

    #[test]
    fn strip_think_block() {
        assert_eq!(strip_think("<think>hm</think>\n\nAnswer"), "Answer");
        assert_eq!(
            strip_think("  \n<think>\nhm\n</think>Answer <think>x</think>"),
            "Answer <think>x</think>"
        );
        assert_eq!(strip_think("<think>cut off"), "");
        assert_eq!(strip_think(" Answer"), " Answer");
        assert_eq!(
            strip_think("Answer <think>x</think>"),
            "Answer <think>x</think>"
        );
        assert_eq!(strip_think(""), "");
    }

    #[test]
    fn think_filter_matches_strip_think_at_every_split() {
        let cases = [
            "<think>hm, 2+2</think>\n\n4",
            "  <think>a</think>  b c",
            "plain reply",
            "  plain",
            "<thin>not a tag",
            "<think>never closed",
            "<think></think>",
            "<think>é</think>é",
            "",
            "<",
        ];
        for case in cases {
            let want = strip_think(case);
            let idx: Vec<usize> = (0..=case.len())
                .filter(|i| case.is_char_boundary(*i))
                .collect();
            for &i in &idx {
                for &j in idx.iter().filter(|j| **j >= i) {
                    let mut f = ThinkFilter::default();
                    let mut got = f.push(&case[..i]);
                    got += &f.push(&case[i..j]);
                    got += &f.push(&case[j..]);
                    got += &f.finish();
                    assert_eq!(got, want, "case {case:?} split at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn shorten_respects_char_boundaries() {
        assert_eq!(shorten("abc", 5), "abc");
        let s = shorten("ééé", 3);
        assert!(s.starts_with('é') && s.contains("6 bytes"), "{s}");
    }
}
