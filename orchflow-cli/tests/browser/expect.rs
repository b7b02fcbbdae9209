//! What the graph should show at a moment of a run, worked out from the store's journal
//! alone: the tests compare the page with this, never with hard-coded states.
//!
//! A moment is "just after journal entry `upto`" (1-based; 0 is before the run). Only quiet
//! moments are used ([`assert_quiet`]): every attempt journaled by then has ended and no
//! attempt journaled later has started, so the journal's prefix is the whole truth.
//!
//! The states are the viewer's vocabulary: a step is `pending` (no attempt), `succeeded`,
//! `retried` (succeeded after a failed attempt), `failed`, `suspended` or `cancelled` by its
//! last attempt, or `reused` when every attempt it has is a call a fork took from the recorded
//! run (`AttemptOutcome::Reused`; once one of its attempts ran, the step is what that made it).
//! A container (group, branch, loop, `if`, arm, map) is `pending` while none of its steps has
//! started, `running` while some of its children are done and others pending, and otherwise
//! takes the strongest of its children (`failed` over `suspended` over `cancelled` over
//! `retried` over `succeeded` over `reused`); a loop whose iterations so far are all done is
//! still `running` until the flow has moved past it (a later step started, or the run
//! completed). A loop's iteration count is the number of first attempts of its steps.

use orchflow::store::JournalEntry;
use orchflow::{AttemptOutcome, StepTrace};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The expected state of every node of the graph, and the iteration count of every loop.
#[derive(Debug)]
pub struct Expected {
    pub states: BTreeMap<String, String>,
    pub iterations: BTreeMap<String, u64>,
}

/// Milliseconds since the epoch: the resolution the page reads times at.
fn ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Fails unless the moment after entry `upto` is quiet (see the module docs), at the page's
/// resolution of a millisecond: the test chose its moment badly otherwise.
pub fn assert_quiet(journal: &[JournalEntry], upto: usize, name: &str) {
    let done = journal[..upto].iter().flat_map(|e| &e.traces);
    let Some(t) = done.map(|tr| ms(tr.ended_at)).max() else {
        return;
    };
    for later in journal[upto..].iter().flat_map(|e| &e.traces) {
        assert!(
            ms(later.started_at) >= t,
            "the moment {name:?} (after entry #{}) is not quiet: {} (node {}) started before it",
            journal[upto - 1].seq,
            later.step,
            later.node
        );
    }
}

const STRENGTH: [&str; 7] = [
    "running",
    "failed",
    "suspended",
    "cancelled",
    "retried",
    "succeeded",
    "reused",
];

fn step_state(attempts: &[&StepTrace]) -> &'static str {
    let Some(last) = attempts.last() else {
        return "pending";
    };
    let outcome = serde_json::to_value(last.outcome).unwrap_or(Value::Null);
    match outcome.as_str() {
        Some("succeeded") => {
            if attempts.iter().any(|t| !t.success) {
                "retried"
            } else {
                "succeeded"
            }
        }
        Some("reused") => {
            let ran = attempts.iter().any(|t| t.outcome != AttemptOutcome::Reused);
            match (ran, attempts.iter().any(|t| !t.success)) {
                (false, _) => "reused",
                (true, true) => "retried",
                (true, false) => "succeeded",
            }
        }
        Some("suspended") => "suspended",
        Some("cancelled") => "cancelled",
        _ => "failed",
    }
}

/// The top-level item a node belongs to (`"3/body/0"` → 3).
fn top_index(id: &str) -> Option<usize> {
    id.split('/').next().and_then(|s| s.parse().ok())
}

/// What the graph (`FlowGraph` as JSON) should show after the first `upto` entries of
/// `journal`; `completed`: the run had completed by then.
pub fn expected_states(
    graph: &Value,
    journal: &[JournalEntry],
    upto: usize,
    completed: bool,
) -> Expected {
    let traces: Vec<&StepTrace> = journal[..upto]
        .iter()
        .flat_map(|e| e.traces.iter())
        .filter(|t| t.parent.is_none())
        .collect();
    let nodes = graph["nodes"].as_array().expect("graph nodes");
    let kind = |n: &Value| n["kind"].as_str().unwrap_or_default().to_string();
    let id = |n: &Value| n["id"].as_str().unwrap_or_default().to_string();
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    for n in nodes {
        kinds.insert(id(n), kind(n));
        if let Some(p) = n["parent"].as_str() {
            children.entry(p.to_string()).or_default().push(id(n));
        }
    }
    let started_top: Vec<usize> = traces.iter().filter_map(|t| top_index(&t.node)).collect();

    fn state_of(
        node: &str,
        kinds: &BTreeMap<String, String>,
        children: &BTreeMap<String, Vec<String>>,
        traces: &[&StepTrace],
        moved_past: &dyn Fn(&str) -> bool,
        out: &mut BTreeMap<String, String>,
    ) -> String {
        let state = if kinds.get(node).map(String::as_str) == Some("step") {
            let mine: Vec<&StepTrace> = traces.iter().copied().filter(|t| t.node == node).collect();
            step_state(&mine).to_string()
        } else {
            let kids: Vec<String> = children
                .get(node)
                .map(|c| {
                    c.iter()
                        .map(|k| state_of(k, kinds, children, traces, moved_past, out))
                        .collect()
                })
                .unwrap_or_default();
            let pending = kids.iter().filter(|s| *s == "pending").count();
            if pending == kids.len() {
                "pending".to_string()
            } else {
                let strongest = STRENGTH
                    .iter()
                    .find(|s| kids.iter().any(|k| k == *s))
                    .copied()
                    .unwrap_or("pending");
                let done = matches!(strongest, "retried" | "succeeded" | "reused" | "cancelled");
                if done
                    && (pending > 0
                        || (kinds.get(node).map(String::as_str) == Some("loop")
                            && !moved_past(node)))
                {
                    "running".to_string()
                } else {
                    strongest.to_string()
                }
            }
        };
        out.insert(node.to_string(), state.clone());
        state
    }

    let moved_past = |node: &str| {
        completed || top_index(node).is_some_and(|i| started_top.iter().any(|&s| s > i))
    };
    let mut states = BTreeMap::new();
    for n in nodes.iter().filter(|n| n["parent"].is_null()) {
        state_of(&id(n), &kinds, &children, &traces, &moved_past, &mut states);
    }
    let mut iterations = BTreeMap::new();
    for n in nodes.iter().filter(|n| kind(n) == "loop") {
        let prefix = format!("{}/", id(n));
        let firsts = traces
            .iter()
            .filter(|t| t.node.starts_with(&prefix) && t.attempt == 1)
            .map(|t| t.node.to_string())
            .fold(BTreeMap::<String, u64>::new(), |mut m, node| {
                *m.entry(node).or_default() += 1;
                m
            });
        iterations.insert(id(n), firsts.values().copied().max().unwrap_or(0));
    }
    Expected { states, iterations }
}
