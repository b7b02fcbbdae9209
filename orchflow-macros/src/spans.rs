//! Spans of generated code.

use proc_macro2::Span;

/// A span at the user's token that resolves names like the macro's own code (`call_site`), so
/// generated locals stay visible even when the user's tokens come from a `macro_rules!`.
pub(crate) fn at(span: Span) -> Span {
    Span::call_site().located_at(span)
}
