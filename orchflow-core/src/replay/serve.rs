//! The replayer a run carries while it replays or forks: it answers each step call from the
//! recording, lets it run, parks it, or stops the run (see the [module docs](super) for how
//! calls are matched).
//!
//! Invariants:
//! * Calls are keyed by (enclosing nested-flow step, node, `map` item); the n-th call of a key
//!   takes the n-th successful recorded attempt of that key, once.
//! * Once a divergence is recorded, every later call stops the run; the first one stands.
//! * In a check, a call with nothing recorded is parked (it never completes): the run goes on
//!   with whatever else can, and stops when only parked calls are left
//!   ([`Replayer::stuck`]).

use super::path::{independent, render};
use super::report::{Call, Divergence, DivergenceKind, PreviewStep, Reuse};
use super::{ForkAt, ReplayOptions};
use crate::graph::FlowGraph;
use crate::trace::{AttemptOutcome, StepTrace};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Where a call is: enclosing nested-flow step, node, `map` item.
type Key = (Option<String>, String, Option<u32>);

/// What the replayer does.
pub(crate) enum Mode {
    /// A replay: every call answered from the recording; nothing runs but the steps named in
    /// the options. A forked run's recording is replayed with its fork's edit: call `ordinal`
    /// of `key` took the edited input, not the one the code gives it.
    Check {
        options: ReplayOptions,
        edit: Option<(Key, u32, Value)>,
    },
    /// A fork from call `ordinal` (from 0) of `key`: calls before it (and independent of it)
    /// are answered from the recording, the rest run. `dry`: nothing runs; a call that would
    /// run is answered from the recording when it has one, parked otherwise (a preview).
    Fork {
        key: Key,
        ordinal: u32,
        input: Option<Value>,
        dry: bool,
    },
}

/// What a step call does (see [`Replayer::serve`]).
pub(crate) enum Serve {
    /// Take the output the probe kept; the step does not run.
    Served,
    /// Run the step (with the input the probe kept instead of its own, when `true`: a fork's
    /// call with an edited input).
    Live(bool),
    /// Run the step and compare its output with the recorded JSON.
    Compare(Value),
    /// Never complete.
    Park,
    /// Stop the run: a divergence, or a recording that cannot be used, is recorded.
    Stop,
}

/// A step call as the (non-generic) replayer sees it: what it needs of the step, and where it
/// keeps the typed values it reads back, so that the replayer is compiled once rather than once
/// per step type.
pub(crate) trait Probe {
    /// The step's name.
    fn name(&self) -> &'static str;
    /// The call's input as JSON, when its type is `Serialize`.
    fn input_json(&self) -> Option<Value>;
    /// Where the step is defined, when known.
    fn source(&self) -> Option<crate::replay::Source>;
    /// Whether the step is a flow (its own steps are answered, not it).
    fn is_flow(&self) -> bool;
    /// Reads `json` back as the call's output and keeps it (`None`: the type cannot be read).
    fn keep_output(&mut self, json: Value) -> Option<Result<(), serde_json::Error>>;
    /// Reads `json` back as the call's input and keeps it (`None`: the type cannot be read).
    fn keep_input(&mut self, json: Value) -> Option<Result<(), serde_json::Error>>;
}

/// A run's replayer.
pub(crate) struct Replayer {
    traces: Vec<StepTrace>,
    /// The current build's graph, and the recorded one.
    graph: FlowGraph,
    recorded_graph: Option<FlowGraph>,
    mode: Mode,
    state: Mutex<State>,
}

/// Where the fork's call was made.
struct Made {
    node: String,
    parent: Option<String>,
    iterations: Vec<u32>,
    item: Option<u32>,
}

#[derive(Default)]
pub(crate) struct State {
    /// The successful recorded attempts of each key not taken yet, in recorded order.
    queues: HashMap<Key, VecDeque<usize>>,
    /// How many calls each key has had.
    calls: HashMap<Key, u32>,
    /// The iterations of the call that took each recorded attempt.
    took: HashMap<usize, Vec<u32>>,
    pub(crate) divergence: Option<Divergence>,
    pub(crate) unreplayable: Option<String>,
    /// Calls parked because nothing is recorded for them, in order.
    pub(crate) parked: Vec<Call>,
    /// Re-executed steps running in a check (a flow that runs is not counted: its own calls
    /// are answered or parked).
    live: u32,
    /// The fork's call, once made.
    fork_made: Option<Made>,
    /// A fork's edited input that does not fit the step's input type.
    pub(crate) bad_input: Option<String>,
    /// Every call, in order, with what was done with it (forks).
    pub(crate) log: Vec<PreviewStep>,
    pub(crate) reused: u32,
    pub(crate) reexecuted: u32,
}

impl Replayer {
    pub(crate) fn new(
        traces: Vec<StepTrace>,
        graph: FlowGraph,
        recorded_graph: Option<FlowGraph>,
        mode: Mode,
    ) -> Replayer {
        let mut queues: HashMap<Key, VecDeque<usize>> = HashMap::new();
        for (i, t) in traces.iter().enumerate() {
            if t.success {
                queues.entry(key_of(t)).or_default().push_back(i);
            }
        }
        Replayer {
            traces,
            graph,
            recorded_graph,
            mode,
            state: Mutex::new(State {
                queues,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides what the call `step` at `node` (in `iterations`) does; a value it reads back is
    /// kept by the probe.
    pub(crate) fn serve(
        &self,
        step: &mut dyn Probe,
        parent: Option<&'static str>,
        item: Option<u32>,
        node: &'static str,
        iterations: &[u32],
    ) -> Serve {
        let key: Key = (parent.map(str::to_string), node.to_string(), item);
        let mut st = self.lock();
        if st.divergence.is_some() || st.unreplayable.is_some() || st.bad_input.is_some() {
            return Serve::Stop;
        }
        let count = st.calls.entry(key.clone()).or_insert(0);
        let ordinal = *count;
        *count += 1;
        let recorded = st.queues.get_mut(&key).and_then(VecDeque::pop_front);
        if let Some(i) = recorded {
            st.took.insert(i, iterations.to_vec());
        }
        let name = step.name();
        let new_call = |step: &dyn Probe| Call {
            step: name.to_string(),
            node: node.to_string(),
            parent: parent.map(str::to_string),
            path: render(Some(&self.graph), parent, node, name, iterations),
            iterations: iterations.to_vec(),
            input: step.input_json(),
            source: step.source(),
        };
        // A flow runs: its own steps are answered.
        let is_flow = step.is_flow();
        match &self.mode {
            Mode::Check { options, edit } => {
                let Some(i) = recorded else {
                    if is_flow {
                        return Serve::Live(false);
                    }
                    st.parked.push(new_call(&*step));
                    return Serve::Park;
                };
                let t = &self.traces[i];
                if t.step != name {
                    let new = new_call(&*step);
                    st.divergence = Some(Divergence {
                        kind: DivergenceKind::StepChanged,
                        path: new.path.clone(),
                        message: format!(
                            "the recorded run called `{}` here; the new code calls `{}`",
                            t.step, name
                        ),
                        recorded: Some(self.recorded_call(t, iterations)),
                        new: Some(new),
                    });
                    return Serve::Stop;
                }
                let mut new = new_call(&*step);
                if let Some((k, o, input)) = edit
                    && k == &key
                    && *o == ordinal
                {
                    new.input = Some(input.clone());
                }
                if let (Some(was), Some(is)) = (&t.input, &new.input)
                    && was != is
                {
                    st.divergence = Some(Divergence {
                        kind: DivergenceKind::InputChanged,
                        path: new.path.clone(),
                        message: format!(
                            "`{}` is called with another input: it was {}, it is {}",
                            t.step,
                            short(was),
                            short(is)
                        ),
                        recorded: Some(self.recorded_call(t, iterations)),
                        new: Some(new),
                    });
                    return Serve::Stop;
                }
                if is_flow {
                    return Serve::Live(false);
                }
                let Some(json) = t.output.clone() else {
                    st.unreplayable = Some(format!(
                        "the recording has no output for `{}` at {}: the run was recorded without \
                         values (`capture_values(false)`), or the step's output is not `Serialize`",
                        t.step, new.path
                    ));
                    return Serve::Stop;
                };
                if options.reexecutes(name) {
                    st.live += 1;
                    return Serve::Compare(json);
                }
                match step.keep_output(json) {
                    Some(Ok(())) => {
                        st.reused += 1;
                        Serve::Served
                    }
                    Some(Err(e)) => {
                        st.divergence = Some(Divergence {
                            kind: DivergenceKind::OutputUndecodable,
                            path: new.path.clone(),
                            message: format!(
                                "the recorded output of `{}` does not fit its output type any more: {e}",
                                t.step
                            ),
                            recorded: Some(self.recorded_call(t, iterations)),
                            new: Some(new),
                        });
                        Serve::Stop
                    }
                    None => {
                        st.unreplayable = Some(format!(
                            "the output type of `{}` is not `Deserialize`, so its recorded output \
                             cannot be served",
                            t.step
                        ));
                        Serve::Stop
                    }
                }
            }
            Mode::Fork {
                key: fork_key,
                ordinal: fork_ordinal,
                input: edited,
                dry,
            } => {
                let (reuse, replacement) = if &key == fork_key && ordinal == *fork_ordinal {
                    st.fork_made = Some(Made {
                        node: node.to_string(),
                        parent: key.0.clone(),
                        iterations: iterations.to_vec(),
                        item: key.2,
                    });
                    let replacement = match edited {
                        None => false,
                        Some(json) => match step.keep_input(json.clone()) {
                            Some(Ok(())) => true,
                            Some(Err(e)) => {
                                st.bad_input = Some(format!(
                                    "the input given does not fit the input type of `{}`: {e}",
                                    name
                                ));
                                return Serve::Stop;
                            }
                            None => {
                                st.bad_input = Some(format!(
                                    "the input type of `{}` is not `Deserialize`: a fork from it \
                                     cannot take an edited input",
                                    name
                                ));
                                return Serve::Stop;
                            }
                        },
                    };
                    (Reuse::Rerun, replacement)
                } else {
                    let after = match &st.fork_made {
                        // Another item of the map the fork's call is in is independent of it.
                        Some(m) if m.item.is_some() && key.2.is_some() && m.item != key.2 => false,
                        Some(m) => {
                            m.parent != key.0
                                || !independent(
                                    Some(&self.graph),
                                    node,
                                    iterations,
                                    &m.node,
                                    &m.iterations,
                                )
                        }
                        None => false,
                    };
                    let reuse = match (after, recorded) {
                        (true, Some(_)) => Reuse::Rerun,
                        (_, None) => Reuse::New,
                        (false, Some(i)) if self.traces[i].step == name => Reuse::Reused,
                        (false, Some(_)) => Reuse::New,
                    };
                    (reuse, false)
                };
                let mut call = new_call(&*step);
                if replacement {
                    call.input = edited.clone();
                }
                let repeats =
                    reuse == Reuse::Rerun && recorded.is_some_and(|i| self.traces[i].step == name);
                st.log.push(PreviewStep {
                    call,
                    reuse,
                    repeats_side_effects: repeats,
                });
                if is_flow {
                    return Serve::Live(false);
                }
                let serve_recorded = reuse == Reuse::Reused || (*dry && reuse != Reuse::New);
                if serve_recorded
                    && let Some(i) = recorded
                    && let Some(json) = self.traces[i].output.clone()
                    && let Some(Ok(())) = step.keep_output(json)
                {
                    if reuse == Reuse::Reused {
                        st.reused += 1;
                    }
                    return Serve::Served;
                }
                if *dry {
                    // A preview runs nothing: what follows an unknown result is unknown.
                    let call = st.log.last().map(|s| s.call.clone()).unwrap_or_default();
                    st.parked.push(call);
                    return Serve::Park;
                }
                if let Some(last) = st.log.last_mut()
                    && last.reuse == Reuse::Reused
                {
                    // The recorded result cannot be read back: the step runs after all.
                    last.reuse = Reuse::Rerun;
                    last.repeats_side_effects = true;
                }
                Serve::Live(replacement)
            }
        }
    }

    /// A re-executed call of a check ended; `compared` holds the recorded output and the new
    /// one as JSON (`None` when the step failed). Whether the run goes on.
    pub(crate) fn ended(
        &self,
        name: &'static str,
        compared: Option<(&Value, Option<Value>)>,
        node: &'static str,
        parent: Option<&'static str>,
        iterations: &[u32],
    ) -> bool {
        let mut st = self.lock();
        st.live = st.live.saturating_sub(1);
        let Some((recorded, output)) = compared else {
            return true;
        };
        if output.as_ref() == Some(recorded) {
            st.reexecuted += 1;
            return true;
        }
        if st.divergence.is_none() {
            let path = render(Some(&self.graph), parent, node, name, iterations);
            st.divergence = Some(Divergence {
                kind: DivergenceKind::OutputChanged,
                path: path.clone(),
                message: format!(
                    "`{}` re-executed returns {}; the recording has {}",
                    name,
                    output
                        .as_ref()
                        .map_or("a value that is not `Serialize`".into(), short),
                    short(recorded)
                ),
                recorded: None,
                new: None,
            });
        }
        false
    }

    /// Whether a check can go no further: calls are parked and nothing runs live.
    pub(crate) fn stuck(&self) -> bool {
        let st = self.lock();
        !st.parked.is_empty() && st.live == 0
    }

    /// The state, for the report; the successful recorded attempts never taken, in recorded
    /// order, as calls.
    pub(crate) fn finish(&self) -> (State, Vec<Call>) {
        let mut st = std::mem::take(&mut *self.lock());
        let mut left: Vec<usize> = st.queues.drain().flat_map(|(_, q)| q).collect();
        left.sort_unstable();
        let mut iterations_of: HashMap<Key, Vec<u32>> = HashMap::new();
        for (i, it) in &st.took {
            let k = key_of(&self.traces[*i]);
            let e = iterations_of.entry(k).or_default();
            if it > e {
                *e = it.clone();
            }
        }
        let calls = left
            .into_iter()
            .map(|i| {
                let t = &self.traces[i];
                // Not taken: one iteration after the last one taken at the same place.
                let mut it = iterations_of.get(&key_of(t)).cloned().unwrap_or_default();
                if let Some(last) = it.last_mut() {
                    *last += 1;
                }
                iterations_of.insert(key_of(t), it.clone());
                self.recorded_call(t, &it)
            })
            .collect();
        (st, calls)
    }

    /// A recorded attempt as a call, placed in the recorded graph.
    fn recorded_call(&self, t: &StepTrace, iterations: &[u32]) -> Call {
        let graph = self.recorded_graph.as_ref().or(Some(&self.graph));
        Call {
            step: t.step.to_string(),
            node: t.node.to_string(),
            parent: t.parent.as_deref().map(str::to_string),
            path: render(graph, t.parent.as_deref(), &t.node, &t.step, iterations),
            iterations: iterations.to_vec(),
            input: t.input.clone(),
            source: None,
        }
    }
}

/// The key of a recorded attempt.
fn key_of(t: &StepTrace) -> Key {
    (
        t.parent.as_deref().map(str::to_string),
        t.node.to_string(),
        t.item,
    )
}

/// A value as short JSON for messages.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// The key and ordinal of the call `at` names in the recording `traces`: the calls of a step
/// are its successful attempts, and a last unsuccessful attempt at a place with no success
/// after it (a failed or suspended call). `Err` lists the calls there are.
pub(crate) fn locate(traces: &[StepTrace], at: &ForkAt) -> Result<(Key, u32), String> {
    let mut successes: HashMap<Key, u32> = HashMap::new();
    let mut calls: Vec<(Key, u32, usize)> = Vec::new();
    for (i, t) in traces.iter().enumerate() {
        let k = key_of(t);
        let n = successes.entry(k.clone()).or_insert(0);
        if t.success {
            calls.retain(|(ck, co, _)| !(ck == &k && *co == *n));
            calls.push((k, *n, i));
            *n += 1;
        } else if !matches!(t.outcome, AttemptOutcome::Cancelled) {
            // The call stands until a success of the same call replaces it.
            let ordinal = *n;
            calls.retain(|(ck, co, _)| !(ck == &k && *co == ordinal));
            calls.push((k, ordinal, i));
        }
    }
    calls.sort_by_key(|(_, _, i)| *i);
    let of_step: Vec<&(Key, u32, usize)> = calls
        .iter()
        .filter(|(_, _, i)| traces[*i].step == at.step)
        .collect();
    let nth = (at.occurrence as usize).checked_sub(1);
    match nth.and_then(|n| of_step.get(n)) {
        Some((k, o, _)) => Ok((k.clone(), *o)),
        None if of_step.is_empty() => {
            let mut names: Vec<&str> = calls.iter().map(|(_, _, i)| &*traces[*i].step).collect();
            names.dedup();
            Err(format!(
                "the run never called `{}`; its calls: {}",
                at.step,
                names.join(", ")
            ))
        }
        None => Err(format!(
            "the run called `{}` {} time(s); there is no call {}",
            at.step,
            of_step.len(),
            at.occurrence
        )),
    }
}
