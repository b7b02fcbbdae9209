//! The flow's graph as data: `static __GRAPH: FlowGraph`, its nodes in order of appearance
//! (steps in the order of `for_each_step`, which `Flow::graph` relies on to fill in their
//! run-time facts), and the node id of each step, which its calls pass to the runtime.
//!
//! Node ids are structural paths (see `orchflow_core::graph`): `"2"`, `"1/0/1"`, `"3/then/0"`,
//! `"4/body/1"`.

use super::Emit;
use crate::flow::plan::Pos;
use crate::flow::tree::{Group, If, Item, Loop, LoopMax, Map, Pipeline};
use proc_macro2::TokenStream;
use quote::quote;

/// The name of pipeline `k` of `item` inside a node id.
fn pipeline_name(item: &Item, k: usize) -> String {
    match item {
        Item::Group(_) => k.to_string(),
        Item::If(_) => if k == 0 { "then" } else { "else" }.to_string(),
        Item::Loop(_) | Item::Map(_) => "body".to_string(),
        Item::Step(_) => k.to_string(),
    }
}

/// The pipeline `k` of `item`, if it has one.
fn pipeline_of(item: &Item, k: usize) -> Option<&Pipeline> {
    match item {
        Item::Group(g) => g.branches.get(k),
        Item::If(x) => match k {
            0 => Some(&x.then),
            _ => x.otherwise.as_ref(),
        },
        Item::Loop(l) => Some(&l.body),
        Item::Map(m) => Some(&m.body),
        Item::Step(_) => None,
    }
}

/// The node id of the item at `pos` in `root`.
pub(super) fn node_id(root: &Pipeline, pos: &Pos) -> String {
    let mut id = String::new();
    let mut pipeline = Some(root);
    let mut segments = pos.segments().iter();
    while let Some(&i) = segments.next() {
        if !id.is_empty() {
            id.push('/');
        }
        id.push_str(&i.to_string());
        let Some(&k) = segments.next() else { break };
        let Some(item) = pipeline.and_then(|p| p.items().nth(i)) else {
            break;
        };
        id.push('/');
        id.push_str(&pipeline_name(item, k));
        pipeline = pipeline_of(item, k);
    }
    id
}

/// Nodes and edges as tokens, in order of appearance.
struct Out {
    nodes: Vec<TokenStream>,
    edges: Vec<TokenStream>,
}

impl Emit<'_> {
    /// `static __GRAPH`, for `FlowInfo::graph`.
    pub(super) fn graph(&self, name: &str, fingerprint: u64) -> TokenStream {
        let p = &self.private;
        let mut out = Out {
            nodes: Vec::new(),
            edges: Vec::new(),
        };
        self.graph_pipeline(&self.flow.pipeline, "", None, &mut out);
        let Out { nodes, edges } = out;
        let (n, e) = (nodes.len(), edges.len());
        quote! {
            static __NODES: [#p::Node; #n] = [#(#nodes),*];
            static __EDGES: [#p::Edge; #e] = [#(#edges),*];
            static __GRAPH: #p::FlowGraph = #p::graph(#name, #fingerprint, &__NODES, &__EDGES);
        }
    }

    /// The nodes of pipeline `prefix` (ids `prefix/0`, …) inside `parent`, and its edges.
    fn graph_pipeline(&self, pl: &Pipeline, prefix: &str, parent: Option<&str>, out: &mut Out) {
        let p = &self.private;
        let ids: Vec<String> = (0..pl.len())
            .map(|i| match prefix {
                "" => i.to_string(),
                _ => format!("{prefix}/{i}"),
            })
            .collect();
        for (item, id) in pl.items().zip(&ids) {
            self.graph_item(item, id, parent, out);
        }
        for pair in ids.windows(2) {
            let (from, to) = (&pair[0], &pair[1]);
            out.edges.push(quote!(#p::edge(#from, #to, false)));
        }
    }

    fn node(&self, id: &str, parent: Option<&str>, label: &str, kind: TokenStream) -> TokenStream {
        let p = &self.private;
        let parent = match parent {
            Some(parent) => quote!(::core::option::Option::Some(#parent)),
            None => quote!(::core::option::Option::None),
        };
        quote!(#p::node(#id, #parent, #label, #kind))
    }

    fn graph_item(&self, item: &Item, id: &str, parent: Option<&str>, out: &mut Out) {
        let p = &self.private;
        let none = quote!(::core::option::Option::None);
        match item {
            Item::Step(s) => {
                let label = &s.name;
                let name = match (s.by_path, self.flow.slots.get(s.slot)) {
                    (true, Some(value)) => quote!(#p::static_name(&#value, #label)),
                    _ => quote!(#label),
                };
                let by_path = s.by_path;
                let kind = quote!(#p::step_node(#name, #by_path));
                out.nodes.push(self.node(id, parent, label, kind));
            }
            Item::Group(Group { branches, .. }) => {
                let n = branches.len() as u32;
                let kind = quote!(#p::NodeKind::Group { branches: #n });
                out.nodes.push(self.node(id, parent, "[…]", kind));
                for (k, branch) in branches.iter().enumerate() {
                    let branch_id = format!("{id}/{k}");
                    let index = k as u32;
                    let kind = quote!(#p::NodeKind::Branch { index: #index });
                    out.nodes
                        .push(self.node(&branch_id, Some(id), &k.to_string(), kind));
                    self.graph_pipeline(branch, &branch_id, Some(&branch_id), out);
                }
            }
            Item::If(If {
                pred,
                then,
                otherwise,
                ..
            }) => {
                let predicate = pred.name();
                let kind = quote!(#p::if_node(#predicate));
                out.nodes.push(self.node(id, parent, "if", kind));
                let arms = [(true, Some(then)), (false, otherwise.as_ref())];
                for (is_then, arm) in arms {
                    let Some(arm) = arm else { continue };
                    let label = if is_then { "then" } else { "else" };
                    let arm_id = format!("{id}/{label}");
                    let kind = quote!(#p::NodeKind::Arm { then: #is_then });
                    out.nodes.push(self.node(&arm_id, Some(id), label, kind));
                    self.graph_pipeline(arm, &arm_id, Some(&arm_id), out);
                }
            }
            Item::Loop(Loop {
                max, body, until, ..
            }) => {
                let max = match max {
                    LoopMax::Lit(n) => quote!(::core::option::Option::Some(#n)),
                    LoopMax::Const(_) => none.clone(),
                };
                let until = match until {
                    Some(u) => {
                        let name = u.name();
                        quote!(::core::option::Option::Some(#name))
                    }
                    None => none.clone(),
                };
                let kind = quote!(#p::loop_node(#max, #until));
                out.nodes.push(self.node(id, parent, "loop", kind));
                let body_id = format!("{id}/body");
                self.graph_pipeline(body, &body_id, Some(id), out);
                let first = format!("{body_id}/0");
                let last = format!("{body_id}/{}", body.len().saturating_sub(1));
                out.edges.push(quote!(#p::edge(#last, #first, true)));
            }
            Item::Map(Map { limit, body, .. }) => {
                let limit = match limit {
                    LoopMax::Lit(n) => quote!(::core::option::Option::Some(#n)),
                    LoopMax::Const(_) => none.clone(),
                };
                let kind = quote!(#p::NodeKind::Map { limit: #limit });
                out.nodes.push(self.node(id, parent, "map", kind));
                self.graph_pipeline(body, &format!("{id}/body"), Some(id), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::node_id;
    use crate::flow::check::{Checked, check};
    use crate::flow::plan::{Plan, Pos};
    use crate::flow::tree::{Item, Pipeline};
    use quote::quote;

    /// The node id of every step, in order of appearance.
    fn step_ids(root: &Pipeline, pl: &Pipeline, pos: &Pos, out: &mut Vec<String>) {
        for (i, item) in pl.items().enumerate() {
            let at = pos.item(i);
            match item {
                Item::Step(_) => out.push(node_id(root, &at)),
                Item::Group(g) => {
                    for (b, branch) in g.branches.iter().enumerate() {
                        step_ids(root, branch, &at.branch(b), out);
                    }
                }
                Item::If(x) => {
                    step_ids(root, &x.then, &at.then_arm(), out);
                    if let Some(o) = &x.otherwise {
                        step_ids(root, o, &at.else_arm(), out);
                    }
                }
                Item::Loop(l) => step_ids(root, &l.body, &at.body(), out),
                Item::Map(m) => step_ids(root, &m.body, &at.map_body(), out),
            }
        }
    }

    #[test]
    fn step_calls_and_the_static_graph_share_node_ids() {
        let input = quote!(a => [b, loop(max = 2) { c => d }] => if p { e } else { f => [g, h] } => map(i => j, limit = 4));
        let Ok(input) = syn::parse2(input) else {
            panic!("the flow parses")
        };
        let Checked::Valid(flow) = check(input) else {
            panic!("the flow is valid")
        };
        let mut ids = Vec::new();
        step_ids(&flow.pipeline, &flow.pipeline, &Pos::root(), &mut ids);
        assert_eq!(
            ids,
            [
                "0",
                "1/0/0",
                "1/1/0/body/0",
                "1/1/0/body/1",
                "2/then/0",
                "2/else/0",
                "2/else/1/0/0",
                "2/else/1/1/0",
                "3/body/0",
                "3/body/1"
            ]
        );
        let expansion = super::super::flow(&flow, &Plan::new(&flow)).to_string();
        for id in &ids {
            // A node of the static graph, and the step's call.
            let node = format!("node (\"{id}\" ,");
            let call = format!("StaticNode (\"{id}\") , & [");
            assert_eq!(expansion.matches(&node).count(), 1, "{id}: {expansion}");
            assert_eq!(expansion.matches(&call).count(), 1, "{id}: {expansion}");
        }
    }
}
