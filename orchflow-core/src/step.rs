//! The traits `#[step]` implements and `flow!` drives.

use crate::context::StepContext;
use crate::policy::StepPolicy;
use std::any::Any;
use std::future::Future;
use std::sync::Arc;

/// A step's input as the runtime hands it over: owned when this is the value's last use,
/// borrowed when it is still needed (another attempt may follow, or sibling branches share it).
///
/// A step that takes its input by value clones a borrowed feed; a step that takes `&T` never
/// clones.
///
/// ```
/// use orchflow_core::Feed;
/// let owned: Feed<'_, String> = Feed::Owned("a".to_string());
/// let s = String::from("b");
/// let borrowed = Feed::Borrowed(&s);
/// assert_eq!(owned.get(), "a");
/// assert_eq!(borrowed.into_owned(), "b");
/// ```
#[derive(Debug)]
pub enum Feed<'a, T> {
    /// The runtime gives the value away.
    Owned(T),
    /// The runtime keeps the value; the step may read it.
    Borrowed(&'a T),
}

impl<'a, T> Feed<'a, T> {
    /// The value, by reference.
    pub fn get(&self) -> &T {
        match self {
            Feed::Owned(v) => v,
            Feed::Borrowed(v) => v,
        }
    }

    /// The value, cloned if it is borrowed.
    pub fn into_owned(self) -> T
    where
        T: Clone,
    {
        match self {
            Feed::Owned(v) => v,
            Feed::Borrowed(v) => v.clone(),
        }
    }

    /// A borrowed feed of the same value.
    pub fn reborrow(&self) -> Feed<'_, T> {
        Feed::Borrowed(self.get())
    }
}

/// What a step is: its name, payload types and policy. Implemented by `#[step]` and by flows;
/// implement it (with [`StepCall`]) by hand for steps configured at run time.
///
/// `Input` is the payload the step consumes (for a step that takes `&Plan`, `Plan`), `Output`
/// the payload it produces (for `Result<T, E>`, `T`). `Needs` says which shared state type the
/// step requires ([`AnyState`] or [`NeedsState<S>`]).
///
/// ```
/// use orchflow::{flow, AnyState, Feed, StepCall, StepContext, StepDef};
/// use std::convert::Infallible;
///
/// /// Adds a number chosen at run time.
/// struct Add(u32);
///
/// impl StepDef for Add {
///     type Input = u32;
///     type Output = u32;
///     type Error = Infallible;
///     type Needs = AnyState;
///     fn name(&self) -> &'static str {
///         "add"
///     }
/// }
///
/// impl StepCall for Add {
///     async fn call<'a>(&'a self, input: Feed<'a, u32>, _: &'a StepContext) -> Result<u32, Infallible> {
///         Ok(input.get() + self.0)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let f = flow! { (Add(2)) => (Add(40)) };
/// assert_eq!(f.run(0).await.output, Some(42));
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a step",
    label = "not a step: mark the function with `#[step]`, or use a flow",
    note = "only `#[step]` functions and `flow!` values can stand in a flow's pipeline"
)]
pub trait StepDef: Send + Sync + 'static {
    /// The payload the step takes.
    type Input: Send + Sync + 'static;
    /// The payload the step produces.
    type Output: Send + 'static;
    /// The step's typed error (`Infallible` for steps that cannot fail).
    type Error: StepFailure;
    /// The state requirement: [`AnyState`] or [`NeedsState<S>`].
    type Needs: StateReq;

    /// The step's name, as it appears in traces and events.
    fn name(&self) -> &'static str;

    /// The step's name when it is known at compile time (`#[step]` sets it to what
    /// [`name`](Self::name) returns), so that `flow!` rejects two different steps with one name
    /// at compile time. `None` for steps named at run time (flows, human questions, most
    /// hand-written steps).
    #[doc(hidden)]
    const STATIC_NAME: Option<&'static str> = None;

    /// Where the step is defined (`#[step]`: the module path and the function's name), so that
    /// one step used twice is not taken for two steps that share a name.
    #[doc(hidden)]
    const DEFINED_AT: &'static str = "";

    /// The question's name, for a step that asks a person ([`human::ask`](crate::human::ask)):
    /// a flow with two different questions of one name reports it on every run.
    #[doc(hidden)]
    fn question(&self) -> Option<&'static str> {
        None
    }

    /// The step's own policy; `None` fields defer to the flow's defaults.
    fn policy(&self) -> StepPolicy<Self::Error> {
        StepPolicy::INHERIT
    }

    /// Whether the step reads its [`StepContext`]. A step that answers `false` is handed a
    /// shared context whose step name and attempt are not its own, which saves building one per
    /// attempt; `#[step]` answers `false` for functions without a context parameter.
    fn uses_context(&self) -> bool {
        true
    }

    /// Whether flow-level default retries apply to this step when it sets none.
    /// Nested flows answer `false`: their steps already retry.
    fn inherits_defaults(&self) -> bool {
        true
    }

    /// Whether this error is a request to suspend the run (human-input steps, nested flows
    /// that ask), and the questions it waits on.
    fn suspension(&self, _error: &Self::Error) -> Option<Vec<crate::store::PendingInput>> {
        None
    }

    /// The input as JSON, when its type is `Serialize`.
    fn capture_input(&self, _input: &Self::Input) -> Option<serde_json::Value> {
        None
    }

    /// The output as JSON, when its type is `Serialize`.
    fn capture_output(&self, _output: &Self::Output) -> Option<serde_json::Value> {
        None
    }
}

/// Calling a step. The context carries the state type the step asked for: `()` for a step that
/// takes no context or a plain `&StepContext`, `Brief` for one that takes `&StepContext<Brief>`
/// (`flow!` checks at compile time that all steps of a flow agree, see [`Meet`]). See
/// [`StepDef`] for an example of implementing both by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a step",
    label = "not a step: mark the function with `#[step]`, or use a flow",
    note = "only `#[step]` functions and `flow!` values can stand in a flow's pipeline"
)]
pub trait StepCall: StepDef {
    /// Runs one attempt.
    fn call<'a>(
        &'a self,
        input: Feed<'a, Self::Input>,
        ctx: &'a StepContext<StateOf<Self>>,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send + 'a;
}

/// The state type a step's context carries: `StateOf<plan>` is `Brief` for a step taking
/// `&StepContext<Brief>`, `()` otherwise.
pub type StateOf<St> = <<St as StepDef>::Needs as StateReq>::State;

/// The state requirement of a step that takes no typed state.
///
/// ```
/// use orchflow::{AnyState, NeedsState, StateReq};
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
/// use orchflow::{AnyState, Meet, NeedsState};
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

/// What a step's error type must be: printable, and convertible into [`BoxError`](crate::BoxError).
///
/// ```
/// use orchflow::StepFailure;
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
    fn into_box(self) -> crate::BoxError;
}
#[diagnostic::do_not_recommend]
impl<E: std::fmt::Display + Into<crate::BoxError> + Send + 'static> StepFailure for E {
    fn message(&self) -> String {
        self.to_string()
    }
    fn into_box(self) -> crate::BoxError {
        self.into()
    }
}

/// The success and error types of a fallible step's return type (`Result<T, E>` and its aliases).
///
/// ```
/// use orchflow::Fallible;
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
