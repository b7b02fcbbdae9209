//! Checks: the compile-time checks of `flow!`, as traits with
//! `#[diagnostic::on_unimplemented]` messages. The macro calls the helper functions with the
//! user's spans, so an unmet bound is reported at the offending token, in words.

use super::*;

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
