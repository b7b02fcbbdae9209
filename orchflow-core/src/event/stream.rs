//! The stream of a run's events, and the buffers it recycles.

use super::{Event, RunEvent};
use crate::result::FlowResult;
use crate::trace::RawTrace;
use futures_core::Stream;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// What a streamed run records under one lock: the events its stream has not taken yet, and
/// (so that a completed attempt costs one lock, not two) the run's traces.
#[derive(Default)]
pub(crate) struct EventLog {
    events: VecDeque<RunEvent>,
    pub(crate) traces: Vec<RawTrace>,
}

impl EventLog {
    #[inline]
    pub(crate) fn push(&mut self, e: RunEvent) {
        // Within capacity (the common case: the queue is sized for the flow), the event is
        // written straight into its slot; `push_back` alone keeps it on the stack across the
        // possible reallocation and copies it afterwards.
        if self.events.len() < self.events.capacity() {
            self.events.push_back(e);
        } else {
            self.grow_and_push(e);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow_and_push(&mut self, e: RunEvent) {
        self.events.push_back(e);
    }
}

pub(crate) type EventQueue = Mutex<EventLog>;

/// A queue with room for the events of a run of a flow with `points` resumable points (two per
/// step, and a few more), so that a run that does not yield does not regrow it.
pub(crate) fn new_queue(points: usize) -> Arc<EventQueue> {
    Arc::new(Mutex::new(EventLog {
        events: buffer(queue_capacity(points)),
        traces: Vec::new(),
    }))
}

std::thread_local! {
    /// Event buffers of finished streams, kept for the next stream on this thread: a run that
    /// emits hundreds of events before it yields then writes into memory that is still in the
    /// cache instead of a fresh allocation.
    static SPARE: std::cell::RefCell<Vec<VecDeque<RunEvent>>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// An empty buffer with room for `capacity` events: a spare one when there is one.
fn buffer(capacity: usize) -> VecDeque<RunEvent> {
    let spare = SPARE.with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()));
    match spare {
        Some(mut b) => {
            b.reserve(capacity);
            b
        }
        None => VecDeque::with_capacity(capacity),
    }
}

/// Keeps an emptied buffer for a later stream (at most four per thread, none too large).
fn give_back(mut b: VecDeque<RunEvent>) {
    b.clear();
    if b.capacity() == 0 || b.capacity() > 4096 {
        return;
    }
    SPARE.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut()
            && s.len() < 4
        {
            s.push(b);
        }
    });
}

fn queue_capacity(points: usize) -> usize {
    points.saturating_mul(2).saturating_add(8).min(4096)
}

type RunFuture<'f, O, S> = Pin<Box<dyn Future<Output = FlowResult<O, S>> + Send + 'f>>;

/// The events of one run, as a [`Stream`]. The run makes progress only while the stream is
/// polled (nothing is spawned); the last item is `FlowCompleted` or `FlowFailed` with the result.
///
/// ```
/// use futures::StreamExt;
/// use orchflow::{flow, step};
///
/// #[step] async fn double(x: u32) -> u32 { x * 2 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let f = flow! { double => double };
/// let kinds: Vec<_> = f.stream(1).map(|e| e.kind()).collect().await;
/// assert_eq!(kinds, ["flow_started", "step_started", "step_completed",
///                    "step_started", "step_completed", "flow_completed"]);
/// # }
/// ```
pub struct EventStream<'f, O, S> {
    run: Option<RunFuture<'f, O, S>>,
    queue: Arc<EventQueue>,
    ready: VecDeque<RunEvent>,
    last: Option<Event<O, S>>,
}

impl<'f, O, S> EventStream<'f, O, S> {
    pub(crate) fn new(run: RunFuture<'f, O, S>, queue: Arc<EventQueue>) -> Self {
        EventStream {
            run: Some(run),
            ready: buffer(queue.lock().map_or(64, |q| q.events.capacity())),
            queue,
            last: None,
        }
    }

    /// Takes the queued events: one lock, and (when nothing is left over) a swap of buffers
    /// rather than a move per event.
    fn drain(&mut self) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if self.ready.is_empty() {
            std::mem::swap(&mut self.ready, &mut q.events);
        } else {
            self.ready.extend(q.events.drain(..));
        }
    }
}

impl<O, S> Unpin for EventStream<'_, O, S> {}

impl<O, S> Drop for EventStream<'_, O, S> {
    fn drop(&mut self) {
        // The run first: it holds the other reference to the queue.
        self.run = None;
        give_back(std::mem::take(&mut self.ready));
        if let Some(q) = Arc::get_mut(&mut self.queue) {
            let q = q.get_mut().unwrap_or_else(|p| p.into_inner());
            give_back(std::mem::take(&mut q.events));
        }
    }
}

impl<O, S> Stream for EventStream<'_, O, S> {
    type Item = Event<O, S>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(e) = this.ready.pop_front() {
            return Poll::Ready(Some(e.into()));
        }
        if let Some(run) = this.run.as_mut() {
            let polled = run.as_mut().poll(cx);
            this.drain();
            if let Poll::Ready(result) = polled {
                this.run = None;
                this.last = Some(if result.success {
                    Event::FlowCompleted(Box::new(result))
                } else if result.is_suspended() {
                    Event::FlowSuspended(Box::new(result))
                } else {
                    Event::FlowFailed(Box::new(result))
                });
            }
            if let Some(e) = this.ready.pop_front() {
                return Poll::Ready(Some(e.into()));
            }
            if this.run.is_some() {
                return Poll::Pending;
            }
        }
        Poll::Ready(this.last.take())
    }
}
