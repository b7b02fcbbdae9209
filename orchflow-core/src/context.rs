//! What a step can see of its run.
//!
//! A [`StepContext`] points at its run's core, which the run layer defines; this module sees the
//! core only through [`RunView`] (its identity), so that it depends on no layer above it. The
//! few places that need the whole core (a nested flow, a human question) downcast it there.

use std::any::Any;
use std::sync::Arc;

/// A run's identity.
pub type RunId = uuid::Uuid;

/// What a step's context reads of its run: implemented by the run's core (`run::RunCore`), the
/// only implementation. Through a trait so that this layer does not name the run layer; the hot
/// path only clones the pointer, and its accessors are read by steps, not by the runtime.
pub(crate) trait RunView: Send + Sync + 'static {
    /// The run's id.
    fn run_id(&self) -> RunId;
    /// The top-level flow's name.
    fn flow_name(&self) -> &'static str;
    /// The flow's original input.
    fn input(&self) -> &(dyn Any + Send + Sync);
    /// The core itself, for the layer that knows its type.
    fn as_any(&self) -> &dyn Any;
    /// The core itself, shared, for the layer that knows its type.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// What a step can see of the run it belongs to: the run id, the flow's name, its own name and
/// attempt number, the flow's original input, and the run's typed shared state `S`.
///
/// The state is shared by every step of the run, parallel branches included, so it is reached
/// by `&S`: put a `Mutex`, an atomic or a channel inside `S` for what steps change.
///
/// ```
/// use orchflow::{flow, step, StepContext};
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// #[derive(Default)]
/// struct Counter { calls: AtomicU32 }
///
/// #[step]
/// async fn count(x: u32, ctx: &StepContext<Counter>) -> u32 {
///     ctx.state().calls.fetch_add(1, Ordering::Relaxed);
///     assert_eq!(ctx.step_name(), "count");
///     assert_eq!(ctx.input::<u32>(), Some(&7));
///     x + 1
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let f = flow! { count => count };
/// let result = f.run(7).await;
/// assert_eq!(result.output, Some(9));
/// assert_eq!(result.state.calls.load(Ordering::Relaxed), 2);
/// # }
/// ```
pub struct StepContext<S = ()> {
    pub(crate) core: Arc<dyn RunView>,
    pub(crate) state: Arc<S>,
    pub(crate) step: &'static str,
    pub(crate) attempt: u32,
    pub(crate) group: Option<u32>,
    /// The `map` item the step runs for (`run::core::NO_ITEM` for none): a nested flow's
    /// steps carry their enclosing item.
    pub(crate) item: u32,
}

impl<S> StepContext<S> {
    /// The run's id (stable across retries; the same for every step of the run).
    pub fn run_id(&self) -> crate::RunId {
        self.core.run_id()
    }

    /// The top-level flow's name.
    pub fn flow_name(&self) -> &'static str {
        self.core.flow_name()
    }

    /// This step's name.
    pub fn step_name(&self) -> &'static str {
        self.step
    }

    /// This attempt's number, 1 for the first.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The parallel group this step runs in, if any.
    pub fn parallel_group_id(&self) -> Option<u32> {
        self.group
    }

    /// The run's shared state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The flow's original input, if it has type `T`.
    pub fn input<T: Any>(&self) -> Option<&T> {
        let input: &(dyn Any + Send + Sync) = self.core.input();
        input.downcast_ref::<T>()
    }
}

impl<S> Clone for StepContext<S> {
    fn clone(&self) -> Self {
        StepContext {
            core: Arc::clone(&self.core),
            state: Arc::clone(&self.state),
            step: self.step,
            attempt: self.attempt,
            group: self.group,
            item: self.item,
        }
    }
}

impl<S> std::fmt::Debug for StepContext<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("run_id", &self.core.run_id())
            .field("flow", &self.core.flow_name())
            .field("step", &self.step)
            .field("attempt", &self.attempt)
            .field("parallel_group_id", &self.group)
            .finish_non_exhaustive()
    }
}
