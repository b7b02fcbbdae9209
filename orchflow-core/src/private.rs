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
//! The expansion calls nothing else of `orchflow-core`: the runtime handle ([`Rt`]), the memo of
//! a resumed run ([`Memo`], [`Resume`]) and [`Flow`]'s constructor are reached only through the
//! free functions of section 4, so their methods and fields are not part of the contract
//! between the macros and the runtime.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;

// ---------------------------------------------------------------------------------------------
// 1. Types
// ---------------------------------------------------------------------------------------------

pub use crate::context::StepContext;
pub use crate::durable::Checkpointable;
pub use crate::durable::replay::{Memo, Resume};
pub use crate::flow::{DriverFuture, Flow, FlowInfo};
pub use crate::graph::{Edge, EdgeKind, FlowGraph, Node, NodeKind, StaticNode, StepFacts};
pub use crate::policy::{FlowDefaults, RetryPolicy, StepPolicy};
pub use crate::run::{Halt, Rt};
pub use crate::step::bounds::{AnyState, Fallible, Meet, NeedsState, StateReq};
pub use crate::step::{Feed, Predicate, StepCall, StepDef, ValueOnly, WithContext};
pub use serde;
pub use serde_json::Value;
pub use std::borrow::Cow;
pub use std::convert::Infallible;
pub use std::option::Option::Some;
pub use std::time::Duration;
pub use std::vec::Vec;
pub use tokio::try_join;

// ---------------------------------------------------------------------------------------------
// 2. Checks
// ---------------------------------------------------------------------------------------------

/// Marks the flow's own input as the "previous step" of the first item.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct flow_input;

/// The type of a value, for messages.
#[inline(always)]
pub fn of<A>(_: &A) -> PhantomData<A> {
    PhantomData
}

macro_rules! all_tuple {
    ($($name:ident: $($t:ident),+;)*) => {$(
        /// The types named by several markers, as one tuple, for messages.
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        pub fn $name<$($t),+>($(_: PhantomData<$t>),+) -> PhantomData<($($t,)+)> {
            PhantomData
        }
    )*};
}
all_tuple! {
    all2: A, B;
    all3: A, B, C;
    all4: A, B, C, D;
    all5: A, B, C, D, E;
    all6: A, B, C, D, E, F;
    all7: A, B, C, D, E, F, G;
    all8: A, B, C, D, E, F, G, H;
    all9: A, B, C, D, E, F, G, H, I;
    all10: A, B, C, D, E, F, G, H, I, J;
    all11: A, B, C, D, E, F, G, H, I, J, K;
    all12: A, B, C, D, E, F, G, H, I, J, K, L;
}

/// A hand-off between two items of a pipeline: the value `Self` must be what step `To` takes.
#[diagnostic::on_unimplemented(
    message = "step `{To}` cannot take the output of `{From}`: expected `{T}`, found `{Self}`",
    label = "`{To}` takes `{T}`, but `{From}` produces `{Self}`",
    note = "in a pipeline `a => b`, `b`'s first parameter must be `a`'s output type `T` (or `&T`)"
)]
pub trait Handoff<T, From, To>: Sized {
    /// The identity.
    fn pass(feed: Feed<'_, Self>) -> Feed<'_, T>;
}
impl<T, From, To> Handoff<T, From, To> for T {
    #[inline(always)]
    fn pass(feed: Feed<'_, T>) -> Feed<'_, T> {
        feed
    }
}

/// Checks and performs a hand-off into step `to`.
#[inline(always)]
pub fn handoff<'a, V, From, To>(
    _from: PhantomData<From>,
    _to: &To,
    feed: Feed<'a, V>,
) -> Feed<'a, To::Input>
where
    To: StepDef,
    V: Handoff<To::Input, From, To>,
{
    V::pass(feed)
}

/// The output type of a `map` over items producing `O`, for messages.
#[inline(always)]
pub fn vec_of<O>(_: PhantomData<O>) -> PhantomData<Vec<O>> {
    PhantomData
}

/// What a `map` runs over must be a collection of what its first step takes.
#[diagnostic::on_unimplemented(
    message = "`map({To})` needs a collection of `{T}`, found `{Self}`",
    label = "`{To}` takes `{T}`: `map` runs it once per item of this value",
    note = "the value entering `map(step, limit = N)` must be a collection (`IntoIterator`) of the type `T` the step takes (as `T` or `&T`)"
)]
pub trait MapOver<T, To>: Sized {
    /// The items.
    type Items: Iterator<Item = T>;
    /// Iterates over the items.
    fn items(self) -> Self::Items;
}
#[diagnostic::do_not_recommend]
impl<C: IntoIterator<Item = T>, T, To> MapOver<T, To> for C {
    type Items = C::IntoIter;
    #[inline(always)]
    fn items(self) -> C::IntoIter {
        self.into_iter()
    }
}

/// A borrowed collection a `map` runs over must lend what its first step takes.
#[diagnostic::on_unimplemented(
    message = "`map({To})` needs a collection of `{T}`, found `{Self}`",
    label = "`{To}` takes `{T}`: `map` runs it once per item of this value",
    note = "the value entering `map(step, limit = N)` must be a collection (`IntoIterator`) of the type `T` the step takes (as `T` or `&T`)"
)]
pub trait MapOverRef<'a, T: 'a, To>: Sized {
    /// The items.
    type Items: Iterator<Item = &'a T>;
    /// Iterates over the items.
    fn items_ref(self) -> Self::Items;
}
#[diagnostic::do_not_recommend]
impl<'a, C, T: 'a, To> MapOverRef<'a, T, To> for &'a C
where
    &'a C: IntoIterator<Item = &'a T>,
{
    type Items = <&'a C as IntoIterator>::IntoIter;
    #[inline(always)]
    fn items_ref(self) -> Self::Items {
        self.into_iter()
    }
}

/// The items of an owned collection, checked to be what step `to` takes, each given away.
#[inline(always)]
pub fn map_owned<'a, C, To>(_to: &To, c: C) -> impl Iterator<Item = Feed<'a, To::Input>>
where
    To: StepDef,
    C: MapOver<To::Input, To>,
{
    c.items().map(Feed::Owned)
}

/// The items of a borrowed collection, checked to be what step `to` takes, each lent.
#[inline(always)]
pub fn map_borrowed<'a, C, To>(_to: &To, c: &'a C) -> impl Iterator<Item = Feed<'a, To::Input>>
where
    To: StepDef,
    To::Input: 'a,
    &'a C: MapOverRef<'a, To::Input, To>,
{
    c.items_ref().map(Feed::Borrowed)
}

/// The two arms of an `if` must produce one type.
#[diagnostic::on_unimplemented(
    message = "the arms of this `if` produce different types: `{Then}` gives `{T}`, `{Else}` gives `{Self}`",
    label = "this arm produces `{Self}`, the first arm `{T}`",
    note = "both arms of `if pred {{ … }} else {{ … }}` must end with the same output type"
)]
pub trait ArmsAgree<T, Then, Else>: Sized {
    /// The identity.
    fn agree(self) -> T;
}
impl<T, Then, Else> ArmsAgree<T, Then, Else> for T {
    #[inline(always)]
    fn agree(self) -> T {
        self
    }
}

/// A second impl so that the compiler cannot infer `T` from the value: `T` must come from the
/// surrounding code, and a mismatch is then reported through the trait's message.
impl<X, Then, Else> ArmsAgree<NotInferred<X>, Then, Else> for X {
    fn agree(self) -> NotInferred<X> {
        NotInferred(self)
    }
}

/// Never constructed by generated code; see the second impls of [`ArmsAgree`], [`PassThrough`]
/// and [`LoopCarry`].
#[derive(Debug)]
pub struct NotInferred<X>(X);

/// Checks that the `else` arm produces what the first arm produces.
#[inline(always)]
pub fn arms_agree<T, V, Then, Else>(_: PhantomData<Then>, _: PhantomData<Else>, v: V) -> T
where
    V: ArmsAgree<T, Then, Else>,
{
    v.agree()
}

/// An `if` without `else` passes its input on unchanged, so its arm must keep the type.
#[diagnostic::on_unimplemented(
    message = "an `if` without `else` passes its input through, so its arm must produce `{T}` again; `{Last}` gives `{Self}`",
    label = "this arm produces `{Self}`, but the value entering the `if` is `{T}`",
    note = "add an `else` arm that produces the same type, or end the arm with a step returning `{T}`"
)]
pub trait PassThrough<T, Last>: Sized {
    /// The identity.
    fn pass(self) -> T;
}
impl<T, Last> PassThrough<T, Last> for T {
    #[inline(always)]
    fn pass(self) -> T {
        self
    }
}

/// A second impl so that the compiler cannot infer `T` from the value: `T` must come from the
/// surrounding code, and a mismatch is then reported through the trait's message.
impl<X, Last> PassThrough<NotInferred<X>, Last> for X {
    fn pass(self) -> NotInferred<X> {
        NotInferred(self)
    }
}

/// Checks the arm of an `if` without `else`.
#[inline(always)]
pub fn pass_through<T, V: PassThrough<T, Last>, Last>(_: PhantomData<Last>, v: V) -> T {
    v.pass()
}

/// A loop body's output becomes its next input.
#[diagnostic::on_unimplemented(
    message = "the body of this loop must produce what it takes: expected `{T}`, `{Last}` gives `{Self}`",
    label = "this step ends the loop body with `{Self}`, but the loop carries `{T}`",
    note = "a loop repeats its body on its own output, so the body's output type must equal its input type"
)]
pub trait LoopCarry<T, Last>: Sized {
    /// The identity.
    fn carry(self) -> T;
}
impl<T, Last> LoopCarry<T, Last> for T {
    #[inline(always)]
    fn carry(self) -> T {
        self
    }
}

/// A second impl so that the compiler cannot infer `T` from the value: `T` must come from the
/// surrounding code, and a mismatch is then reported through the trait's message.
impl<X, Last> LoopCarry<NotInferred<X>, Last> for X {
    fn carry(self) -> NotInferred<X> {
        NotInferred(self)
    }
}

/// Checks a loop body's output.
#[inline(always)]
pub fn loop_carry<T, V: LoopCarry<T, Last>, Last>(_: PhantomData<Last>, v: V) -> T {
    v.carry()
}

/// A value that must be owned where the flow starts with an `if` or a loop.
#[diagnostic::on_unimplemented(
    message = "the flow's input `{Self}` must implement `Clone` when the flow starts with an `if` or a loop",
    label = "the first item needs its own copy of the input",
    note = "the run keeps the original input for `StepContext::input`; start with a step instead"
)]
pub trait OwnedStart: Sized {
    /// Clones a borrowed input.
    fn own(feed: Feed<'_, Self>) -> Self;
}
#[diagnostic::do_not_recommend]
impl<T: Clone> OwnedStart for T {
    fn own(feed: Feed<'_, T>) -> T {
        feed.into_owned()
    }
}

/// Takes an owned copy of the flow's input.
#[inline(always)]
pub fn own<T: OwnedStart>(feed: Feed<'_, T>) -> T {
    T::own(feed)
}

/// A step that takes its input by value gets its own copy on each attempt that is not the last.
#[diagnostic::on_unimplemented(
    message = "this step takes `{Self}` by value, so `{Self}` must implement `Clone`",
    label = "retries and parallel branches hand each attempt its own copy",
    note = "take `&{Self}` instead to borrow the value without copying it"
)]
pub trait ByValue: Sized {
    /// The owned value, cloned when borrowed.
    fn take(feed: Feed<'_, Self>) -> Self;
}
#[diagnostic::do_not_recommend]
impl<T: Clone> ByValue for T {
    #[inline(always)]
    fn take(feed: Feed<'_, T>) -> T {
        feed.into_owned()
    }
}

/// Returns the owned input of a by-value step.
#[inline(always)]
pub fn by_value<T: ByValue>(feed: Feed<'_, T>) -> T {
    T::take(feed)
}

/// A sync step on the blocking pool needs its own copy of a value it borrows.
#[diagnostic::on_unimplemented(
    message = "this sync step borrows `{Self}` but runs on the blocking pool, so `{Self}` must implement `Clone`",
    label = "the blocking pool needs an owned copy of the value",
    note = "mark the step `#[step(inline)]` to run it on the async worker without a copy, or make it `async`"
)]
pub trait BlockingInput: Sized {
    /// The owned value, cloned when borrowed.
    fn take(feed: Feed<'_, Self>) -> Self;
}
#[diagnostic::do_not_recommend]
impl<T: Clone> BlockingInput for T {
    #[inline(always)]
    fn take(feed: Feed<'_, T>) -> T {
        feed.into_owned()
    }
}

/// Returns an owned copy of a borrowed input for a sync step on the blocking pool.
#[inline(always)]
pub fn to_blocking_pool<T: BlockingInput>(feed: Feed<'_, T>) -> T {
    T::take(feed)
}

/// The state requirement before any step is seen.
#[inline(always)]
pub fn needs_none() -> PhantomData<AnyState> {
    PhantomData
}

/// Combines the state requirement so far with step `St`'s.
#[inline(always)]
pub fn meet<N, St>(_: PhantomData<N>, _: &St) -> PhantomData<<N as Meet<St::Needs>>::Out>
where
    St: StepDef,
    N: Meet<St::Needs>,
{
    PhantomData
}

/// A value a durable run saves, at the place in the flow `Where` names (a marker type `flow!`
/// declares, such as `the_value_after_plan`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be saved in a checkpoint: it is {Where}",
    label = "this durable run saves `{Self}`",
    note = "a durable run saves every value between its steps: derive `serde::Serialize` and `serde::Deserialize` for `{Self}`, or run the flow without `.durable(…)`"
)]
pub trait Saved<Where>: serde::Serialize + serde::de::DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned, Where> Saved<Where> for T {}

/// Where a flow's input is, for [`Saved`]'s message.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct the_flow_input;

/// Whether two byte strings are equal, at compile time.
const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `a` and `b` are two different steps with one name, which would make traces, events
/// and checkpoints ambiguous. Evaluated by `flow!` in a `const` (for steps given by path, whose
/// names are known at compile time); one step used twice is not a clash.
pub const fn same_name<A: StepDef, B: StepDef>(_: &A, _: &B) -> bool {
    match (A::STATIC_NAME, B::STATIC_NAME) {
        (Some(a), Some(b)) => same_str(a, b) && !same_str(A::DEFINED_AT, B::DEFINED_AT),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Codec
// ---------------------------------------------------------------------------------------------

/// The value behind a reference as JSON when its type is `Serialize`, else `None`; decided at
/// compile time (autoref specialisation) where the type is concrete.
#[doc(hidden)]
#[macro_export]
macro_rules! __orchflow_to_json {
    ($value:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private_0_1_0::{CaptureJson as _, CaptureNone as _};
        (&&$crate::__private_0_1_0::Capture($value)).capture()
    }};
}
pub use crate::__orchflow_to_json as to_json;

/// Wraps a captured value for autoref-based JSON capture (see [`CaptureJson`]).
pub struct Capture<'a, T>(pub &'a T);

/// Chosen when `T: Serialize`.
pub trait CaptureJson {
    /// The value as JSON.
    fn capture(&self) -> Option<Value>;
}
impl<T: serde::Serialize> CaptureJson for &Capture<'_, T> {
    fn capture(&self) -> Option<Value> {
        serde_json::to_value(self.0).ok()
    }
}

/// Chosen otherwise: nothing is captured.
pub trait CaptureNone {
    /// `None`.
    fn capture(&self) -> Option<Value>;
}
impl<T> CaptureNone for Capture<'_, T> {
    fn capture(&self) -> Option<Value> {
        None
    }
}

/// A value as JSON.
#[inline]
pub fn to_value<T: serde::Serialize + ?Sized>(v: &T) -> Result<Value, serde_json::Error> {
    serde_json::to_value(v)
}

/// A value from JSON.
#[inline]
pub fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(v)
}

/// `{name: content}`.
pub fn variant(name: &'static str, content: Value) -> Value {
    let mut m = serde_json::Map::with_capacity(1);
    m.insert(name.to_string(), content);
    Value::Object(m)
}

/// An object of named fields.
pub fn fields<const N: usize>(pairs: [(&'static str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The variant name and content of `{name: content}`.
pub fn split_variant(json: Value) -> Result<(String, Value), serde_json::Error> {
    match json {
        Value::Object(m) if m.len() == 1 => match m.into_iter().next() {
            Some(pair) => Ok(pair),
            None => Err(json_error(
                "a resumable point is an object with one key".into(),
            )),
        },
        other => Err(json_error(format!(
            "a resumable point is an object with one key, not {other}"
        ))),
    }
}

/// Field `name` of an object, taken out and decoded.
pub fn field<T: serde::de::DeserializeOwned>(
    content: &mut Value,
    name: &'static str,
) -> Result<T, serde_json::Error> {
    match content.as_object_mut().and_then(|o| o.remove(name)) {
        Some(v) => serde_json::from_value(v),
        None => Err(json_error(format!("missing field `{name}`"))),
    }
}

/// The error for a variant name that is not one of the flow's points.
pub fn unknown_variant(name: &str, expected: &'static [&'static str]) -> serde_json::Error {
    json_error(format!(
        "unknown resumable point `{name}`, expected one of {}",
        expected.join(", ")
    ))
}

fn json_error(message: String) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(message)
}

/// The error of [`Checkpointable`].
pub type JsonError = serde_json::Error;

// ---------------------------------------------------------------------------------------------
// 4. Driver
// ---------------------------------------------------------------------------------------------

/// Builds a flow from its generated parts.
#[inline(always)]
pub fn new_flow<T, I, O, N, P, F>(
    info: &'static FlowInfo,
    defaults: FlowDefaults,
    needs: PhantomData<N>,
    steps: T,
    driver: F,
    input_json: fn(&I) -> Option<Value>,
    describe: fn(&T) -> Vec<StepFacts>,
) -> Flow<T, I, O, N, P, F>
where
    T: Send + Sync + 'static,
    I: Send + Sync + 'static,
    O: Send + 'static,
    N: StateReq,
    P: Send + 'static,
    // Stated as an `Fn` bound so that the compiler deduces the generated closure's signature.
    F: for<'a> Fn(&'a T, &'a Rt, Feed<'a, I>, Resume<P>) -> DriverFuture<'a, O>
        + Send
        + Sync
        + 'static,
{
    Flow::new(info, defaults, needs, steps, driver, input_json, describe)
}

/// A node of a flow's static graph.
pub const fn node(
    id: &'static str,
    parent: Option<&'static str>,
    label: &'static str,
    kind: NodeKind,
) -> Node {
    Node {
        id: Cow::Borrowed(id),
        parent: match parent {
            Some(p) => Some(Cow::Borrowed(p)),
            None => None,
        },
        label: Cow::Borrowed(label),
        kind,
    }
}

/// A step node's kind, before `Flow::graph` fills in what the step value knows.
pub const fn step_node(name: &'static str, by_path: bool) -> NodeKind {
    NodeKind::Step {
        name: Cow::Borrowed(name),
        by_path,
        retry: None,
        timeout_ms: None,
        flow: None,
    }
}

/// An `if` node's kind.
pub const fn if_node(predicate: &'static str) -> NodeKind {
    NodeKind::If {
        predicate: Cow::Borrowed(predicate),
    }
}

/// A loop node's kind.
pub const fn loop_node(max: Option<u32>, until: Option<&'static str>) -> NodeKind {
    NodeKind::Loop {
        max,
        until: match until {
            Some(u) => Some(Cow::Borrowed(u)),
            None => None,
        },
    }
}

/// An edge of a flow's static graph: a sequence, or (`repeat`) a loop's way back.
pub const fn edge(from: &'static str, to: &'static str, repeat: bool) -> Edge {
    Edge {
        from: Cow::Borrowed(from),
        to: Cow::Borrowed(to),
        kind: if repeat {
            EdgeKind::Repeat
        } else {
            EdgeKind::Sequence
        },
    }
}

/// A flow's static graph.
pub const fn graph(
    name: &'static str,
    fingerprint: u64,
    nodes: &'static [Node],
    edges: &'static [Edge],
) -> FlowGraph {
    FlowGraph {
        name: Cow::Borrowed(name),
        fingerprint,
        nodes: Cow::Borrowed(nodes),
        edges: Cow::Borrowed(edges),
        flows: Vec::new(),
    }
}

/// What a step value says of itself for [`Flow::graph`].
pub fn step_facts<St: StepDef>(step: &St) -> StepFacts {
    let policy = step.policy();
    StepFacts {
        name: step.name(),
        retry: policy.retry.map(|r| r.retries),
        timeout_ms: policy
            .timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        flow: step.graph(),
    }
}

/// The name of a step given by path when the compiler knows it, else `source` (its path as
/// written), for the static graph.
pub const fn static_name<St: StepDef>(_: &St, source: &'static str) -> &'static str {
    match St::STATIC_NAME {
        Some(name) => name,
        None => source,
    }
}

/// Boxes a generated driver's body; the bound tells the compiler the body's output type, which
/// `?` inside the `async` block needs.
#[inline(always)]
pub fn driver<'a, O, F>(body: F) -> DriverFuture<'a, O>
where
    F: std::future::Future<Output = Result<O, Halt>> + Send + 'a,
{
    Box::pin(body)
}

/// What a resumed driver starts from: the last saved point, and the memo of the inner positions
/// saved after it.
#[inline(always)]
pub fn resume_parts<P>(resume: Resume<P>) -> (Option<P>, Memo<P>) {
    (resume.point, resume.memo)
}

/// The value saved at inner position `name` of loop iterations `path`, taken once.
#[inline(always)]
pub fn memo_take<P>(memo: &Memo<P>, name: &str, path: &[u32]) -> Option<P> {
    memo.take(name, path)
}

/// Runs a step with its retry policy; `node` is its id in the flow's graph, for its traces and
/// events.
#[inline(always)]
pub fn step<'a, St: StepCall>(
    rt: &'a Rt,
    step: &'a St,
    input: Feed<'a, St::Input>,
    node: &'static crate::graph::StaticNode,
) -> impl Future<Output = Result<St::Output, Halt>> + 'a {
    rt.step(step, node, input)
}

/// A handle for the branches of a new parallel group.
#[inline(always)]
pub fn group(rt: &Rt) -> Rt {
    rt.group()
}

/// Evaluates an `if` or `until` predicate.
#[inline(always)]
pub fn decide<T, M, P: Predicate<T, M>>(
    rt: &Rt,
    which: &'static str,
    value: &T,
    pred: &P,
) -> Result<bool, Halt> {
    rt.decide(which, value, pred)
}

/// Whether the run saves checkpoints.
#[inline(always)]
pub fn is_durable(rt: &Rt) -> bool {
    rt.is_durable()
}

/// Saves a resumable point of the generated state.
#[inline(always)]
pub fn reached<'a>(
    rt: &'a Rt,
    name: Option<&'static str>,
    point: &dyn Any,
) -> impl Future<Output = Result<(), Halt>> + Send + 'a {
    rt.reached(name, point)
}

/// Saves one finished branch of a top-level parallel group.
#[inline(always)]
pub fn branch_reached<'a, J>(
    rt: &'a Rt,
    group: &'static str,
    index: usize,
    json: J,
) -> impl Future<Output = Result<(), Halt>> + 'a
where
    J: FnOnce() -> Option<Value> + 'a,
{
    rt.branch_reached(group, index, json)
}

/// Saves an inner position.
#[inline(always)]
pub fn inner_reached<'a, J>(
    rt: &'a Rt,
    name: &'static str,
    path: &'a [u32],
    iteration: Option<u32>,
    json: J,
) -> impl Future<Output = Result<(), Halt>> + 'a
where
    J: FnOnce() -> Option<Value> + 'a,
{
    rt.inner_reached(name, path, iteration, json)
}

/// The error for a resumed point that is an inner position.
#[inline(always)]
pub fn misplaced(rt: &Rt, name: Option<&'static str>) -> Halt {
    rt.misplaced(name)
}

/// Runs a sync step on tokio's blocking pool; a panic there is re-raised here, where the
/// runtime's panic containment records it as a failed attempt.
pub async fn blocking<R, F>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => std::panic::resume_unwind(Box::new("the blocking task was cancelled")),
    }
}

/// Branch `index` of a parallel group: `fut` with the branch on the question path while it is
/// polled (see `site`). A suspension (the branch waits for an answer) comes back as `Ok(Err)`,
/// so that the group's `try_join!` keeps running the other branches (which may ask questions
/// of their own); a failure is `Err`, which cancels them.
pub async fn branch<T, F>(index: u32, fut: F) -> Result<Result<T, Halt>, Halt>
where
    F: std::future::Future<Output = Result<T, Halt>>,
{
    match crate::site::scoped(crate::site::Seg::Branch(index), fut).await {
        Ok(v) => Ok(Ok(v)),
        Err(halt) if halt.is_suspension() => Ok(Err(halt)),
        Err(halt) => Err(halt),
    }
}

/// The handles of a `map`'s items: one per item it may run at once, each reused by the items
/// that follow (an item's handle says which item it runs), so that a map of thousands of items
/// builds a handful of handles.
pub struct MapSlots(Vec<Rt>);

/// The handles for a map under group handle `rt` (from [`group`]) running at most `limit` of
/// `items` at once.
pub fn map_slots<I: Iterator>(rt: &Rt, limit: u32, items: &I) -> MapSlots {
    let (low, high) = items.size_hint();
    let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    let n = limit.min(high.unwrap_or(low.max(limit)));
    MapSlots((0..n).map(|_| rt.for_items()).collect())
}

/// Gives the closure that runs one item of a map its signature: the handle it gets is one of
/// `slots`.
#[inline(always)]
pub fn map_fn<'s, T, Fut, F>(_slots: &'s MapSlots, f: F) -> F
where
    F: Fn(&'s Rt, u32, T) -> Fut,
{
    f
}

/// Runs `item` on each of `items`, at most as many at a time as `slots` holds (see
/// [`map_slots`]), each with its own handle (sharing the map's group, and saying which item it
/// runs); the outputs in input order. The first failure cancels the items in flight (dropped,
/// they record cancelled traces); an item that suspends on a question lets the others run on,
/// and the map then suspends with every question asked.
///
/// `FuturesUnordered` holds the items in flight: each is polled only when woken, so a map of
/// thousands of items costs the same per item as one of ten.
pub async fn map<'s, T, O, I, F, Fut>(
    slots: &'s MapSlots,
    items: I,
    item: F,
) -> Result<Vec<O>, Halt>
where
    I: Iterator<Item = T>,
    F: Fn(&'s Rt, u32, T) -> Fut,
    Fut: Future<Output = Result<O, Halt>>,
{
    use futures_util::StreamExt as _;
    let mut items = items.enumerate();
    let mut out: Vec<Option<O>> = Vec::with_capacity(items.size_hint().0);
    let mut free: Vec<usize> = (0..slots.0.len()).rev().collect();
    let mut running = futures_util::stream::FuturesUnordered::new();
    let mut suspended = Vec::new();
    loop {
        while let Some(&slot) = free.last() {
            let Some((i, value)) = items.next() else {
                break;
            };
            let Some(index) = u32::try_from(i).ok().filter(|i| *i != u32::MAX) else {
                return Err(Halt::new(crate::error::FlowError::Step {
                    step: "map".into(),
                    attempts: 0,
                    source: crate::error::StepError::Failed(
                        "a map runs over at most u32::MAX - 1 items".into(),
                    ),
                }));
            };
            let Some(rt) = slots.0.get(slot) else {
                break;
            };
            free.pop();
            rt.set_item(index);
            out.push(None);
            running.push(InFlight {
                index,
                slot,
                fut: Box::pin(item(rt, index, value)),
            });
        }
        match running.next().await {
            None => break,
            Some((i, slot, outcome)) => {
                free.push(slot);
                match outcome {
                    Ok(Ok(v)) => {
                        if let Some(place) = out.get_mut(i as usize) {
                            *place = Some(v);
                        }
                    }
                    Ok(Err(suspension)) => suspended.push(suspension),
                    // Returning drops `running`: the items in flight are cancelled.
                    Err(halt) => return Err(halt),
                }
            }
        }
    }
    if !suspended.is_empty() {
        return Err(Halt::suspended(suspended));
    }
    Ok(out.into_iter().flatten().collect())
}

/// One item of a [`map`] in flight: its future (boxed, so that the set of items in flight moves
/// a pointer rather than the step's whole state), polled with the item on the question path
/// (as [`branch`] does). Its output is the item's index, its slot, and the outcome as
/// [`branch`] gives it.
struct InFlight<Fut> {
    index: u32,
    slot: usize,
    fut: std::pin::Pin<Box<Fut>>,
}

impl<O, Fut: Future<Output = Result<O, Halt>>> Future for InFlight<Fut> {
    type Output = (u32, usize, Result<Result<O, Halt>, Halt>);

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        let (index, slot) = (this.index, this.slot);
        let fut = this.fut.as_mut();
        crate::site::within(crate::site::Seg::Branch(index), || fut.poll(cx)).map(|r| {
            let outcome = match r {
                Ok(v) => Ok(Ok(v)),
                Err(halt) if halt.is_suspension() => Ok(Err(halt)),
                Err(halt) => Err(halt),
            };
            (index, slot, outcome)
        })
    }
}

/// The outcomes of a parallel group's branches (each from [`branch`]): their values, or one
/// suspension waiting on every question the branches asked.
pub trait Branches {
    /// The tuple of the branches' values.
    type Values;
    /// The values, or the suspension.
    fn all(self) -> Result<Self::Values, Halt>;
}

macro_rules! branches {
    ($($t:ident $v:ident),+) => {
        impl<$($t),+> Branches for ($(Result<$t, Halt>,)+) {
            type Values = ($($t,)+);
            #[inline]
            fn all(self) -> Result<Self::Values, Halt> {
                match self {
                    ($(Ok($v),)+) => Ok(($($v,)+)),
                    ($($v,)+) => Err(Halt::suspended([$($v.err()),+].into_iter().flatten())),
                }
            }
        }
    };
}
branches!(A a, B b);
branches!(A a, B b, C c);
branches!(A a, B b, C c, D d);
branches!(A a, B b, C c, D d, E e);
branches!(A a, B b, C c, D d, E e, F f);
branches!(A a, B b, C c, D d, E e, F f, G g);
branches!(A a, B b, C c, D d, E e, F f, G g, H h);
branches!(A a, B b, C c, D d, E e, F f, G g, H h, I i);
branches!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j);
branches!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k);
branches!(A a, B b, C c, D d, E e, F f, G g, H h, I i, J j, K k, L l);

// ---------------------------------------------------------------------------------------------
// 5. Questions
// ---------------------------------------------------------------------------------------------

/// A flow's step as a human question: its name and the step's type (one question used twice is
/// one question), or `None` for other steps.
#[inline]
pub fn question<St: StepDef>(step: &St) -> Option<(&'static str, std::any::TypeId)> {
    step.question()
        .map(|name| (name, std::any::TypeId::of::<St>()))
}

/// Checks the questions of a flow when `flow!` builds it: two different questions with one
/// name are an error that every run reports (see [`invalid`]).
pub fn questions(
    all: &[Option<(&'static str, std::any::TypeId)>],
) -> Option<crate::human::DuplicateQuestion> {
    let all: Vec<_> = all.iter().flatten().collect();
    all.iter().enumerate().find_map(|(j, (name, ty))| {
        all[..j]
            .iter()
            .any(|(n, t)| n == name && t != ty)
            .then_some(crate::human::DuplicateQuestion { name })
    })
}

/// The failure of every run of a flow that `flow!` found invalid when it was built.
#[cold]
pub fn invalid(e: crate::human::DuplicateQuestion) -> Halt {
    Halt::new(crate::error::FlowError::Step {
        step: e.name.into(),
        attempts: 0,
        source: crate::error::StepError::Failed(Box::new(e)),
    })
}
