//! The runtime behind orchflow's `#[step]` and `flow!`: retries with backoff, timeouts, panic
//! containment, per-attempt traces, live events and `tracing` spans.
//!
//! Most users depend on the `orchflow` facade crate, which re-exports this one and the macros.
//! A crate that depends on `orchflow-core` alone can use the macros too: either write
//! `extern crate orchflow_core as orchflow;` at its root, or pass `crate = orchflow_core` to
//! each macro (`#[step(crate = orchflow_core)]`, `flow! { #[flow(crate = orchflow_core)] … }`).
//!
//! # Layering
//!
//! Modules depend one way, each only on those listed below it (checked with a grep of
//! `use crate::` per file):
//!
//! 1. `__private_0_1_0` (what generated code calls; the version in its name makes a macros crate
//!    of another version fail to compile against this one) and `testing`: over everything below;
//! 2. `registry` (flows by name, types erased, for tools) and `worker`, then `durable` (the
//!    [`Durable`] API; `durable::load` reads a checkpoint back into a launch);
//! 3. `flow` ([`Flow`], [`FlowInfo`]: starting and finishing a run), over `durable::journal`
//!    (journal writing, as methods of the run handle) and `durable::resume` (what a journal
//!    says to resume from, and what a driver replays), which sit below it;
//! 4. `human::ask` (the question step, which reaches the run's core);
//! 5. `run` (the run's core, the handle drivers hold, attempts, retries);
//! 7. `event` (the event kinds, declared once, and the stream), then `result` ([`FlowResult`],
//!    which the final event carries);
//! 8. `human` (input providers), `step` and `bounds` (what a step is), `error`, `store`;
//! 9. `trace` (raw and public traces), `context` ([`RunId`], [`StepContext`], which sees the
//!    run's core through a trait the run implements), `policy`, `json`, `site`;
//! 10. `clock`.
#![warn(missing_docs)]
#![deny(unsafe_code)]

mod clock;
mod context;
mod durable;
mod error;
mod event;
mod flow;
pub mod graph;
pub mod human;
mod json;
mod policy;
pub mod registry;
pub mod replay;
mod result;
mod run;
mod site;
mod step;
pub mod store;
mod trace;
pub mod worker;

#[doc(hidden)]
#[path = "private/mod.rs"]
pub mod __private_0_1_0;
pub mod testing;

#[doc(inline)]
pub use step::bounds;

pub use context::{RunId, StepContext};
pub use durable::{Durable, ForkError, ResumeError};
pub use error::{BoxError, FlowError, StepError};
pub use event::{CheckpointEvent, Event, EventStream, InputEvent, StepEvent};
pub use flow::{Flow, FlowInfo};
pub use policy::{FlowDefaults, RetryPolicy, StepPolicy};
pub use result::{FlowFailed, FlowResult};
pub use step::{Feed, StepCall, StepDef};
pub use store::{CheckpointStore, JsonCheckpointStore, MemoryStore};
pub use trace::{AttemptOutcome, StepTrace, Traces};

pub use orchflow_macros::{flow, step};

/// The JSON Schema crate typed questions ([`human::ask_typed`]) take their answer's schema
/// from: derive or implement its `JsonSchema` for an answer type.
pub use schemars;
