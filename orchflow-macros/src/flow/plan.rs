//! The resumable points of a flow, computed before anything is emitted.
//!
//! A durable run saves a point after each top-level item (each loop iteration, each finished
//! branch of a top-level group) and at *inner positions*: values inside a top-level item that
//! a resumed run would otherwise compute again. The plan names them all, in the order of the
//! generated `__Point` enum, and says where each inner position sits by [`Pos`], the item's
//! structural position in the tree.

use super::tree::{Flow, Item, Pipeline};
use std::collections::BTreeMap;

/// Where an item or a nested pipeline sits: the indices from the flow's pipeline down to it,
/// alternating between an item of a pipeline and a pipeline of an item (an `if`'s arms are 0
/// and 1, a loop's body 0, a group's branches in order).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos(Vec<usize>);

impl Pos {
    /// The flow's own pipeline.
    pub(crate) fn root() -> Pos {
        Pos::default()
    }

    /// Item `index` of this pipeline.
    pub(crate) fn item(&self, index: usize) -> Pos {
        self.child(index)
    }

    /// The `then` arm of this `if`.
    pub(crate) fn then_arm(&self) -> Pos {
        self.child(0)
    }

    /// The `else` arm of this `if`.
    pub(crate) fn else_arm(&self) -> Pos {
        self.child(1)
    }

    /// The body of this loop.
    pub(crate) fn body(&self) -> Pos {
        self.child(0)
    }

    /// The body of this map.
    pub(crate) fn map_body(&self) -> Pos {
        self.child(0)
    }

    /// Branch `index` of this group.
    pub(crate) fn branch(&self, index: usize) -> Pos {
        self.child(index)
    }

    /// The indices from the root: item, pipeline, item, ….
    pub(crate) fn segments(&self) -> &[usize] {
        &self.0
    }

    fn child(&self, index: usize) -> Pos {
        let mut path = self.0.clone();
        path.push(index);
        Pos(path)
    }
}

/// The point after a top-level item.
pub(crate) struct TopPoint {
    /// The variant of the generated state (`AfterPlan`, `AfterGroup2`, `Loop3`).
    pub(crate) name: String,
    pub(crate) kind: TopKind,
}

pub(crate) enum TopKind {
    /// The item's output.
    Value,
    /// An iteration of a loop: `{ iteration, value }`.
    Loop,
    /// A parallel group, entered at its own point (`InGroup2`) that holds the finished branches,
    /// then left with its output.
    Group { branches: usize },
}

/// The point a top-level group at `index` is entered at: `InGroup2`.
pub(crate) fn in_group_name(index: usize) -> String {
    format!("InGroup{}", index + 1)
}

/// A resumable position inside a top-level item.
pub(crate) struct InnerPos {
    /// The variant of the generated state (`Inner3AfterExecutor`).
    pub(crate) name: String,
    /// An iteration of an inner loop (`{ iteration, value }`) rather than a value after an item.
    pub(crate) is_loop: bool,
}

/// The inner positions of one item.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct At {
    /// The value after it (an index into `Plan::inner`).
    after: Option<usize>,
    /// Its iterations, when it is a loop.
    iteration: Option<usize>,
    /// Its finished items, when it is a map.
    item: Option<usize>,
}

/// The points of a flow.
pub(crate) struct Plan {
    /// One per top-level item, in order.
    pub(crate) top: Vec<TopPoint>,
    /// In the order they are numbered (depth first).
    pub(crate) inner: Vec<InnerPos>,
    at: BTreeMap<Pos, At>,
}

/// Which pipeline an item sits in, for deciding which values are saved.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The flow's own pipeline: its items are the top-level points.
    Top,
    /// An `if` arm: its last value is the `if`'s value, saved where the `if` sits.
    Arm,
    /// A loop body (its last value is the iteration's value, saved with the iteration) or a
    /// map's (its last value is the item's, saved as the finished item).
    Body,
    /// A branch of a top-level group: its last value is saved as the finished branch.
    TopBranch,
    /// A branch of a group that is not at the top level: every value is saved.
    Branch,
}

impl Plan {
    pub(crate) fn new(flow: &Flow) -> Plan {
        let mut plan = Plan {
            top: top_points(&flow.pipeline),
            inner: Vec::new(),
            at: BTreeMap::new(),
        };
        plan.assign(&flow.pipeline, &Pos::root(), Role::Top);
        plan
    }

    /// The inner position saving the value after the item at `pos`, if any.
    pub(crate) fn after(&self, pos: &Pos) -> Option<&InnerPos> {
        self.at(pos).after.and_then(|i| self.inner.get(i))
    }

    /// The inner position saving the iterations of the loop at `pos`, if any.
    pub(crate) fn iteration(&self, pos: &Pos) -> Option<&InnerPos> {
        self.at(pos).iteration.and_then(|i| self.inner.get(i))
    }

    /// The inner position saving each finished item of the map at `pos` (keyed by the item's
    /// index, after the loop counters around it).
    pub(crate) fn map_item(&self, pos: &Pos) -> Option<&InnerPos> {
        self.at(pos).item.and_then(|i| self.inner.get(i))
    }

    /// Every point's name, as `FlowInfo::points` lists them: the top-level points in order
    /// (a group's `InGroup…` before its output), then the inner positions.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (i, point) in self.top.iter().enumerate() {
            match &point.kind {
                TopKind::Group { .. } => names.push(in_group_name(i)),
                TopKind::Value | TopKind::Loop => {}
            }
            names.push(point.name.clone());
        }
        names.extend(self.inner.iter().map(|p| p.name.clone()));
        names
    }

    fn at(&self, pos: &Pos) -> At {
        self.at.get(pos).copied().unwrap_or_default()
    }

    /// Numbers the inner positions of `pl` and of everything nested in it, depth first. A value
    /// is saved after every item of a nested pipeline except where the same value is saved
    /// anyway (the last item of an arm or a loop body, a top-level group's finished branch) or
    /// can be replayed from what is saved inside (a group or a loop).
    fn assign(&mut self, pl: &Pipeline, pos: &Pos, role: Role) {
        let n = pl.len();
        for (i, item) in pl.items().enumerate() {
            let pos = pos.item(i);
            let mut at = At::default();
            let (what, replayable) = match item {
                Item::Step(s) => (format!("After{}", camel(&s.name)), false),
                Item::If(x) => {
                    self.assign(&x.then, &pos.then_arm(), Role::Arm);
                    if let Some(o) = &x.otherwise {
                        self.assign(o, &pos.else_arm(), Role::Arm);
                    }
                    ("AfterIf".to_string(), false)
                }
                Item::Loop(l) => {
                    if role != Role::Top {
                        at.iteration = Some(self.new_inner("Loop", true));
                    }
                    self.assign(&l.body, &pos.body(), Role::Body);
                    (String::new(), true)
                }
                Item::Map(m) => {
                    // Every finished item is saved, at the top level too: a resumed map runs
                    // only the others, and its value is replayed from them.
                    let first = m.first_step().map_or(String::new(), |s| camel(&s.name));
                    at.item = Some(self.new_inner(&format!("Map{first}"), false));
                    self.assign(&m.body, &pos.map_body(), Role::Body);
                    (String::new(), true)
                }
                Item::Group(g) => {
                    let inner = match role {
                        Role::Top => Role::TopBranch,
                        Role::Arm | Role::Body | Role::TopBranch | Role::Branch => Role::Branch,
                    };
                    for (b, branch) in g.branches.iter().enumerate() {
                        self.assign(branch, &pos.branch(b), inner);
                    }
                    (String::new(), true)
                }
            };
            let covered = i + 1 == n && matches!(role, Role::Arm | Role::Body | Role::TopBranch);
            if role != Role::Top && !covered && !replayable {
                at.after = Some(self.new_inner(&what, false));
            }
            if at != At::default() {
                self.at.insert(pos, at);
            }
        }
    }

    fn new_inner(&mut self, what: &str, is_loop: bool) -> usize {
        let index = self.inner.len();
        self.inner.push(InnerPos {
            name: format!("Inner{}{}", index + 1, what),
            is_loop,
        });
        index
    }
}

/// The point after each top-level item, named after it (a repeated name gets a number).
fn top_points(pl: &Pipeline) -> Vec<TopPoint> {
    let mut seen = BTreeMap::new();
    pl.items()
        .enumerate()
        .map(|(i, item)| {
            let k = i + 1;
            let (mut name, kind) = match item {
                Item::Step(s) => (format!("After{}", camel(&s.name)), TopKind::Value),
                Item::Group(g) => (
                    format!("AfterGroup{k}"),
                    TopKind::Group {
                        branches: g.branches.len(),
                    },
                ),
                Item::If(_) => (format!("AfterIf{k}"), TopKind::Value),
                Item::Map(_) => (format!("AfterMap{k}"), TopKind::Value),
                Item::Loop(_) => (format!("Loop{k}"), TopKind::Loop),
            };
            let count = seen.entry(name.clone()).or_insert(0u32);
            *count += 1;
            if *count > 1 {
                name.push_str(&count.to_string());
            }
            TopPoint { name, kind }
        })
        .collect()
}

/// `research_docs` → `ResearchDocs`, keeping only characters valid in an identifier.
fn camel(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::check::{Checked, check};
    use proc_macro2::TokenStream;
    use quote::quote;

    fn plan_of(tokens: TokenStream) -> Plan {
        match syn::parse2(tokens).map(check) {
            Ok(Checked::Valid(flow)) => Plan::new(&flow),
            Ok(Checked::Invalid { errors, .. }) => panic!("{errors}"),
            Err(e) => panic!("{e}"),
        }
    }

    fn inner_names(plan: &Plan) -> Vec<&str> {
        plan.inner.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn a_sequence_has_one_point_per_step_and_numbers_repeats() {
        let plan = plan_of(quote!(fetch_page => parse => fetch_page => steps::store));
        assert_eq!(
            plan.names(),
            [
                "AfterFetchPage",
                "AfterParse",
                "AfterFetchPage2",
                "AfterStepsStore"
            ]
        );
        assert!(plan.inner.is_empty());
    }

    #[test]
    fn a_top_level_group_is_entered_then_left() {
        let plan = plan_of(quote!(plan => [docs, market] => if short { publish } else { revise }));
        assert_eq!(
            plan.names(),
            ["AfterPlan", "InGroup2", "AfterGroup2", "AfterIf3"]
        );
        assert!(matches!(
            plan.top[1].kind,
            TopKind::Group { branches: 2, .. }
        ));
        // Each branch and arm is one step: its value is saved as the branch or the `if`'s.
        assert!(plan.inner.is_empty());
    }

    #[test]
    fn values_inside_items_are_saved_unless_saved_anyway() {
        let plan = plan_of(quote!(
            [a => b, c] => loop(max = 3) { d => if p { e => f } } until q
        ));
        assert_eq!(
            inner_names(&plan),
            ["Inner1AfterA", "Inner2AfterD", "Inner3AfterE"]
        );
        let group = Pos::root().item(0);
        assert_eq!(
            plan.after(&group.branch(0).item(0))
                .map(|p| p.name.as_str()),
            Some("Inner1AfterA")
        );
        assert!(
            plan.after(&group.branch(0).item(1)).is_none(),
            "a finished branch is saved"
        );
        let body = Pos::root().item(1).body();
        assert_eq!(
            plan.after(&body.item(0)).map(|p| p.name.as_str()),
            Some("Inner2AfterD")
        );
        let arm = body.item(1).then_arm();
        assert_eq!(
            plan.after(&arm.item(0)).map(|p| p.name.as_str()),
            Some("Inner3AfterE")
        );
        assert!(
            plan.after(&body.item(1)).is_none(),
            "the body's value is the iteration's"
        );
    }

    #[test]
    fn a_map_saves_each_item_and_the_values_inside_it() {
        let plan = plan_of(quote!(
            plan => map(fetch => parse => loop(max = 2) { polish }, limit = 4) => loop(max = 3) { map(enrich, limit = 2) }
        ));
        assert_eq!(
            plan.names(),
            [
                "AfterPlan",
                "AfterMap2",
                "Loop3",
                "Inner1MapFetch",
                "Inner2AfterFetch",
                "Inner3AfterParse",
                "Inner4Loop",
                "Inner5MapEnrich"
            ]
        );
        let map = Pos::root().item(1);
        assert_eq!(
            plan.map_item(&map).map(|p| p.name.as_str()),
            Some("Inner1MapFetch")
        );
        assert!(
            plan.after(&map).is_none(),
            "a map is replayed from its items"
        );
        let body = map.map_body();
        assert!(
            plan.after(&body.item(2)).is_none(),
            "the item's value is saved"
        );
        assert_eq!(plan.iteration(&body.item(2)).map(|p| p.is_loop), Some(true));
        let inner = Pos::root().item(2).body().item(0);
        assert_eq!(
            plan.map_item(&inner).map(|p| p.name.as_str()),
            Some("Inner5MapEnrich")
        );
        assert!(plan.after(&inner).is_none());
    }

    #[test]
    fn inner_loops_and_nested_groups_save_their_own_values() {
        let plan = plan_of(quote!(
            loop(max = 2) { [a, loop(max = 3) { b } => c] => d }
        ));
        assert_eq!(
            plan.names(),
            ["Loop1", "Inner1AfterA", "Inner2Loop", "Inner3AfterC"]
        );
        let group = Pos::root().item(0).body().item(0);
        assert!(
            plan.after(&group).is_none(),
            "a group is replayed from its branches"
        );
        let inner_loop = group.branch(1).item(0);
        assert_eq!(plan.iteration(&inner_loop).map(|p| p.is_loop), Some(true));
        assert!(plan.after(&inner_loop).is_none());
        assert_eq!(
            plan.after(&group.branch(1).item(1))
                .map(|p| p.name.as_str()),
            Some("Inner3AfterC")
        );
    }
}
