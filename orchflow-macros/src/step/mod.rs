//! `#[step]`: parse → check → emit.
//!
//! * [`parse`]: the function (anything else is reported and left as written); the options are
//!   parsed and validated one by one by [`Options::parse`];
//! * [`check`]: the signature's rules, all problems reported together; a signature with nothing
//!   sensible to generate (generics, `self`, …) leaves the function as written;
//! * [`emit`]: the step type, or with errors its fallback, which declares the same types.

mod check;
mod emit;
mod parse;

use crate::options::{Errors, Options, Site};
use proc_macro2::TokenStream;
use quote::ToTokens;

/// Expands `#[step(attr)] item`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let opts = Options::parse(attr, Site::Step, &mut errors);
    let func = match parse::function(&item) {
        Ok(func) => func,
        Err(e) => {
            errors.push(e);
            return Ok(beside(errors, item));
        }
    };
    if let Some(fatal) = check::fatal(&func.sig) {
        errors.push(fatal);
        return Ok(beside(errors, func.into_token_stream()));
    }
    let sig = check::signature(&func, &opts, &mut errors);
    let fallback = !errors.is_empty();
    let step = emit::emit(&func, &opts, &sig, fallback);
    Ok(beside(errors, step))
}

/// The errors, then `tokens`.
fn beside(errors: Errors, tokens: TokenStream) -> TokenStream {
    let mut out = errors.to_compile_errors();
    out.extend(tokens);
    out
}
