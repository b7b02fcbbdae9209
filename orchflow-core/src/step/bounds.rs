//! The type machinery behind steps and flows, which users rarely name: the state requirement a
//! step declares ([`AnyState`], [`NeedsState`], [`StateReq`]) and how `flow!` combines them
//! ([`Meet`]), the state type a step's context carries ([`StateOf`]), and what a step's return
//! and error types must be ([`Fallible`], [`StepFailure`]).
//!
//! Name these when implementing [`StepDef`] by hand or writing code generic over steps; a
//! `#[step]` function and a `flow!` never need them.

use super::StepDef;
use std::any::Any;
use std::sync::Arc;

/// The state type a step's context carries: `StateOf<plan>` is `Brief` for a step taking
/// `&StepContext<Brief>`, `()` otherwise.
pub type StateOf<St> = <<St as StepDef>::Needs as StateReq>::State;

/// The state requirement of a step that takes no typed state.
///
/// ```
/// use orchflow::bounds::{AnyState, NeedsState, StateReq};
/// fn state_of<N: StateReq>() -> &'static str { std::any::type_name::<N::State>() }
/// assert_eq!(state_of::<AnyState>(), "()");
/// assert_eq!(state_of::<NeedsState<String>>(), "alloc::string::String");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyState;

/// The state requirement of a step that takes `&StepContext<S>` (see [`AnyState`]).
#[derive(Debug)]
pub struct NeedsState<S>(std::marker::PhantomData<fn() -> S>);

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::AnyState {}
    impl<S> Sealed for super::NeedsState<S> {}
}

/// A state requirement: [`AnyState`] or [`NeedsState<S>`]. Resolves to the run's state type
/// (see [`AnyState`] for an example).
pub trait StateReq: sealed::Sealed + Send + Sync + 'static {
    /// The state type a run of a flow with this requirement carries (`()` for [`AnyState`]).
    type State: Send + Sync + 'static;

    /// The state as a step with this requirement sees it, from the run's (type-erased) state,
    /// or the run's own unit value for steps without typed state (a per-run `Arc`, so parallel
    /// runs never share a reference count). `None` only if the run's state has another type,
    /// which `flow!` rules out at compile time.
    fn resolve(run_state: &Arc<dyn Any + Send + Sync>, unit: &Arc<()>) -> Option<Arc<Self::State>>;
}
impl StateReq for AnyState {
    type State = ();
    #[inline]
    fn resolve(_: &Arc<dyn Any + Send + Sync>, unit: &Arc<()>) -> Option<Arc<()>> {
        Some(Arc::clone(unit))
    }
}
impl<S: Send + Sync + 'static> StateReq for NeedsState<S> {
    type State = S;
    #[inline]
    fn resolve(run_state: &Arc<dyn Any + Send + Sync>, _: &Arc<()>) -> Option<Arc<S>> {
        Arc::clone(run_state).downcast::<S>().ok()
    }
}

/// Combines the state requirements of two steps of one flow: no requirement meets anything,
/// and a typed state meets only itself. `flow!` folds it over every step, so two steps that
/// name different `StepContext<S>` types are a compile error at the second one.
///
/// ```
/// use orchflow::bounds::{AnyState, Meet, NeedsState};
/// fn meet<A: Meet<B>, B>() -> &'static str { std::any::type_name::<A::Out>() }
/// assert!(meet::<AnyState, NeedsState<u8>>().ends_with("NeedsState<u8>"));
/// assert!(meet::<NeedsState<u8>, AnyState>().ends_with("NeedsState<u8>"));
/// ```
#[diagnostic::on_unimplemented(
    message = "the steps of this flow need different shared state types",
    label = "this step's `StepContext` state differs from an earlier step's",
    note = "earlier steps need `{Self}`, this one needs `{B}`"
)]
pub trait Meet<B> {
    /// The combined requirement.
    type Out: StateReq;
}
#[diagnostic::do_not_recommend]
impl<B: StateReq> Meet<B> for AnyState {
    type Out = B;
}
impl<S: Send + Sync + 'static> Meet<AnyState> for NeedsState<S> {
    type Out = NeedsState<S>;
}
impl<S: Send + Sync + 'static> Meet<NeedsState<S>> for NeedsState<S> {
    type Out = NeedsState<S>;
}

/// What a step's error type must be: printable, and convertible into [`BoxError`](crate::error::BoxError).
///
/// ```
/// use orchflow::bounds::StepFailure;
/// let e = std::io::Error::other("disk full");
/// assert_eq!(e.message(), "disk full");
/// let boxed = "a plain message".to_string().into_box();
/// assert_eq!(boxed.to_string(), "a plain message");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error type of a step",
    label = "a step's error must implement `Display` and convert into `Box<dyn Error + Send + Sync>`",
    note = "any `std::error::Error + Send + Sync + 'static` type works, as do `anyhow::Error` and `String`"
)]
pub trait StepFailure: Send + 'static {
    /// The error's message, for traces and events.
    fn message(&self) -> String;
    /// The error, boxed.
    fn into_box(self) -> crate::error::BoxError;
}
#[diagnostic::do_not_recommend]
impl<E: std::fmt::Display + Into<crate::error::BoxError> + Send + 'static> StepFailure for E {
    fn message(&self) -> String {
        self.to_string()
    }
    fn into_box(self) -> crate::error::BoxError {
        self.into()
    }
}

/// The success and error types of a fallible step's return type (`Result<T, E>` and its aliases).
///
/// ```
/// use orchflow::bounds::Fallible;
/// let r: std::io::Result<u8> = Ok(1);
/// assert_eq!(r.into_result().ok(), Some(1));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Result`",
    label = "a step whose return type is named `Result` must return `std::result::Result<T, E>`"
)]
pub trait Fallible {
    /// The output on success.
    type Ok;
    /// The error.
    type Err;
    /// Converts into a plain `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}
impl<T, E> Fallible for Result<T, E> {
    type Ok = T;
    type Err = E;
    #[inline(always)]
    fn into_result(self) -> Result<T, E> {
        self
    }
}
