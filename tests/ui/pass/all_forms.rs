//! Every parameter and return form of `#[step]`, and every item form of `flow!`.
use orchflow::{flow, step, StepContext};

#[derive(Default)]
struct Shared;

#[derive(Debug, thiserror::Error)]
#[error("e")]
struct E;

#[step]
async fn by_value(x: u32) -> u32 { x }
#[step]
async fn by_ref(x: &u32) -> u32 { *x }
#[step]
async fn with_ctx(x: u32, ctx: &StepContext<Shared>) -> u32 { let _ = ctx.state(); x }
#[step]
async fn plain_ctx(x: u32, ctx: &StepContext) -> u32 { let _ = ctx.run_id(); x }
#[step]
async fn fallible(x: u32) -> Result<u32, E> { Ok(x) }
#[step]
async fn io_alias(x: u32) -> std::io::Result<u32> { Ok(x) }
#[step]
async fn boxed(x: u32) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> { Ok(x) }
#[step]
fn sync_step(x: &u32) -> u32 { *x }
#[step(inline)]
fn inline_step(x: u32) -> u32 { x }
#[step]
async fn unit_out(_x: u32) {}
#[step]
async fn unit_in() -> u32 { 1 }
#[step(name = "renamed", retry = 3, delay = "10ms", backoff = 2.0, max_delay = "1s", jitter = 0.1, timeout = "2s")]
pub(crate) async fn all_options(x: u32) -> Result<u32, E> { Ok(x) }
fn retry_e(_: &E) -> bool { true }
#[step(retry = 1, retry_if = retry_e)]
async fn with_retry_if(x: u32) -> Result<u32, E> { Ok(x) }
/// Documented steps keep their docs.
#[step]
async fn r#type(x: u32) -> u32 { x }

#[cfg(any())]
#[step]
async fn compiled_out(x: u32) -> u32 { x }

mod nested {
    use orchflow::step;
    #[step]
    pub async fn far(x: u32) -> u32 { x }
}

#[step]
async fn first(t: (u32, u32, (u32, u32))) -> u32 { t.0 + (t.2).1 }

fn even(x: &u32) -> bool { x % 2 == 0 }
fn ctx_pred(_x: &u32, _ctx: &StepContext<Shared>) -> bool { true }

fn main() {
    let inner = flow! { by_value => by_ref };
    let _f = flow! {
        #[flow(name = "everything", retry = 1, delay = "5ms", timeout = "1s")]
        by_value => by_ref => with_ctx => plain_ctx => fallible => io_alias => boxed
            => sync_step => inline_step => r#type => nested::far
            => [by_ref, sync_step => by_value, [by_ref, by_ref]]
            => first
    };
    let _g = flow! {
        all_options => with_retry_if => (inner) => if even { by_value } else if ctx_pred { by_ref } else { by_value => by_value }
            => if |x: &u32| *x > 1 { by_value }
            => loop(max = 3) { by_value => by_ref } until even
            => loop(max = 2) { by_value }
            => unit_out
    };
    let _h = flow! { unit_in => by_value };
    let _ = crate::all_options {};
}
