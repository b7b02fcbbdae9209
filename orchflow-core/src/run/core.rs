//! The run's core ([`RunCore`], what every step of one run shares) and the handle a generated
//! driver holds ([`Rt`]). See the [module docs](super) for who owns what.

use super::Halt;
use super::attempt::panic_message;
use crate::clock::clock;
use crate::context::{RunId, RunView, StepContext};
use crate::error::FlowError;
use crate::event::{EventQueue, RunEvent, StepEvent};
use crate::human::Asker;
use crate::policy::FlowDefaults;
use crate::step::Predicate;
use crate::step::bounds::StateReq;
use crate::store::CheckpointStore;
use crate::trace::{RawTrace, StepTrace, Traces, push_raw};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What every step of one run shares: identity, the original input, traces and the event queue.
pub(crate) struct RunCore {
    pub(crate) run_id: RunId,
    pub(crate) flow_name: &'static str,
    pub(crate) input: Arc<dyn Any + Send + Sync>,
    pub(crate) capture: bool,
    /// The start in the fast clock's raw ticks (see [`clock`](crate::clock::clock)).
    pub(crate) started_raw: u64,
    pub(crate) started_at: SystemTime,
    /// Which session of the run this is: 1 at its start, one more for each resume.
    pub(crate) session: u32,
    /// Traces of earlier sessions of a resumed run.
    // Boxed: only resumed runs have any, and every run carries the field (one word, not three).
    #[allow(clippy::box_collection)]
    pub(crate) prior: Option<Box<Vec<StepTrace>>>,
    pub(crate) traces: Mutex<Vec<RawTrace>>,
    pub(crate) traces_on: bool,
    pub(crate) events: Option<Arc<EventQueue>>,
    pub(crate) groups: AtomicU32,
    /// When the run's last attempt succeeded (nanoseconds from its start), as long as nothing
    /// but the generated glue has run since; [`NO_TIME`] otherwise. The next attempt to start
    /// takes it as its start instead of reading the clock again: in a sequence, one step's end
    /// is the next one's start. Anything else that takes time clears it: an attempt or the run
    /// returning `Pending`, a predicate, a retry's delay, a checkpoint.
    pub(crate) last_end: AtomicU64,
    /// How many traces to make room for at the first one (the flow's resumable points: about
    /// one per step), so that short runs hold no spare capacity and long ones grow less.
    pub(crate) trace_hint: u16,
    /// Boxed: most runs are not durable, and many runs may be alive at once.
    pub(crate) durable: Option<Box<DurableRun>>,
    /// The state of steps without typed state.
    pub(crate) unit: Arc<()>,
    pub(crate) human: Asker,
    /// The replayer of a run that replays or forks a recording ([`crate::replay`]).
    pub(crate) replay: Option<Arc<crate::replay::serve::Replayer>>,
}

/// The checkpointing side of a durable run.
pub(crate) struct DurableRun {
    pub(crate) store: Arc<dyn CheckpointStore>,
    /// The run's claim and journal position. Held across each append so entries land in order.
    pub(crate) journal: tokio::sync::Mutex<Journal>,
    /// Serialises the generated state (`None` if the value is not of the flow's state type).
    pub(crate) point_json: PointJson,
    /// Serialises the shared state into every entry, when the run saves it.
    pub(crate) state_json: Option<PointJson>,
}

/// Where a durable run's journal stands.
pub(crate) struct Journal {
    /// The run's claim: every write shows it. Taken by the final document's write, after which
    /// nothing is journaled.
    pub(crate) claim: Option<crate::store::Claim>,
    /// The last sequence number.
    pub(crate) seq: u64,
    /// How many of this session's traces are journaled.
    pub(crate) flushed: usize,
}

/// Serialises a flow's generated state, given as `dyn Any`; chosen where its type is known to be
/// `Serialize` (the durable API), so the driver itself needs no serde bound.
pub(crate) type PointJson = fn(&dyn Any) -> Option<Result<serde_json::Value, serde_json::Error>>;

impl RunCore {
    pub(crate) fn new(
        flow_name: &'static str,
        input: Arc<dyn Any + Send + Sync>,
        capture: bool,
        events: Option<Arc<EventQueue>>,
    ) -> Self {
        RunCore {
            run_id: new_run_id(),
            flow_name,
            input,
            capture,
            started_raw: clock().raw(),
            started_at: SystemTime::now(),
            session: 1,
            prior: None,
            traces: Mutex::new(Vec::new()),
            traces_on: true,
            events,
            groups: AtomicU32::new(0),
            last_end: AtomicU64::new(NO_TIME),
            trace_hint: 4,
            durable: None,
            unit: Arc::new(()),
            human: Asker::default(),
            replay: None,
        }
    }

    /// Continues the run ids and traces of a resumed run.
    pub(crate) fn resumed(mut self, run_id: RunId, traces: Vec<StepTrace>, session: u32) -> Self {
        self.run_id = run_id;
        self.session = session;
        self.prior = Some(Box::new(traces));
        self
    }

    pub(crate) fn started_at(&self) -> SystemTime {
        self.started_at
    }

    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now_ns())
    }

    /// Nanoseconds since the run started: one read of the fast clock, one scaling. Everything
    /// timed on the hot path is an offset from the run's start, so durations are integer
    /// differences.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        let c = clock();
        c.delta_as_nanos(self.started_raw, c.raw())
    }

    /// An attempt's start: the end of the attempt just before it when nothing else ran since
    /// (see `last_end`), else a clock read.
    #[inline]
    pub(crate) fn attempt_start_ns(&self) -> u64 {
        // A load and a store rather than a swap (no locked instruction): the run's attempts
        // start and end within its polls, one at a time.
        match self.last_end.load(Ordering::Relaxed) {
            NO_TIME => self.now_ns(),
            at => {
                self.last_end.store(NO_TIME, Ordering::Relaxed);
                at
            }
        }
    }

    /// Forgets the last attempt's end: something other than glue runs (or ran) since.
    #[inline]
    pub(crate) fn interrupted(&self) {
        self.last_end.store(NO_TIME, Ordering::Relaxed);
    }

    /// Whether somebody listens to this run's events.
    pub(crate) fn has_listener(&self) -> bool {
        self.events.is_some()
    }

    /// Records an event, building it only when somebody listens.
    #[inline]
    pub(crate) fn emit(&self, make: impl FnOnce() -> RunEvent) {
        if let Some(q) = &self.events {
            q.lock().unwrap_or_else(|p| p.into_inner()).push(make());
        }
    }

    /// Records an attempt's end under one lock: its event (`StepCompleted` or `StepFailed`,
    /// when `has_event` and somebody listens) and its trace (when traces are on). A streamed run
    /// keeps its traces under the event queue's lock for this.
    #[inline]
    pub(crate) fn attempt_ended(
        &self,
        has_event: bool,
        event: impl FnOnce() -> RunEvent,
        trace: impl FnOnce() -> RawTrace,
    ) {
        match &self.events {
            Some(q) => {
                let mut log = q.lock().unwrap_or_else(|p| p.into_inner());
                if has_event {
                    log.push(event());
                }
                if self.traces_on {
                    self.push_into(&mut log.traces, trace);
                }
            }
            None if self.traces_on => {
                let mut traces = self.traces.lock().unwrap_or_else(|p| p.into_inner());
                self.push_into(&mut traces, trace);
            }
            None => {}
        }
    }

    /// Records a trace outside an attempt's normal end (a cancelled attempt).
    pub(crate) fn push_trace(&self, trace: RawTrace) {
        self.with_traces(|traces| self.push_into(traces, || trace));
    }

    /// Appends a trace, built in place when there is room (see [`push_raw`]).
    #[inline]
    fn push_into(&self, traces: &mut Vec<RawTrace>, trace: impl FnOnce() -> RawTrace) {
        push_raw(traces, self.trace_hint, trace);
    }

    /// Runs `f` on this session's traces, wherever they are kept.
    fn with_traces<R>(&self, f: impl FnOnce(&mut Vec<RawTrace>) -> R) -> R {
        match &self.events {
            Some(q) => f(&mut q.lock().unwrap_or_else(|p| p.into_inner()).traces),
            None => f(&mut self.traces.lock().unwrap_or_else(|p| p.into_inner())),
        }
    }

    /// How many traces this session has recorded.
    pub(crate) fn trace_count(&self) -> usize {
        self.with_traces(|t| t.len())
    }

    /// Makes room for `n` traces at the first one (see `trace_hint`).
    pub(crate) fn expect_traces(&mut self, n: usize) {
        self.trace_hint = u16::try_from(n).unwrap_or(u16::MAX);
    }

    /// This session's traces from index `from` on, as public traces.
    pub(crate) fn traces_since(&self, from: usize) -> Vec<StepTrace> {
        self.with_traces(|all| {
            all.get(from..)
                .unwrap_or_default()
                .iter()
                .map(|t| t.public(self.started_at, self.session))
                .collect()
        })
    }

    /// Every trace of the run: earlier sessions', then this one's (built when first read).
    pub(crate) fn take_traces(&self) -> Traces {
        let raw = self.with_traces(std::mem::take);
        let prior = self.prior.as_deref().cloned().unwrap_or_default();
        Traces::new(prior, raw, self.started_at, self.session)
    }
}

impl RunView for RunCore {
    fn run_id(&self) -> RunId {
        self.run_id
    }

    fn flow_name(&self) -> &'static str {
        self.flow_name
    }

    fn input(&self) -> &(dyn Any + Send + Sync) {
        &*self.input
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// The run handle a generated driver receives: shared run data, the typed state, and where in
/// the flow the driver is (enclosing step, parallel group).
#[doc(hidden)]
pub struct Rt {
    pub(crate) core: Arc<RunCore>,
    pub(crate) state: Arc<dyn Any + Send + Sync>,
    pub(crate) parent: Option<&'static str>,
    pub(crate) group: Option<u32>,
    /// The item of a `map` this handle runs (its index in the map's input; [`NO_ITEM`] for
    /// none). A map reuses one handle per item it runs at once, so this changes between items.
    pub(crate) item: AtomicU32,
    pub(crate) defaults: FlowDefaults,
    /// The context handed to steps that take none (`StepDef::uses_context` is false): built once
    /// per handle, so those steps cost no reference counting per attempt.
    pub(crate) idle: StepContext<()>,
}

impl Rt {
    pub(crate) fn with(
        core: Arc<RunCore>,
        state: Arc<dyn Any + Send + Sync>,
        parent: Option<&'static str>,
        group: Option<u32>,
        defaults: FlowDefaults,
    ) -> Rt {
        let idle = StepContext {
            core: Arc::clone(&core) as Arc<dyn RunView>,
            state: Arc::clone(&core.unit),
            step: parent.unwrap_or(""),
            attempt: 0,
            group,
            item: NO_ITEM,
        };
        Rt {
            core,
            state,
            parent,
            group,
            item: AtomicU32::new(NO_ITEM),
            defaults,
            idle,
        }
    }

    pub(crate) fn new(
        core: Arc<RunCore>,
        state: Arc<dyn Any + Send + Sync>,
        defaults: FlowDefaults,
    ) -> Self {
        Rt::with(core, state, None, None, defaults)
    }

    /// A handle for the branches of a new parallel group (they share its id).
    pub(crate) fn group(&self) -> Rt {
        // Numbered from 1 (events keep 0 for none), wrapping past `u32::MAX` rather than
        // overflowing.
        let id = self
            .core
            .groups
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1)
            .max(1);
        Rt::with(
            Arc::clone(&self.core),
            Arc::clone(&self.state),
            self.parent,
            Some(id),
            self.defaults,
        )
    }

    /// A handle for the items of a `map` run by this (the map's group) handle; see
    /// [`set_item`](Rt::set_item).
    pub(crate) fn for_items(&self) -> Rt {
        Rt::with(
            Arc::clone(&self.core),
            Arc::clone(&self.state),
            self.parent,
            self.group,
            self.defaults,
        )
    }

    /// Makes this handle run item `index` of its map (no item of it is in flight).
    #[inline]
    pub(crate) fn set_item(&self, index: u32) {
        self.item.store(index, Ordering::Relaxed);
    }

    /// The `map` item this handle runs, if any.
    #[inline]
    pub(crate) fn item(&self) -> Option<u32> {
        match self.item.load(Ordering::Relaxed) {
            NO_ITEM => None,
            i => Some(i),
        }
    }

    /// A step event of this handle's parent, group and item.
    #[inline]
    pub(crate) fn step_event(
        &self,
        step: &'static str,
        node: &'static crate::graph::StaticNode,
        attempt: u32,
        at_ns: u64,
        took_ns: Option<u64>,
    ) -> StepEvent {
        StepEvent::new(
            step,
            node,
            self.parent,
            self.group,
            self.item(),
            attempt,
            at_ns,
            took_ns,
        )
    }

    /// Evaluates an `if` or `until` predicate, containing a panic as a flow failure.
    pub(crate) fn decide<T, M, P>(
        &self,
        which: &'static str,
        value: &T,
        pred: &P,
    ) -> Result<bool, Halt>
    where
        P: Predicate<T, M>,
    {
        self.core.interrupted();
        let Some(state) = <P::Needs as StateReq>::resolve(&self.state, &self.core.unit) else {
            return Err(Halt::new(FlowError::PredicatePanicked {
                predicate: which,
                message: "the predicate's `StepContext` names another state type than the flow's"
                    .into(),
            }));
        };
        let ctx = StepContext {
            core: Arc::clone(&self.core) as Arc<dyn RunView>,
            state,
            step: which,
            attempt: 1,
            group: self.group,
            item: self.item.load(Ordering::Relaxed),
        };
        catch_unwind(AssertUnwindSafe(|| pred.test(value, &ctx))).map_err(|payload| {
            let message = panic_message(payload);
            Halt::new(FlowError::PredicatePanicked {
                predicate: which,
                message,
            })
        })
    }

    /// A handle for a nested flow run as a step of this one; `None` if the context is not one
    /// of a run's (every context is: [`RunCore`] is the only [`RunView`]).
    pub(crate) fn child<S: Send + Sync + 'static>(
        ctx: &StepContext<S>,
        defaults: FlowDefaults,
    ) -> Option<Rt> {
        let core = Arc::clone(&ctx.core)
            .into_any()
            .downcast::<RunCore>()
            .ok()?;
        let state: Arc<dyn Any + Send + Sync> = Arc::clone(&ctx.state) as _;
        let rt = Rt::with(core, state, Some(ctx.step), ctx.group, defaults);
        // A nested flow run for a `map` item: its steps are that item's.
        rt.item.store(ctx.item, Ordering::Relaxed);
        Some(rt)
    }
}

/// No `map` item (see `Rt::item`); a map never numbers an item so.
pub(crate) const NO_ITEM: u32 = u32::MAX;

/// No time recorded (see `RunCore::last_end`).
pub(crate) const NO_TIME: u64 = u64::MAX;

/// A random (version 4) run id, without a system call.
fn new_run_id() -> RunId {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}
