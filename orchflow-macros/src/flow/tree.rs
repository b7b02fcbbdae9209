//! The checked flow: what [`check`](super::check) hands to the later phases. Its invariants
//! hold by construction, so nothing after `check` handles an invalid tree: a pipeline has at
//! least one item, a group 2 to 12 branches, a loop bound is a literal of at least 1 or a
//! constant (which the compiler checks). Steps and predicates are the parser's.

use crate::options::Options;
use proc_macro2::{Span, TokenStream};

pub(crate) use super::ast::{Pred, StepRef};

/// A checked flow.
pub(crate) struct Flow {
    pub(crate) options: Options,
    pub(crate) pipeline: Pipeline,
    /// The values of the steps and predicates, in order of appearance.
    pub(crate) slots: Vec<TokenStream>,
}

/// A sequence `a => b => c` of at least one item.
pub(crate) struct Pipeline {
    init: Vec<Item>,
    last: Box<Item>,
}

/// One element of a checked pipeline.
pub(crate) enum Item {
    Step(StepRef),
    Group(Group),
    If(If),
    Loop(Loop),
    Map(Map),
}

/// `map(body, limit = N)`: the body (which starts with a step) run once per item of the
/// incoming collection, at most `limit` at a time.
pub(crate) struct Map {
    pub(crate) span: Span,
    pub(crate) limit: LoopMax,
    pub(crate) body: Pipeline,
}

/// Parallel branches, 2 to 12 of them (so the output stays a tuple the standard traits support).
pub(crate) struct Group {
    pub(crate) span: Span,
    pub(crate) branches: Vec<Pipeline>,
}

pub(crate) struct If {
    pub(crate) span: Span,
    pub(crate) pred: Pred,
    pub(crate) then: Pipeline,
    pub(crate) otherwise: Option<Pipeline>,
}

pub(crate) struct Loop {
    pub(crate) span: Span,
    pub(crate) max: LoopMax,
    pub(crate) body: Pipeline,
    pub(crate) until: Option<Pred>,
}

/// The bound of a loop: a literal of at least 1, or a constant (`max = MAX_STEPS`) that the
/// expansion asks the compiler to check is a `u32` of at least 1, at the constant's path.
pub(crate) enum LoopMax {
    Lit(u32),
    Const(syn::Path),
}

impl Pipeline {
    /// The pipeline of `items`; `None` when there are none.
    pub(crate) fn new(mut items: Vec<Item>) -> Option<Pipeline> {
        let last = items.pop()?;
        Some(Pipeline {
            init: items,
            last: Box::new(last),
        })
    }

    pub(crate) fn items(&self) -> impl Iterator<Item = &Item> {
        self.init.iter().chain(std::iter::once(&*self.last))
    }

    pub(crate) fn into_items(self) -> impl Iterator<Item = Item> {
        self.init.into_iter().chain(std::iter::once(*self.last))
    }

    pub(crate) fn len(&self) -> usize {
        self.init.len() + 1
    }

    /// The item whose output is the pipeline's.
    pub(crate) fn last(&self) -> &Item {
        &self.last
    }

    /// Where the pipeline's output comes from, for messages about it.
    pub(crate) fn span(&self) -> Span {
        self.last.span()
    }
}

impl Map {
    /// The step each item enters first.
    pub(crate) fn first_step(&self) -> Option<&StepRef> {
        match self.body.items().next() {
            Some(Item::Step(s)) => Some(s),
            _ => None,
        }
    }
}

impl Item {
    /// The user's token the item is reported at.
    pub(crate) fn span(&self) -> Span {
        match self {
            Item::Step(s) => s.span,
            Item::Group(Group { span, .. })
            | Item::If(If { span, .. })
            | Item::Loop(Loop { span, .. })
            | Item::Map(Map { span, .. }) => *span,
        }
    }
}

/// Calls `f` on every step of `p`, in order of appearance.
pub(crate) fn for_each_step<'p>(p: &'p Pipeline, f: &mut dyn FnMut(&'p StepRef)) {
    for item in p.items() {
        match item {
            Item::Step(s) => f(s),
            Item::Group(g) => g.branches.iter().for_each(|b| for_each_step(b, f)),
            Item::If(i) => {
                for_each_step(&i.then, f);
                if let Some(o) = &i.otherwise {
                    for_each_step(o, f);
                }
            }
            Item::Loop(l) => for_each_step(&l.body, f),
            Item::Map(m) => for_each_step(&m.body, f),
        }
    }
}
