//! The expansion emitted beside errors, so that one mistake does not cascade into errors in
//! the code that uses the flow: the flow as far as it could be understood (the tree
//! [`check`](super::check) normalised, lowered as usual), or, with nothing to lower (a syntax
//! error), an expression of any type.

use proc_macro2::TokenStream;
use quote::quote;

/// `errors`, and beside them the lowered `flow` if there is one.
pub(crate) fn expand(errors: &syn::Error, flow: Option<TokenStream>) -> TokenStream {
    let errors = errors.to_compile_error();
    match flow {
        Some(flow) => quote!({ #errors #flow }),
        None => quote!({ #errors loop {} }),
    }
}
