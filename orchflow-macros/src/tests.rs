//! Snapshot tests of the expansions (prettyplease-formatted), errors included.

use proc_macro2::TokenStream;
use quote::quote;

/// Formats an expansion as a file. `flow!` expands to an expression, so it is wrapped in a fn.
fn pretty(tokens: TokenStream, is_expr: bool) -> String {
    let wrapped = if is_expr { quote!(fn __expansion() { let _ = #tokens; }) } else { tokens };
    match syn::parse2::<syn::File>(wrapped.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(e) => format!("/* does not parse as a file ({e}) */\n{wrapped}"),
    }
}

fn flow(input: TokenStream) -> String {
    match crate::flow::expand(input) {
        Ok(t) => pretty(t, true),
        Err(e) => pretty(e.to_compile_error(), true),
    }
}

fn step(attr: TokenStream, item: TokenStream) -> String {
    match crate::step::expand(attr, item) {
        Ok(t) => pretty(t, false),
        Err(e) => pretty(e.to_compile_error(), false),
    }
}

#[test]
fn print_launch() {
    println!("{}", flow(quote!(plan => [docs, market] => synthesize => if short { publish } else { revise })));
    println!("{}", step(quote!(retry = 2), quote!(async fn plan(topic: String, ctx: &StepContext<Brief>) -> Result<Plan, E> { todo!() })));
}
