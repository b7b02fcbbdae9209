//! `flow!`: parse → check → plan → emit, each phase a typed value.
//!
//! * [`ast`]: tokens into a [`FlowInput`](ast::FlowInput), the tree as written (steps stay
//!   paths, predicates stay expressions: nothing is type-checked here, the compiler does it on
//!   the expansion). Only syntax errors stop here.
//! * [`check`]: every other rule (options, group sizes, loop bounds), all problems reported
//!   together; the tree is normalised into a valid [`tree::Flow`] so that the flow is still
//!   lowered beside the errors ([`fallback`]).
//! * [`plan`]: the resumable points: one per top-level item (and per loop iteration, and per
//!   finished branch of a top-level group), and the inner positions inside them, keyed by their
//!   [`Pos`](plan::Pos) in the tree.
//! * [`emit`]: a generic state enum over the points' payload types and a driver that walks
//!   them, calling `__private` helpers whose trait bounds carry the compile-time checks, each
//!   call spanned at the user's token it is about.
//!
//! Invariants: only `check` reports errors other than syntax, and only `check` meets an invalid
//! tree; `plan` and `emit` read a [`tree::Flow`], valid by construction, and never fail.

mod ast;
mod check;
mod emit;
mod fallback;
mod plan;
mod shape;
mod tree;

use check::Checked;
use proc_macro2::TokenStream;

/// Expands `flow! { … }`.
pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input = match syn::parse2::<ast::FlowInput>(input) {
        Ok(input) => input,
        Err(e) => return Ok(fallback::expand(&e, None)),
    };
    Ok(match check::check(input) {
        Checked::Valid(flow) => lower(&flow),
        Checked::Invalid { errors, fallback } => {
            fallback::expand(&errors, fallback.as_ref().map(lower))
        }
    })
}

/// The expansion of a checked flow.
fn lower(flow: &tree::Flow) -> TokenStream {
    emit::flow(flow, &plan::Plan::new(flow))
}
