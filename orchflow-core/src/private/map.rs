//! `map(step, limit = N)`: the check that the incoming value is a collection of what the
//! first step takes (with the checks), and the run of its items (with the driver).

use super::*;

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
        crate::site::within(crate::site::Seg::Branch(index), || fut.poll(cx))
            .map(|r| (index, slot, driver::suspension_apart(r)))
    }
}
