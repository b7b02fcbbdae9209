//! Paths of calls: how a call is named from the top of its flow, and when two calls are
//! independent (a fork may still reuse a call independent of its own).
//!
//! A node id is a structural path (see [`crate::graph`]): item indices alternating with the
//! pipeline of that item (`"1/0/2"`, `"3/then/0"`, `"4/body/1"`). A call's iterations hold one
//! number per enclosing `body` segment (a loop's iteration or a map's item), outermost first.

use crate::graph::{FlowGraph, Node, NodeKind};

/// The graph a call's node belongs to: the flow's own, or the nested flow run by the step
/// `parent` of it.
pub(crate) fn graph_of<'g>(top: &'g FlowGraph, parent: Option<&str>) -> Option<&'g FlowGraph> {
    let Some(parent) = parent else {
        return Some(top);
    };
    let fp = top.nodes.iter().find_map(|n| match &n.kind {
        NodeKind::Step {
            name,
            flow: Some(f),
            ..
        } if name == parent => Some(f.fingerprint),
        _ => None,
    });
    match fp {
        Some(fp) => top.flows.iter().find(|g| g.fingerprint == fp),
        // A step of a nested flow inside a nested flow: look in every nested graph.
        None => top.flows.iter().find(|g| {
            g.nodes.iter().any(
                |n| matches!(&n.kind, NodeKind::Step { name, flow: Some(_), .. } if name == parent),
            )
        }),
    }
}

/// `loop plan[3] > [docs, market][1] > step market`: the enclosing nodes of `node` from the
/// top, each with the iteration, item, branch or arm the call is in, then the step itself.
/// Without a graph (or a node the graph lacks), the step with its iterations.
pub(crate) fn render(
    graph: Option<&FlowGraph>,
    parent: Option<&str>,
    node: &str,
    step: &str,
    iterations: &[u32],
) -> String {
    let mut parts = Vec::new();
    if let Some(p) = parent {
        parts.push(format!("step {p}"));
    }
    let graph = graph.and_then(|g| graph_of(g, parent));
    let Some(graph) = graph.filter(|g| g.nodes.iter().any(|n| n.id == node)) else {
        let at: Vec<String> = iterations.iter().map(|i| format!("[{i}]")).collect();
        parts.push(format!("step {step}{}", at.concat()));
        return parts.join(" > ");
    };
    let mut chain = Vec::new();
    let mut at = graph.nodes.iter().find(|n| n.id == node);
    while let Some(n) = at {
        chain.push(n);
        at = n
            .parent
            .as_deref()
            .and_then(|p| graph.nodes.iter().find(|m| m.id == p));
    }
    chain.reverse();
    let mut loops = iterations.iter();
    let mut i = 0;
    while i < chain.len() {
        let n = chain[i];
        let next = chain.get(i + 1).copied();
        match &n.kind {
            NodeKind::Loop { .. } | NodeKind::Map { .. } => {
                let word = if matches!(n.kind, NodeKind::Loop { .. }) {
                    "loop"
                } else {
                    "map"
                };
                let first = first_step(graph, &n.id).unwrap_or("");
                let index = loops.next().map(|k| format!("[{k}]")).unwrap_or_default();
                parts.push(format!("{word} {first}{index}").replace("  ", " "));
            }
            NodeKind::Group { .. } => {
                let names = branch_names(graph, &n.id);
                let index = match next.map(|b| &b.kind) {
                    Some(NodeKind::Branch { index }) => format!("[{index}]"),
                    _ => String::new(),
                };
                parts.push(format!("[{}]{index}", names.join(", ")));
                i += 1; // the branch is said by the index
            }
            NodeKind::If { predicate } => {
                let arm = match next.map(|a| &a.kind) {
                    Some(NodeKind::Arm { then: true }) => " then",
                    Some(NodeKind::Arm { then: false }) => " else",
                    _ => "",
                };
                parts.push(format!("if {predicate}{arm}"));
                i += 1; // the arm is said after the predicate
            }
            NodeKind::Step { name, .. } => parts.push(format!("step {name}")),
            NodeKind::Branch { index } => parts.push(format!("branch {index}")),
            NodeKind::Arm { then } => parts.push(if *then { "then" } else { "else" }.into()),
        }
        i += 1;
    }
    parts.join(" > ")
}

/// The name of the first step inside the node `id` (a loop's or map's first step).
fn first_step<'g>(graph: &'g FlowGraph, id: &str) -> Option<&'g str> {
    let prefix = format!("{id}/");
    graph
        .nodes
        .iter()
        .filter(|n| n.id.starts_with(&prefix))
        .find_map(|n| match &n.kind {
            NodeKind::Step { name, .. } => Some(name.as_ref()),
            _ => None,
        })
}

/// The first step of each branch of the group `id`.
fn branch_names(graph: &FlowGraph, id: &str) -> Vec<String> {
    graph
        .nodes
        .iter()
        .filter(|n| n.parent.as_deref() == Some(id))
        .map(|b: &Node| first_step(graph, &b.id).unwrap_or("…").to_string())
        .collect()
}

/// Whether a call at (`node`, `iterations`) is independent of the fork's call at (`fork`,
/// `fork_iterations`) in the same flow: in another branch of a group they share, or another
/// item of a map they share. Anything else that runs after the fork's call depends on it (it
/// follows it in a pipeline, or in a later iteration of a loop), and runs again.
pub(crate) fn independent(
    graph: Option<&FlowGraph>,
    node: &str,
    iterations: &[u32],
    fork: &str,
    fork_iterations: &[u32],
) -> bool {
    let a: Vec<&str> = node.split('/').collect();
    let b: Vec<&str> = fork.split('/').collect();
    let mut depth = 0; // enclosing body segments seen
    let mut k = 0;
    loop {
        let (Some(ia), Some(ib)) = (a.get(k), b.get(k)) else {
            return false;
        };
        if ia != ib {
            return false; // items of one pipeline: one follows the other
        }
        let (Some(sa), Some(sb)) = (a.get(k + 1), b.get(k + 1)) else {
            return false; // one contains the other
        };
        let item_id = a[..=k].join("/");
        if sa != sb {
            // Two branches of one group are independent; two arms of one `if` never both run
            // in one pass, so the later one is a later iteration.
            return sa.parse::<u32>().is_ok() && sb.parse::<u32>().is_ok();
        }
        if *sa == "body" {
            let (x, y) = (iterations.get(depth), fork_iterations.get(depth));
            if x != y {
                let is_map = graph
                    .and_then(|g| g.nodes.iter().find(|n| n.id == item_id))
                    .is_some_and(|n| matches!(n.kind, NodeKind::Map { .. }));
                return is_map;
            }
            depth += 1;
        }
        k += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Node, NodeKind};
    use std::borrow::Cow;

    fn node(id: &'static str, parent: Option<&'static str>, kind: NodeKind) -> Node {
        Node {
            id: Cow::Borrowed(id),
            parent: parent.map(Cow::Borrowed),
            label: Cow::Borrowed(""),
            kind,
        }
    }

    fn step(name: &'static str) -> NodeKind {
        NodeKind::Step {
            name: Cow::Borrowed(name),
            by_path: true,
            retry: None,
            timeout_ms: None,
            flow: None,
        }
    }

    /// `loop { plan => [docs, market] } => map(fetch)`
    fn graph() -> FlowGraph {
        FlowGraph {
            name: "g".into(),
            fingerprint: 1,
            nodes: Cow::Owned(vec![
                node(
                    "0",
                    None,
                    NodeKind::Loop {
                        max: Some(5),
                        until: None,
                    },
                ),
                node("0/body/0", Some("0"), step("plan")),
                node("0/body/1", Some("0"), NodeKind::Group { branches: 2 }),
                node(
                    "0/body/1/0",
                    Some("0/body/1"),
                    NodeKind::Branch { index: 0 },
                ),
                node("0/body/1/0/0", Some("0/body/1/0"), step("docs")),
                node(
                    "0/body/1/1",
                    Some("0/body/1"),
                    NodeKind::Branch { index: 1 },
                ),
                node("0/body/1/1/0", Some("0/body/1/1"), step("market")),
                node("1", None, NodeKind::Map { limit: None }),
                node("1/body/0", Some("1"), step("fetch")),
            ]),
            edges: Cow::Owned(Vec::new()),
            flows: Vec::new(),
        }
    }

    #[test]
    fn a_path_names_the_iteration_the_branch_and_the_step() {
        let g = graph();
        assert_eq!(
            render(Some(&g), None, "0/body/1/1/0", "market", &[3]),
            "loop plan[3] > [docs, market][1] > step market"
        );
        assert_eq!(
            render(Some(&g), None, "1/body/0", "fetch", &[7]),
            "map fetch[7] > step fetch"
        );
        assert_eq!(render(None, None, "9", "gone", &[1, 2]), "step gone[1][2]");
        assert_eq!(
            render(Some(&g), Some("outer"), "9", "x", &[]),
            "step outer > step x"
        );
    }

    #[test]
    fn siblings_and_other_map_items_are_independent_of_a_fork_and_what_follows_is_not() {
        let g = Some(graph());
        let g = g.as_ref();
        // The other branch of the same iteration's group.
        assert!(independent(g, "0/body/1/0/0", &[2], "0/body/1/1/0", &[2]));
        // The same branch in a later iteration follows the fork.
        assert!(!independent(g, "0/body/1/1/0", &[3], "0/body/1/1/0", &[2]));
        // The next iteration's first step follows it too.
        assert!(!independent(g, "0/body/0", &[3], "0/body/1/1/0", &[2]));
        // Another item of a map is independent; the map after the loop is not.
        assert!(independent(g, "1/body/0", &[4], "1/body/0", &[1]));
        assert!(!independent(g, "1/body/0", &[0], "0/body/0", &[2]));
    }
}
