//! The run: what the generated drivers call to run steps, and what a run shares.
//!
//! # Who owns what
//!
//! * A run's [`RunCore`] is created by `Flow::execute` and shared (`Arc`) by every handle and
//!   every step context of the run: its identity and input, its clock origin, the session's
//!   traces, the event queue when somebody listens, the human-input [`Asker`](crate::human),
//!   and, for a durable run, its [`DurableRun`] (store, claim, journal position). Nothing in it
//!   is generic over the flow's types.
//! * An [`Rt`] is the handle a generated driver holds: the core, the type-erased shared state,
//!   and where in the flow the driver is (enclosing step of a nested flow, parallel group).
//!   The driver owns it for the run's length; a parallel group gets its own ([`Rt::group`]),
//!   a nested flow too ([`Rt::child`]); all point at one core.
//! * A step context ([`StepContext`](crate::StepContext)) points at the core only through
//!   `context::RunView`; the run layer is the one that knows the core's type.
//!
//! # Where traces live
//!
//! A session's traces are compact [`RawTrace`](crate::trace::RawTrace)s, kept in the core
//! (`RunCore::traces`) for a run nobody streams, and next to the events under the event queue's
//! lock (`EventLog::traces`) for a streamed one, so that an attempt's end costs one lock. They
//! become public [`StepTrace`](crate::StepTrace)s only when read: at a checkpoint (the ones
//! since the last save) and at the run's end ([`Traces`](crate::Traces) builds them when
//! first read). Earlier sessions' traces of a resumed run are kept apart, already public.
//!
//! # The hot path
//!
//! A step's attempt ([`attempt`]) allocates nothing, takes at most one lock (the trace and
//! the event of its end together), reads the clock twice when traces or events are on and not
//! at all otherwise (an attempt that follows another's success with only glue between them
//! starts at that one's end), and enters a span only when a subscriber wants it.
//!
//! # Why futures are boxed where they are
//!
//! A run's future holds every future the driver is awaiting, so its size is what each run
//! costs in memory while it waits (a suspended run, many runs alive at once). What is rare is
//! boxed so that the common path stays small: the retry path ([`retry`]: only after a
//! failure), a timeout's timer, a span, a durable run's journal writes, and the run's end. The
//! driver itself is boxed once (`__private_0_1_0::driver`): its type is the generated `async` block.
//! The step, retry and attempt functions return `async` blocks rather than being `async fn`,
//! so that their futures hold their arguments once.
//!
//! # Files
//!
//! * [`core`]: [`RunCore`] and [`Rt`];
//! * [`attempt`]: one attempt, with its timeout and panic containment, trace and events;
//! * [`retry`]: the retry loop and its backoff;
//! * [`replayed`]: a step call of a run that replays or forks a recording.
//!
//! Checkpointing hooks of the handle (`Rt::reached` and the rest) are written in
//! `durable::journal`, which owns the journal.

mod attempt;
mod core;
mod replayed;
mod retry;

pub use self::core::Rt;
pub(crate) use self::core::{DurableRun, Journal, PointJson, RunCore};

use crate::error::FlowError;

/// Why a run stopped early (a failure or a suspension). Carried up through the generated
/// driver with `?`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Halt(pub(crate) Box<FlowError>);

impl Halt {
    pub(crate) fn new(e: FlowError) -> Self {
        Halt(Box::new(e))
    }

    /// Whether the run stops to wait for answers (rather than because something failed).
    pub(crate) fn is_suspension(&self) -> bool {
        matches!(*self.0, FlowError::Suspended { .. })
    }

    /// One suspension waiting on every question of `halts` (all suspensions), in order.
    pub(crate) fn suspended(halts: impl IntoIterator<Item = Halt>) -> Halt {
        let mut all = Vec::new();
        for h in halts {
            if let FlowError::Suspended { questions } = *h.0 {
                all.extend(questions);
            }
        }
        Halt::new(FlowError::Suspended { questions: all })
    }

    pub(crate) fn into_error(self) -> FlowError {
        *self.0
    }
}
