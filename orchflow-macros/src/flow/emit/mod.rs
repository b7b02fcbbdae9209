//! Emission: the checked flow and its [`Plan`] into the expression `flow!` expands to.
//!
//! * [`driver`]: the flow value, its `FlowInfo`, and the driver that walks the top-level points;
//! * [`items`]: the code of each item, an expression of its output;
//! * [`group`]: parallel groups, at the top level (saving each finished branch) or nested;
//! * [`graph`]: the flow's graph as data (`FlowInfo::graph`) and each step's node id;
//! * [`point`]: the `__Point` enum of the plan's points and its checkpoint (JSON) form.
//!
//! Every call into the runtime goes through `__private` (see
//! [`Options::private`](crate::options::Options::private)), spanned at
//! the user's token it is about, so that the compiler's errors point there.

mod driver;
mod graph;
mod group;
mod items;
mod point;

use super::plan::Plan;
use super::tree::Flow;
use crate::spans::at;
use proc_macro2::{Span, TokenStream};
use quote::quote;

/// Emits the expansion of a checked flow.
pub(crate) fn flow(flow: &Flow, plan: &Plan) -> TokenStream {
    Emit::new(flow, plan).flow()
}

/// What every part of the emission reads.
struct Emit<'a> {
    flow: &'a Flow,
    plan: &'a Plan,
    /// The runtime's private module: `::orchflow::__private_0_1_0`, or under `crate = …`.
    private: TokenStream,
}

impl<'a> Emit<'a> {
    fn new(flow: &'a Flow, plan: &'a Plan) -> Self {
        Emit {
            flow,
            plan,
            private: flow.options.private(),
        }
    }
}

/// Where a value comes from when it enters an item.
#[derive(Clone)]
enum Src {
    /// An owned value (the previous item's output).
    Value(TokenStream),
    /// A `Feed` expression (the flow's input, or a group's shared input).
    Feed(TokenStream),
}

/// Where code runs: the runtime handle in scope (`__rt`, or a group's `__g`), and the iteration
/// counters of the loops around it inside its top-level item, which address its inner positions.
#[derive(Clone, Copy)]
struct Scope<'a> {
    rt: &'a TokenStream,
    path: &'a [TokenStream],
}

/// Gives every token of `tokens` the location of `span` (with call-site name resolution), so
/// that the compiler reports anything about the expression (an unmet bound, an argument's type)
/// at the user's token.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    let span = at(span);
    tokens
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut ng = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                ng.set_span(span);
                tt = proc_macro2::TokenTree::Group(ng);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

/// `{ let __value = value; f(checks…, __value) }`: the call carries `span`, while `value` (code
/// that may hold errors of its own) keeps its spans.
fn respan_call(f: TokenStream, checks: TokenStream, value: TokenStream, span: Span) -> TokenStream {
    let call = respan(quote!(#f(#checks __value)), span);
    quote!({
        let __value = #value;
        #call
    })
}
