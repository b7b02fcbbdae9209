//! Driver: what a generated driver calls to run its flow: building the flow, the run
//! handle's calls, parallel branches, the memo of a resumed run.

use super::*;

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
/// events, and `iterations` the iterations of the loops (and items of the maps) around it.
#[inline(always)]
pub fn step<'a, St: StepCall>(
    rt: &'a Rt,
    step: &'a St,
    input: Feed<'a, St::Input>,
    node: &'static crate::graph::StaticNode,
    iterations: &[u32],
) -> impl Future<Output = Result<St::Output, Halt>> + 'a {
    rt.step(step, node, input, iterations)
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
    suspension_apart(crate::site::scoped(crate::site::Seg::Branch(index), fut).await)
}

/// A branch's or a map item's result with a suspension set apart from a failure: the value
/// (`Ok(Ok)`), a suspension the siblings run on past (`Ok(Err)`), or a failure that stops them
/// (`Err`).
#[inline]
pub(super) fn suspension_apart<T>(r: Result<T, Halt>) -> Result<Result<T, Halt>, Halt> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(halt) if halt.is_suspension() => Ok(Err(halt)),
        Err(halt) => Err(halt),
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
