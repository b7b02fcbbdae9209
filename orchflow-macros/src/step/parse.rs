//! The item under `#[step]`: a function, or an error at the keyword of what it is instead.

use proc_macro2::{Span, TokenStream};
use syn::ItemFn;

/// The function `#[step]` is on.
pub(super) fn function(item: &TokenStream) -> syn::Result<ItemFn> {
    syn::parse2(item.clone()).map_err(|_| {
        syn::Error::new(
            item_keyword_span(item),
            "`#[step]` goes on a function: `#[step] async fn name(input: T) -> U { … }`",
        )
    })
}

/// The span of the keyword that says what an item is (`struct`, `impl`, …), for errors about
/// an attribute placed on the wrong kind of item.
fn item_keyword_span(item: &TokenStream) -> Span {
    const KEYWORDS: &[&str] = &[
        "struct", "enum", "union", "impl", "trait", "mod", "const", "static", "type", "use", "fn",
        "let",
    ];
    item.clone()
        .into_iter()
        .find_map(|tt| match tt {
            proc_macro2::TokenTree::Ident(i) if KEYWORDS.contains(&i.to_string().as_str()) => {
                Some(i.span())
            }
            _ => None,
        })
        .unwrap_or_else(Span::call_site)
}
