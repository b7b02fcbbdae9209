//! The traits `#[step]` implements and `flow!` drives.

pub mod bounds;

use crate::context::StepContext;
use crate::policy::StepPolicy;
use bounds::{AnyState, NeedsState, StateOf, StateReq, StepFailure};
use std::future::Future;
use std::marker::PhantomData;

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
/// step requires ([`AnyState`](bounds::AnyState) or [`NeedsState<S>`](bounds::NeedsState)).
///
/// ```
/// use orchflow::bounds::AnyState;
/// use orchflow::{flow, Feed, StepCall, StepContext, StepDef};
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
    /// The state requirement: [`AnyState`](bounds::AnyState) or [`NeedsState<S>`](bounds::NeedsState).
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

    /// The structure of the flow this step runs, for a step that is a flow (nested flows
    /// appear in their parent's [`FlowGraph::flows`](crate::graph::FlowGraph::flows)).
    #[doc(hidden)]
    fn graph(&self) -> Option<crate::graph::FlowGraph> {
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

    /// Where the step is defined in the source (`#[step]`: its function), for replay reports.
    #[doc(hidden)]
    const SOURCE: crate::replay::Source = crate::replay::Source::UNKNOWN;

    /// An input read back from JSON (a fork's edited input), when its type is `Deserialize`:
    /// `None` when it is not.
    fn restore_input(
        &self,
        _json: serde_json::Value,
    ) -> Option<Result<Self::Input, serde_json::Error>> {
        None
    }

    /// The output of a call with `input`, read back from the JSON that
    /// [`capture_output`](Self::capture_output) made of it (a replay serves recorded outputs
    /// so): `None` when the output cannot be read back (its type is not `Deserialize`).
    fn restore_output(
        &self,
        _input: &Self::Input,
        _json: serde_json::Value,
    ) -> Option<Result<Self::Output, serde_json::Error>> {
        None
    }
}

/// Calling a step. The context carries the state type the step asked for: `()` for a step that
/// takes no context or a plain `&StepContext`, `Brief` for one that takes `&StepContext<Brief>`
/// (`flow!` checks at compile time that all steps of a flow agree, see [`Meet`](bounds::Meet)). See
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

/// Marks predicates of the form `fn(&T) -> bool`.
#[doc(hidden)]
#[derive(Debug)]
pub struct ValueOnly;
/// Marks predicates of the form `fn(&T, &StepContext<S>) -> bool`.
#[doc(hidden)]
#[derive(Debug)]
pub struct WithContext<S>(PhantomData<fn() -> S>);

/// A predicate of `if` or `until` (see `Rt::decide`).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot decide on a value of type `{T}`",
    label = "expected a predicate `fn(&{T}) -> bool` or `fn(&{T}, &StepContext<S>) -> bool`",
    note = "closures need their parameter types written out: `|d: &{T}| …`"
)]
pub trait Predicate<T, M>: Send + Sync + 'static {
    /// The state its context carries.
    type Needs: StateReq;
    /// Evaluates the predicate.
    fn test(&self, value: &T, ctx: &StepContext<<Self::Needs as StateReq>::State>) -> bool;
}
#[diagnostic::do_not_recommend]
impl<T, F> Predicate<T, ValueOnly> for F
where
    F: Fn(&T) -> bool + Send + Sync + 'static,
{
    type Needs = AnyState;
    #[inline(always)]
    fn test(&self, value: &T, _: &StepContext<()>) -> bool {
        self(value)
    }
}
#[diagnostic::do_not_recommend]
impl<T, S, F> Predicate<T, WithContext<S>> for F
where
    F: Fn(&T, &StepContext<S>) -> bool + Send + Sync + 'static,
    S: Send + Sync + 'static,
{
    type Needs = NeedsState<S>;
    #[inline(always)]
    fn test(&self, value: &T, ctx: &StepContext<S>) -> bool {
        self(value, ctx)
    }
}
