//! A flow's structure as data: what `flow!` knows at compile time, emitted as a [`FlowGraph`]
//! so that tools can draw a flow and place each trace and event on it (by its
//! [`node`](crate::StepTrace::node)) without parsing the shape string.
//!
//! # Node ids
//!
//! A node's id is its structural path in the flow, `/`-separated, stable across builds of the
//! same flow: top-level items are `"0"`, `"1"`, …; inside an item, its pipelines are named
//! `"<item>/<k>"` for branch `k` of a parallel group, `"<item>/then"` and `"<item>/else"` for
//! the arms of an `if`, `"<item>/body"` for the body of a loop (or a `map`); the items of a
//! pipeline are numbered from 0 after its name (`"1/0/2"`, `"3/then/0"`, `"4/body/1"`).
//! Inserting an item changes only the ids after it in its pipeline (and those inside them).
//! Branches and arms are nodes of their own (kind [`NodeKind::Branch`], [`NodeKind::Arm`]); a
//! loop's body is not: its items' [`parent`](Node::parent) is the loop.
//!
//! ```
//! use orchflow::{flow, step};
//! #[step] async fn plan(x: u8) -> u8 { x }
//! #[step] async fn docs(x: &u8) -> u8 { *x }
//! let f = flow! { plan => [docs, docs] };
//! let g = f.graph();
//! let ids: Vec<_> = g.nodes.iter().map(|n| n.id.as_ref()).collect();
//! assert_eq!(ids, ["0", "1", "1/0", "1/0/0", "1/1", "1/1/0"]);
//! assert_eq!((g.edges[0].from.as_ref(), g.edges[0].to.as_ref()), ("0", "1"));
//! ```

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Text that is `'static` in a flow's own graph and owned in one read back from JSON.
pub type Text = Cow<'static, str>;

/// A flow's nodes and edges, with the graphs of the flows nested in it.
///
/// ```
/// use orchflow::{flow, step};
/// #[step] async fn a(x: u8) -> u8 { x }
/// let g = flow! { #[flow(name = "one")] a }.graph();
/// assert_eq!((g.name.as_ref(), g.nodes.len(), g.edges.len()), ("one", 1, 0));
/// let json = serde_json::to_string(&g).unwrap();
/// assert_eq!(serde_json::from_str::<orchflow::graph::FlowGraph>(&json).unwrap(), g);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowGraph {
    /// The flow's name (`FlowInfo::name`).
    pub name: Text,
    /// The flow's fingerprint (`FlowInfo::fingerprint`), which nested-flow nodes refer to;
    /// serialised as 16 hex digits, as run documents store it.
    #[serde(with = "hex")]
    pub fingerprint: u64,
    /// Every node, in order of appearance (a container before what it contains).
    pub nodes: Cow<'static, [Node]>,
    /// The edges between the items of each pipeline.
    pub edges: Cow<'static, [Edge]>,
    /// The graphs of the flows nested in this one, at any depth, once each (by fingerprint);
    /// empty in the static graph of [`FlowInfo`](crate::FlowInfo), filled by `Flow::graph`.
    #[serde(default)]
    pub flows: Vec<FlowGraph>,
}

/// One node of a [`FlowGraph`].
///
/// ```
/// use orchflow::graph::{Node, NodeKind};
/// let n = Node { id: "0".into(), parent: None, label: "plan".into(), kind: NodeKind::Loop { max: Some(3), until: None } };
/// assert_eq!(n.kind.name(), "loop");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The node's stable id, its structural path (see the [module](self) docs).
    pub id: Text,
    /// The enclosing node (group, branch, arm, loop, map); `None` at the top level.
    #[serde(default)]
    pub parent: Option<Text>,
    /// What the node is called in the source: a step's path or expression, a predicate's name,
    /// `[…]`, `if`, `loop`, `then`, `else`, a branch's number.
    pub label: Text,
    /// What the node is; its fields are the node's own in JSON (`"kind": "step", "name": …`).
    #[serde(flatten)]
    pub kind: NodeKind,
}

/// What a [`Node`] is.
///
/// ```
/// use orchflow::graph::NodeKind;
/// let k = NodeKind::If { predicate: "short".into() };
/// assert_eq!(serde_json::to_value(&k).unwrap(), serde_json::json!({"kind": "if", "predicate": "short"}));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeKind {
    /// A step: traces and events of its attempts carry this node's id.
    Step {
        /// The step's name as traces show it: known at compile time for a `#[step]` given by
        /// path, else filled in by `Flow::graph` (else the source text).
        name: Text,
        /// Whether the step was given by path (`plan`) rather than as an expression (`(f)`).
        by_path: bool,
        /// Retries after the first failure, when the step sets them (`Flow::graph`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry: Option<u32>,
        /// The per-attempt timeout in milliseconds, when the step sets one (`Flow::graph`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// The flow this step runs, when the step is itself a flow: its graph is in
        /// [`FlowGraph::flows`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flow: Option<FlowRef>,
    },
    /// A parallel group; its branches are its children.
    Group {
        /// How many branches it has.
        branches: u32,
    },
    /// Branch `index` of a parallel group.
    Branch {
        /// From 0, in declaration order (the position in the group's output tuple).
        index: u32,
    },
    /// An `if`; its arms are its children.
    If {
        /// The predicate's name (its path, or its source text).
        predicate: Text,
    },
    /// An arm of an `if`.
    Arm {
        /// `true` for the `then` arm, `false` for `else`.
        then: bool,
    },
    /// A bounded loop; its body's items are its children.
    Loop {
        /// The bound when it is a literal; `None` for a constant (`max = MAX`).
        max: Option<u32>,
        /// The `until` predicate's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Text>,
    },
    /// A `map` over a collection; its body's items are its children.
    Map {
        /// How many items run at once, when bounded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
}

impl NodeKind {
    /// The kind's name as serialised (`"step"`, `"group"`, …).
    ///
    /// ```
    /// assert_eq!(orchflow::graph::NodeKind::Group { branches: 2 }.name(), "group");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::Step { .. } => "step",
            NodeKind::Group { .. } => "group",
            NodeKind::Branch { .. } => "branch",
            NodeKind::If { .. } => "if",
            NodeKind::Arm { .. } => "arm",
            NodeKind::Loop { .. } => "loop",
            NodeKind::Map { .. } => "map",
        }
    }
}

/// A nested flow, by reference: its graph is the one of [`FlowGraph::flows`] with this
/// fingerprint.
///
/// ```
/// let r = orchflow::graph::FlowRef { name: "inner".into(), fingerprint: 7 };
/// assert_eq!(r.fingerprint, 7);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRef {
    /// The nested flow's name.
    pub name: Text,
    /// The nested flow's fingerprint (16 hex digits in JSON).
    #[serde(with = "hex")]
    pub fingerprint: u64,
}

/// An edge between two nodes.
///
/// ```
/// use orchflow::graph::{Edge, EdgeKind};
/// let e = Edge { from: "0".into(), to: "1".into(), kind: EdgeKind::Sequence };
/// assert_eq!(e.kind, EdgeKind::Sequence);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// Where the value comes from.
    pub from: Text,
    /// Where it goes.
    pub to: Text,
    /// Why.
    pub kind: EdgeKind,
}

/// Why one node follows another.
///
/// ```
/// assert_eq!(serde_json::to_value(orchflow::graph::EdgeKind::Repeat).unwrap(), "repeat");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EdgeKind {
    /// The next item of a pipeline takes the previous one's output.
    Sequence,
    /// From the last item of a loop's body back to its first: the next iteration.
    Repeat,
}

/// Reads a fingerprint as run documents and graphs write it: exactly 16 lowercase hex digits.
/// Anything else (a path, upper case, a sign, another length) is `None`.
///
/// ```
/// use orchflow::graph::parse_fingerprint;
/// assert_eq!(parse_fingerprint("00000000000000ab"), Some(0xab));
/// assert_eq!(parse_fingerprint("00000000000000AB"), None);
/// assert_eq!(parse_fingerprint("../../etc/passwd"), None);
/// ```
pub fn parse_fingerprint(text: &str) -> Option<u64> {
    let hex = text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if hex {
        u64::from_str_radix(text, 16).ok()
    } else {
        None
    }
}

/// Fingerprints as 16 hex digits: exact in JSON readers whose numbers are doubles.
mod hex {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        u64::from_str_radix(&text, 16).map_err(D::Error::custom)
    }
}

/// What `Flow::graph` learns from a step value at run time.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct StepFacts {
    pub(crate) name: &'static str,
    pub(crate) retry: Option<u32>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) flow: Option<FlowGraph>,
}

impl FlowGraph {
    /// The node with id `id`.
    ///
    /// ```
    /// use orchflow::{flow, step};
    /// #[step] async fn a(x: u8) -> u8 { x }
    /// let g = flow! { a => a }.graph();
    /// assert_eq!(g.node("1").map(|n| n.label.as_ref()), Some("a"));
    /// ```
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The names of the steps this flow calls, its nested flows' steps included (a nested
    /// flow is named too: it is a step of its parent), sorted, each once.
    ///
    /// ```
    /// use orchflow::{flow, step};
    /// #[step] async fn fetch(x: u8) -> u8 { x }
    /// #[step] async fn parse(x: u8) -> u8 { x }
    /// let page = flow! { #[flow(name = "page")] fetch => parse };
    /// let site = flow! { fetch => (page) => parse };
    /// assert_eq!(site.graph().step_names(), ["fetch", "page", "parse"]);
    /// ```
    pub fn step_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = std::iter::once(self)
            .chain(&self.flows)
            .flat_map(|g| g.nodes.iter())
            .filter_map(|n| match &n.kind {
                NodeKind::Step { name, .. } => Some(name.as_ref()),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The static graph with the facts of its steps (in order of appearance) filled in, and
    /// the graphs of nested flows collected in [`flows`](Self::flows).
    pub(crate) fn with_facts(&self, facts: Vec<StepFacts>) -> FlowGraph {
        let mut nodes = self.nodes.to_vec();
        let mut flows: Vec<FlowGraph> = Vec::new();
        let steps = nodes.iter_mut().filter_map(|n| match &mut n.kind {
            NodeKind::Step {
                name,
                retry,
                timeout_ms,
                flow,
                ..
            } => Some((name, retry, timeout_ms, flow)),
            _ => None,
        });
        for ((name, retry, timeout_ms, flow), f) in steps.zip(facts) {
            *name = Cow::Borrowed(f.name);
            *retry = f.retry;
            *timeout_ms = f.timeout_ms;
            if let Some(mut nested) = f.flow {
                *flow = Some(FlowRef {
                    name: nested.name.clone(),
                    fingerprint: nested.fingerprint,
                });
                for g in std::mem::take(&mut nested.flows)
                    .into_iter()
                    .chain([nested])
                {
                    if !flows.iter().any(|o| o.fingerprint == g.fingerprint) {
                        flows.push(g);
                    }
                }
            }
        }
        FlowGraph {
            name: self.name.clone(),
            fingerprint: self.fingerprint,
            nodes: Cow::Owned(nodes),
            edges: self.edges.clone(),
            flows,
        }
    }
}

/// A step's node id as generated code hands it to the runtime: a thin reference to a static
/// (`&StaticNode("1/0/0")`), so that every step call, attempt, trace and event carries one
/// word for it rather than a string's two.
#[doc(hidden)]
#[derive(Debug, PartialEq, Eq)]
pub struct StaticNode(pub &'static str);
