//! Every rule of `flow!` that is not syntax: the options, the size of parallel groups, loop
//! bounds. All problems are collected and reported together, each at its own token, and the
//! tree is normalised into a [`tree::Flow`] that is valid, so that the flow is still lowered
//! beside the errors (see [`fallback`](super::fallback)) and later phases never meet an invalid
//! tree:
//!
//! * a group of one branch is that branch, written without brackets; an empty group is nothing
//!   (the value passes through); a group of more than 12 keeps its first 12;
//! * a loop bound that is missing, zero, too large or not `max` is `max = 1`;
//! * an item left with nothing to run (`if p { [] }`, `loop(max = 2) { [] }`) is nothing, an
//!   `else { [] }` arm is no `else`; a flow left with nothing is not lowered at all.

use super::ast;
use super::tree::{self, LoopMax};
use crate::options::{Errors, Options, Site};
use proc_macro2::Span;

/// Parallel groups are limited so their output stays a tuple the standard traits support.
const MAX_BRANCHES: usize = 12;

/// The outcome of [`check`].
pub(crate) enum Checked {
    Valid(tree::Flow),
    /// The errors, and the flow normalised as far as it could be understood.
    Invalid {
        errors: syn::Error,
        fallback: Option<tree::Flow>,
    },
}

/// Checks and normalises a parsed flow.
pub(crate) fn check(input: ast::FlowInput) -> Checked {
    let mut errors = Errors::default();
    let options = options(&input.attrs, &mut errors);
    let pipeline = Checker {
        errors: &mut errors,
    }
    .pipeline(input.pipeline);
    options.check_retry_options(&mut errors);
    let flow = pipeline.map(|pipeline| tree::Flow {
        options,
        pipeline,
        slots: input.slots,
    });
    match (errors.into_inner(), flow) {
        (None, Some(flow)) => Checked::Valid(flow),
        (Some(errors), fallback) => Checked::Invalid { errors, fallback },
        // Only a reported error empties a pipeline; should that ever change, say so rather
        // than expand to nothing.
        (None, None) => Checked::Invalid {
            errors: syn::Error::new(
                Span::call_site(),
                "a flow needs at least one step: `flow! { a => b }`",
            ),
            fallback: None,
        },
    }
}

/// The `#[flow(…)]` options (the last list given wins, as each is reported on its own).
fn options(attrs: &[syn::Attribute], errors: &mut Errors) -> Options {
    let mut options = Options::default();
    for attr in attrs {
        if !attr.path().is_ident("flow") {
            errors.push(syn::Error::new_spanned(
                attr.path(),
                "expected `#[flow(…)]` with the flow's options",
            ));
            continue;
        }
        match &attr.meta {
            syn::Meta::List(list) => {
                options = Options::parse(list.tokens.clone(), Site::Flow, errors);
            }
            other => errors.push(syn::Error::new_spanned(
                other,
                "expected options: `#[flow(name = \"…\", retry = 2)]`",
            )),
        }
    }
    options
}

struct Checker<'a> {
    errors: &'a mut Errors,
}

impl Checker<'_> {
    /// The checked pipeline; `None` when nothing is left of it.
    fn pipeline(&mut self, p: ast::Pipeline) -> Option<tree::Pipeline> {
        let mut items = Vec::new();
        for item in p.items {
            self.item(item, &mut items);
        }
        tree::Pipeline::new(items)
    }

    /// Pushes what `item` normalises to (nothing, one item, or a branch's items) onto `out`.
    fn item(&mut self, item: ast::Item, out: &mut Vec<tree::Item>) {
        match item {
            ast::Item::Step(s) => out.push(tree::Item::Step(s)),
            ast::Item::Group(g) => self.group(g, out),
            ast::Item::If(i) => out.extend(self.if_item(i).map(tree::Item::If)),
            ast::Item::Loop(l) => out.extend(self.loop_item(l).map(tree::Item::Loop)),
            ast::Item::Map(m) => out.extend(self.map_item(m).map(tree::Item::Map)),
        }
    }

    fn group(&mut self, group: ast::Group, out: &mut Vec<tree::Item>) {
        let written = group.branches.len();
        let mut branches: Vec<tree::Pipeline> = group
            .branches
            .into_iter()
            .filter_map(|b| self.pipeline(b))
            .collect();
        if written < 2 {
            self.errors.at(
                group.span,
                "a parallel group needs at least two branches: `[a, b]`; write a single step without brackets",
            );
        } else if written > MAX_BRANCHES {
            self.errors.at(
                group.span,
                format_args!(
                    "a parallel group has at most {MAX_BRANCHES} branches; nest groups for more"
                ),
            );
            branches.truncate(MAX_BRANCHES);
        }
        if branches.len() >= 2 {
            out.push(tree::Item::Group(tree::Group {
                span: group.span,
                branches,
            }));
        } else {
            out.extend(branches.into_iter().flat_map(tree::Pipeline::into_items));
        }
    }

    fn if_item(&mut self, i: ast::If) -> Option<tree::If> {
        let then = self.pipeline(i.then);
        let otherwise = i.otherwise.and_then(|o| self.pipeline(o));
        Some(tree::If {
            span: i.span,
            pred: i.pred,
            then: then?,
            otherwise,
        })
    }

    fn loop_item(&mut self, l: ast::Loop) -> Option<tree::Loop> {
        let max = self.bound(l.span, l.bound);
        let body = self.pipeline(l.body)?;
        Some(tree::Loop {
            span: l.span,
            max,
            body,
            until: l.until,
        })
    }

    fn map_item(&mut self, m: ast::Map) -> Option<tree::Map> {
        let limit = self.limit(m.span, m.limit);
        let body = self.pipeline(m.body)?;
        let map = tree::Map {
            span: m.span,
            limit,
            body,
        };
        if map.first_step().is_none() {
            self.errors.at(
                map.body.items().next().map_or(m.span, tree::Item::span),
                "the body of `map(…)` starts with a step, which takes each item: `map(fetch => [a, b], limit = 4)`",
            );
            return None;
        }
        Some(map)
    }

    /// A map's `limit = N`.
    fn limit(&mut self, map_span: Span, bound: Option<ast::Bound>) -> LoopMax {
        self.checked_bound(map_span, bound, &MAP_LIMIT)
    }

    /// A loop's `max = N`.
    fn bound(&mut self, loop_span: Span, bound: Option<ast::Bound>) -> LoopMax {
        self.checked_bound(loop_span, bound, &LOOP_MAX)
    }

    /// A bound of at least 1 under `rule.key`: a `u32` literal checked here, or a constant the
    /// expansion has the compiler check. A wrong bound is reported and stands in as 1.
    fn checked_bound(
        &mut self,
        span: Span,
        bound: Option<ast::Bound>,
        rule: &BoundRule,
    ) -> LoopMax {
        let Some(bound) = bound else {
            self.errors.at(span, rule.missing);
            return LoopMax::Lit(1);
        };
        if bound.key != rule.key {
            self.errors.at(bound.key.span(), rule.wrong_key);
            return LoopMax::Lit(1);
        }
        let lit = match bound.value {
            ast::BoundValue::Const(path) => return LoopMax::Const(path),
            ast::BoundValue::Lit(lit) => lit,
        };
        match lit.base10_parse::<u32>() {
            Ok(0) => {
                self.errors.at(lit.span(), rule.zero);
                LoopMax::Lit(1)
            }
            Ok(n) => LoopMax::Lit(n),
            Err(_) => {
                self.errors.at(lit.span(), rule.not_u32);
                LoopMax::Lit(1)
            }
        }
    }
}

/// What a bound is called and what its mistakes say.
struct BoundRule {
    key: &'static str,
    missing: &'static str,
    wrong_key: &'static str,
    zero: &'static str,
    not_u32: &'static str,
}

const LOOP_MAX: BoundRule = BoundRule {
    key: "max",
    missing: "a loop needs a bound: `loop(max = 10) { … } until done`",
    wrong_key: "expected `max = N`: the most iterations the loop may run",
    zero: "a loop runs at least once: `max` must be 1 or more",
    not_u32: "`max` must be a whole number that fits in `u32`",
};

const MAP_LIMIT: BoundRule = BoundRule {
    key: "limit",
    missing: "a map needs a limit on the items it runs at once: `map(enrich, limit = 8)`",
    wrong_key: "expected `limit = N`: the most items the map runs at once",
    zero: "a map runs at least one item at a time: `limit` must be 1 or more",
    not_u32: "`limit` must be a whole number that fits in `u32`",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::shape::shape;
    use proc_macro2::TokenStream;
    use quote::quote;

    /// The messages, and the shape of the normalised flow (if any).
    fn check_of(tokens: TokenStream) -> (Vec<String>, Option<String>) {
        let input: ast::FlowInput = match syn::parse2(tokens) {
            Ok(input) => input,
            Err(e) => return (vec![format!("syntax: {e}")], None),
        };
        match check(input) {
            Checked::Valid(flow) => (Vec::new(), Some(shape(&flow.pipeline))),
            Checked::Invalid { errors, fallback } => (
                errors.into_iter().map(|e| e.to_string()).collect(),
                fallback.map(|f| shape(&f.pipeline)),
            ),
        }
    }

    #[test]
    fn a_valid_flow_passes_unchanged() {
        let (errors, shape) = check_of(quote!(a => [b, c => d] => loop(max = 3) { e } until p));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            shape.as_deref(),
            Some("a => [b, c => d] => loop(max = 3) { e } until p")
        );
    }

    #[test]
    fn every_error_is_reported_and_the_tree_normalised() {
        let (errors, shape) = check_of(quote!(
            #[flow(retries = 2)] a => [b => c] => loop { d } => loop(max = 0) { e } => [] => f
        ));
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].contains("unknown option `retries`"));
        assert!(errors[1].contains("at least two branches"));
        assert!(errors[2].contains("needs a bound"));
        assert!(errors[3].contains("at least once"));
        assert!(errors[4].contains("at least two branches"));
        assert_eq!(
            shape.as_deref(),
            Some("a => b => c => loop(max = 1) { d } => loop(max = 1) { e } => f")
        );
    }

    #[test]
    fn items_left_with_nothing_to_run_are_dropped() {
        let (errors, shape) =
            check_of(quote!(a => if p { [] } else { b } => if q { c } else { [] } => [[], d]));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(shape.as_deref(), Some("a => if q { c } => d"));
        let (errors, shape) = check_of(quote!([]));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(shape, None);
    }

    #[test]
    fn a_group_keeps_at_most_twelve_branches() {
        let (errors, shape) = check_of(quote!([a, b, c, d, e, f, g, h, i, j, k, l, m]));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            shape.as_deref(),
            Some("[a, b, c, d, e, f, g, h, i, j, k, l]")
        );
    }

    #[test]
    fn a_map_needs_a_limit_of_at_least_one_and_a_step_first() {
        let (errors, shape) = check_of(quote!(
            map(a => b, limit = 8) => map(c) => map(d, limit = 0) => map(e, lim = 2)
                => map([f, g], limit = 2) => map(h, limit = MAX)
        ));
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].contains("needs a limit"));
        assert!(errors[1].contains("at least one item"));
        assert!(errors[2].contains("expected `limit = N`"));
        assert!(errors[3].contains("starts with a step"));
        assert_eq!(
            shape.as_deref(),
            Some(
                "map(a => b, limit = 8) => map(c, limit = 1) => map(d, limit = 1) => map(e, limit = 1) => map(h, limit = MAX)"
            )
        );
    }

    #[test]
    fn a_wrong_or_oversized_bound_is_reported_at_its_token() {
        let (errors, _) = check_of(quote!(loop(maxx = 3) { a } => loop(max = 99999999999) { b }));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("expected `max = N`"));
        assert!(errors[1].contains("fits in `u32`"));
    }
}
