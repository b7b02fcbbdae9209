//! What generated code calls. Not a public API: names and signatures change without notice.
//!
//! This module is the complete list of what `#[step]` and `flow!` expand to, grouped:
//!
//! 1. **Types**: the types the expansion names.
//! 2. **Checks**: the compile-time checks of `flow!`, as traits with
//!    `#[diagnostic::on_unimplemented]` messages; the macro calls the helper functions with the
//!    user's spans, so an unmet bound is reported at the offending token, in words.
//! 3. **Codec**: values to and from JSON (captured values, checkpoints).
//! 4. **Driver**: what a generated driver calls to run its flow: building the flow, the run
//!    handle's calls, parallel branches, the memo of a resumed run.
//! 5. **Questions**: human questions checked when a flow is built.
//!
//! Each group is a file of this directory (`map` has its own: its check and its run); the
//! types are listed here.
//!
//! The expansion calls nothing else of `orchflow-core`: the runtime handle ([`Rt`]), the memo of
//! a resumed run ([`Memo`], [`Resume`]) and [`Flow`]'s constructor are reached only through the
//! free functions of section 4, so their methods and fields are not part of the contract
//! between the macros and the runtime.

use std::any::Any;
use std::future::Future;

mod checks;
mod codec;
mod driver;
mod map;
mod questions;

pub use checks::*;
pub use codec::*;
pub use driver::*;
pub use map::*;
pub use questions::*;

// 1. Types

pub use crate::context::StepContext;
pub use crate::durable::Checkpointable;
pub use crate::durable::resume::{Memo, Resume};
pub use crate::flow::{DriverFuture, Flow, FlowInfo};
pub use crate::graph::{Edge, EdgeKind, FlowGraph, Node, NodeKind, StaticNode, StepFacts};
pub use crate::policy::{FlowDefaults, RetryPolicy, StepPolicy};
pub use crate::replay::Source;
pub use crate::run::{Halt, Rt};
pub use crate::step::bounds::{AnyState, Fallible, Meet, NeedsState, StateReq};
pub use crate::step::{Feed, Predicate, StepCall, StepDef, ValueOnly, WithContext};
pub use serde;
pub use serde_json::Value;
pub use std::borrow::Cow;
pub use std::convert::Infallible;
pub use std::marker::PhantomData;
pub use std::option::Option::Some;
pub use std::time::Duration;
pub use std::vec::Vec;
pub use tokio::try_join;
