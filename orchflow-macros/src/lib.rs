//! The macros of orchflow: `#[step]` and `flow!`.
//!
//! This crate only parses, checks and emits; everything the expansions do at run time lives in
//! `orchflow-core` behind its `__private` module. Each macro is a pure function from tokens to
//! tokens (`step::expand`, `flow::expand`) so its expansion can be snapshot-tested; the macros
//! never panic: every problem becomes a `syn::Error` spanned at the user's tokens, several are
//! reported at once, and a best-effort expansion is emitted beside them so one mistake does not
//! cascade into many.
//!
//! See the `orchflow` crate for the documentation of both macros.

extern crate proc_macro;

mod flow;
mod options;
mod spans;
mod step;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Turns an `async fn` or `fn` into a step that `flow!` can place in a pipeline.
///
/// The function stays as written (and callable); `#[step]` adds a zero-sized type of the same
/// name that implements the runtime's `StepDef` and `StepCall` traits.
///
/// Parameters: the previous step's output, by value (`x: T`, each attempt gets its own copy, so
/// `T: Clone`) or by reference (`x: &T`); then optionally `ctx: &StepContext<S>` (typed shared
/// state) or `ctx: &StepContext`. Return `T`, or `Result<T, E>` (or an alias such as
/// `io::Result<T>`) with an error that implements `Display` and converts into
/// `Box<dyn Error + Send + Sync>`. A sync `fn` runs on tokio's blocking pool; `inline` runs it on
/// the async worker.
///
/// Options: `name = "…"`, `retry = N` (N retries: N + 1 attempts), `delay = "100ms"`,
/// `backoff = 2.0`, `max_delay = "5s"`, `jitter = 0.2`, `timeout = "30s"`,
/// `retry_if = path` (`fn(&E) -> bool`), `inline`, `crate = path`.
///
/// ```
/// use orchflow::{flow, step, StepContext};
///
/// #[derive(Debug, thiserror::Error)]
/// enum FetchError {
///     #[error("try again")]
///     Busy,
///     #[error("not found")]
///     Missing,
/// }
///
/// fn worth_retrying(e: &FetchError) -> bool {
///     matches!(e, FetchError::Busy)
/// }
///
/// #[step(retry = 3, delay = "10ms", backoff = 2.0, timeout = "1s", retry_if = worth_retrying)]
/// async fn fetch(id: u32, ctx: &StepContext) -> Result<String, FetchError> {
///     match (id, ctx.attempt()) {
///         (0, _) => Err(FetchError::Missing),
///         (_, 1) => Err(FetchError::Busy),
///         (id, _) => Ok(format!("item {id}")),
///     }
/// }
///
/// #[step]
/// fn shout(s: &String) -> String {
///     s.to_uppercase()
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let f = flow! { fetch => shout };
/// let ok = f.run(7).await;
/// assert_eq!(ok.output.as_deref(), Some("ITEM 7"));
/// assert_eq!(ok.traces.len(), 3, "one failed attempt, one retry, then `shout`");
///
/// let missing = f.run(0).await;
/// assert_eq!(missing.traces.len(), 1, "`Missing` is not worth retrying");
///
/// // The function itself is still there.
/// assert_eq!(shout(&"a".to_string()), "A");
/// # }
/// ```
///
/// Misuse is a compile error at the offending token:
///
/// ```compile_fail
/// use orchflow::step;
/// #[step(retry = "twice")] // error: expected the number of retries after the first attempt
/// async fn fetch(id: u32) -> u32 { id }
/// ```
#[proc_macro_attribute]
pub fn step(attr: TokenStream, item: TokenStream) -> TokenStream {
    match step::expand(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Declares a flow: an expression whose value runs the pipeline.
///
/// ```text
/// flow      := ("#[flow(" options ")]")? pipeline
/// pipeline  := item ("=>" item)*
/// item      := path                                  a #[step] function
///            | "(" expr ")"                          any step value, such as another flow
///            | "[" pipeline ("," pipeline)+ "]"      parallel branches; output is a tuple
///            | "if" pred "{" pipeline "}" ("else" ("{" pipeline "}" | if-item))?
///            | "loop" "(" "max" "=" N ")" "{" pipeline "}" ("until" pred)?
/// ```
///
/// Options: `name = "…"`, and defaults for steps that set none: `retry`, `delay`, `backoff`,
/// `max_delay`, `jitter`, `timeout`; `crate = path`.
///
/// Every hand-off is checked at compile time and a mismatch is reported at the step's token.
///
/// ```
/// use orchflow::{flow, step};
///
/// #[step] async fn parse(s: String) -> u32 { s.len() as u32 }
/// #[step] async fn half(x: &u32) -> u32 { x / 2 }
/// #[step] async fn third(x: &u32) -> u32 { x / 3 }
/// #[step] async fn add(p: (u32, u32)) -> u32 { p.0 + p.1 }
/// #[step] async fn grow(x: u32) -> u32 { x * 10 }
///
/// fn small(x: &u32) -> bool { *x < 100 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sizes = flow! { #[flow(name = "sizes")] [half, third] => add };
/// let f = flow! {
///     #[flow(name = "pipeline", retry = 1)]
///     parse => (sizes) => if small { loop(max = 5) { grow } until |x: &u32| *x > 1000 }
/// };
/// // "123456789012" has 12 characters: 6 + 4 = 10, then 100, 1000, 10000.
/// assert_eq!(f.run("123456789012".to_string()).await.output, Some(10_000));
/// # }
/// ```
///
/// ```compile_fail
/// use orchflow::{flow, step};
/// #[step] async fn parse(s: String) -> u32 { s.len() as u32 }
/// #[step] async fn shout(s: String) -> String { s.to_uppercase() }
/// // error: step `shout` cannot take the output of `parse`: expected `String`, found `u32`
/// let f = flow! { parse => shout };
/// ```
#[proc_macro]
pub fn flow(input: TokenStream) -> TokenStream {
    match flow::expand(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}
