//! The runtime behind orchflow's `#[step]` and `flow!`: retries with backoff, timeouts, panic
//! containment, per-attempt traces, live events and `tracing` spans.
//!
//! Most users depend on the `orchflow` facade crate, which re-exports this one and the macros.
//! A crate that depends on `orchflow-core` alone can use the macros too: either write
//! `extern crate orchflow_core as orchflow;` at its root, or pass `crate = orchflow_core` to
//! each macro (`#[step(crate = orchflow_core)]`, `flow! { #[flow(crate = orchflow_core)] … }`).
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod context;
mod error;
mod event;
mod flow;
pub mod human;
mod json;
mod policy;
mod resume;
mod run;
mod site;
mod step;
pub mod store;
mod trace;

#[doc(hidden)]
pub mod __private;
pub mod testing;

pub use context::{RunId, StepContext};
pub use error::{BoxError, FlowError, StepError};
pub use event::{CheckpointEvent, Event, EventStream, InputEvent, StepEvent};
pub use flow::{Durable, Flow, FlowFailed, FlowInfo, FlowResult, ResumeError};
pub use policy::{FlowDefaults, RetryPolicy, StepPolicy};
pub use step::{
    AnyState, Fallible, Feed, Meet, NeedsState, StateOf, StateReq, StepCall, StepDef, StepFailure,
};
pub use store::{CheckpointStore, JsonCheckpointStore, MemoryStore};
pub use trace::{AttemptOutcome, StepTrace, Traces};

pub use orchflow_macros::{flow, step};
