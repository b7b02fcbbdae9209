//! Snapshot tests of the expansions (prettyplease-formatted), errors included. Review changes
//! with `cargo insta review`; the expansions should read like code a careful person wrote.

use proc_macro2::TokenStream;
use quote::quote;

/// Formats an expansion as a file. `flow!` expands to an expression, so it is wrapped in a fn.
fn pretty(tokens: TokenStream, is_expr: bool) -> String {
    let wrapped = if is_expr {
        quote!(fn expansion() { let flow = #tokens; })
    } else {
        tokens
    };
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
fn step_async_with_state_and_retries() {
    insta::assert_snapshot!(step(
        quote!(
            retry = 2,
            delay = "100ms",
            backoff = 2.0,
            max_delay = "1s",
            jitter = 0.1,
            timeout = "30s",
            retry_if = is_transient
        ),
        quote! {
            /// Drafts a plan for the topic.
            pub async fn plan(topic: String, ctx: &StepContext<Brief>) -> Result<Plan, PlanError> {
                ctx.state().log(&topic);
                Ok(Plan::new(topic))
            }
        }
    ));
}

#[test]
fn step_sync_by_reference_on_the_blocking_pool() {
    insta::assert_snapshot!(step(
        quote!(),
        quote! {
            fn synthesize(parts: &(String, String), ctx: &StepContext) -> Draft {
                Draft::from(parts, ctx.run_id())
            }
        }
    ));
}

#[test]
fn step_inline_sync_returning_an_alias_result() {
    insta::assert_snapshot!(step(
        quote!(inline, name = "read-config", crate = orchflow_core),
        quote! {
            fn read_config(path: PathBuf) -> std::io::Result<String> {
                std::fs::read_to_string(path)
            }
        }
    ));
}

#[test]
fn step_with_errors_still_declares_its_types() {
    insta::assert_snapshot!(step(
        quote!(retry = "two", delay = 5, bogus),
        quote! {
            async fn plan(topic: String, extra: u32) -> Plan {
                Plan::new(topic, extra)
            }
        }
    ));
}

#[test]
fn flow_sequential() {
    insta::assert_snapshot!(flow(quote!(fetch => parse => store)));
}

#[test]
fn flow_launch_brief_design_card() {
    insta::assert_snapshot!(flow(quote!(
        plan => [docs, market] => synthesize => if short { publish } else { revise }
    )));
}

#[test]
fn flow_loop_if_without_else_and_options() {
    insta::assert_snapshot!(flow(quote!(
        #[flow(name = "solver", retry = 1, delay = "10ms", timeout = "5s")]
        planner => loop(max = 8) { executor => verifier } until solved => if |m: &Memory| m.is_empty() { fallback }
    )));
}

#[test]
fn flow_nested_value_and_pipeline_branches() {
    insta::assert_snapshot!(flow(quote!(
        #[flow(crate = orchflow_core)]
        [load => (research.clone()), steps::cached] => merge
    )));
}

#[test]
fn flow_with_errors_keeps_a_fallback() {
    insta::assert_snapshot!(flow(quote!(
        #[flow(retries = 2)]
        plan => [docs] => loop(max = 0) { revise }
    )));
}

#[test]
fn flow_syntax_error() {
    insta::assert_snapshot!(flow(quote!(plan => => docs)));
}

#[test]
fn flow_map_with_a_pipeline_inside_a_loop() {
    insta::assert_snapshot!(flow(quote!(
        pages => map(fetch => parse, limit = 8) => loop(max = 2) { map(enrich, limit = LIMIT) }
    )));
}
