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
mod step;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Turns an `async fn` or `fn` into a step: a zero-sized value of the same name that `flow!`
/// can place in a pipeline. The function stays callable as `name::call(…)`.
///
/// Options: `name = "…"`, `retry = N`, `delay = "100ms"`, `backoff = 2.0`, `max_delay = "5s"`,
/// `jitter = 0.2`, `timeout = "30s"`, `retry_if = path`, `inline` (sync fns: run on the async
/// worker instead of the blocking pool), `crate = path`.
#[proc_macro_attribute]
pub fn step(attr: TokenStream, item: TokenStream) -> TokenStream {
    match step::expand(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Declares a flow: `flow! { plan => [docs, market] => if short { publish } else { revise } }`.
///
/// Grammar: `pipeline := item ("=>" item)*`; `item := step | "[" pipeline ("," pipeline)+ "]"
/// | "if" pred "{" pipeline "}" ("else" "{" pipeline "}")? | "loop" "(" "max" "=" N ")" "{"
/// pipeline "}" ("until" pred)?`, optionally preceded by `#[flow(name = "…", retry = N, …)]`.
#[proc_macro]
pub fn flow(input: TokenStream) -> TokenStream {
    match flow::expand(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}
