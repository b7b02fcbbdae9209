//! `flow!`: parse → check → lower → emit.
//!
//! * parse: tokens into a [`Pipeline`] of [`Item`]s (steps stay paths, predicates stay
//!   expressions: nothing is type-checked here, the compiler does it on the expansion);
//! * check: structural rules the grammar cannot express (group sizes, loop bounds, options);
//! * lower: one resumable point per top-level item (and per loop iteration), a generic state enum
//!   over the points' payload types, and a driver that walks the points;
//! * emit: the driver calls `orchflow::__private` helpers whose trait bounds carry the
//!   compile-time checks, each call spanned at the user's token it is about.

use crate::options::{Errors, Options, Site};
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, Token, braced, bracketed, parenthesized};

/// Parallel groups are limited so their output stays a tuple the standard traits support.
const MAX_BRANCHES: usize = 12;

/// A sequence `a => b => c`.
pub(crate) struct Pipeline {
    items: Vec<Item>,
}

/// One element of a pipeline.
pub(crate) enum Item {
    Step(StepRef),
    Group {
        span: Span,
        branches: Vec<Pipeline>,
    },
    If {
        span: Span,
        pred: Pred,
        then: Pipeline,
        otherwise: Option<Pipeline>,
    },
    Loop {
        span: Span,
        max: LoopMax,
        body: Pipeline,
        until: Option<Pred>,
    },
}

/// A step in a pipeline: a path to a `#[step]` function, or `(expr)`: any step value, such as
/// a flow bound to a variable.
pub(crate) struct StepRef {
    /// What traces and the shape call it.
    name: String,
    span: Span,
    slot: usize,
    /// Given by path (a `#[step]` type, whose name is known at compile time), not as `(expr)`.
    by_path: bool,
}

/// The bound of a loop: a literal, checked here, or a constant (`max = MAX_STEPS`), checked
/// by the compiler: it must be a `u32` of at least 1, each reported at the constant's path.
pub(crate) enum LoopMax {
    Lit(u32),
    Const(syn::Path),
}

impl std::fmt::Display for LoopMax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoopMax::Lit(n) => write!(f, "{n}"),
            LoopMax::Const(p) => f.write_str(&path_name(p)),
        }
    }
}

impl ToTokens for LoopMax {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            LoopMax::Lit(n) => n.to_tokens(tokens),
            LoopMax::Const(path) => {
                let check = quote_spanned! {at(path.span())=>
                    const __MAX: u32 = {
                        let __max: u32 = #path;
                        ::core::assert!(__max >= 1, "a loop runs at least once: `max` must be 1 or more");
                        __max
                    };
                };
                tokens.extend(quote!({ #check __MAX }));
            }
        }
    }
}

/// A predicate of `if` or `until`.
pub(crate) struct Pred {
    expr: Expr,
    slot: usize,
}

/// The whole invocation.
pub(crate) struct FlowInput {
    options: Options,
    pipeline: Pipeline,
    errors: Errors,
    /// The values of the steps and predicates, in order of appearance.
    slots: Vec<TokenStream>,
}

struct Parser0<'a> {
    errors: &'a mut Errors,
    slots: &'a mut Vec<TokenStream>,
}

impl Parser0<'_> {
    fn pipeline(&mut self, input: ParseStream) -> syn::Result<Pipeline> {
        let mut items = vec![self.item(input)?];
        while input.peek(Token![=>]) {
            let arrow: Token![=>] = input.parse()?;
            if input.is_empty() {
                return Err(syn::Error::new_spanned(arrow, "expected a step after `=>`"));
            }
            items.push(self.item(input)?);
        }
        Ok(Pipeline { items })
    }

    fn item(&mut self, input: ParseStream) -> syn::Result<Item> {
        if input.peek(syn::token::Bracket) {
            let content;
            let bracket = bracketed!(content in input);
            let span = bracket.span.join();
            let mut branches = Vec::new();
            while !content.is_empty() {
                branches.push(self.pipeline(&content)?);
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
            if branches.len() < 2 {
                self.errors.at(
                    span,
                    "a parallel group needs at least two branches: `[a, b]`; write a single step without brackets",
                );
            } else if branches.len() > MAX_BRANCHES {
                self.errors.at(
                    span,
                    format_args!(
                        "a parallel group has at most {MAX_BRANCHES} branches; nest groups for more"
                    ),
                );
            }
            return Ok(Item::Group { span, branches });
        }
        if input.peek(Token![if]) {
            let if_token: Token![if] = input.parse()?;
            let expr = Expr::parse_without_eager_brace(input)?;
            let pred = self.pred(expr);
            let then = self.block(input, "the `if` arm")?;
            let otherwise = if input.peek(Token![else]) {
                input.parse::<Token![else]>()?;
                if input.peek(Token![if]) {
                    let nested = self.item(input)?;
                    Some(Pipeline {
                        items: vec![nested],
                    })
                } else {
                    Some(self.block(input, "the `else` arm")?)
                }
            } else {
                None
            };
            return Ok(Item::If {
                span: if_token.span,
                pred,
                then,
                otherwise,
            });
        }
        if input.peek(Token![loop]) {
            let loop_token: Token![loop] = input.parse()?;
            let max = if input.peek(syn::token::Paren) {
                let content;
                parenthesized!(content in input);
                self.loop_max(&content)?
            } else {
                self.errors.at(
                    loop_token.span,
                    "a loop needs a bound: `loop(max = 10) { … } until done`",
                );
                LoopMax::Lit(1)
            };
            let body = self.block(input, "the loop body")?;
            let until = if input.peek(syn::Ident)
                && input
                    .fork()
                    .parse::<syn::Ident>()
                    .is_ok_and(|i| i == "until")
            {
                input.parse::<syn::Ident>()?;
                let expr = Expr::parse_without_eager_brace(input)?;
                Some(self.pred(expr))
            } else {
                None
            };
            return Ok(Item::Loop {
                span: loop_token.span,
                max,
                body,
                until,
            });
        }
        if input.peek(Token![else]) {
            return Err(input.error("`else` without `if`"));
        }
        let lookahead = input.lookahead1();
        if lookahead.peek(syn::token::Paren) {
            let content;
            let paren = parenthesized!(content in input);
            let expr: Expr = content.parse()?;
            if !content.is_empty() {
                return Err(content.error("expected `)` after the step value"));
            }
            let name = expr_name(&expr);
            let slot = self.slots.len();
            self.slots.push(expr.to_token_stream());
            return Ok(Item::Step(StepRef {
                name,
                span: paren.span.join(),
                slot,
                by_path: false,
            }));
        }
        if lookahead.peek(syn::Ident)
            || lookahead.peek(Token![::])
            || lookahead.peek(Token![crate])
            || lookahead.peek(Token![self])
            || lookahead.peek(Token![super])
        {
            let path: syn::Path = input.call(syn::Path::parse_mod_style)?;
            let slot = self.slots.len();
            let span = path.span();
            // A `#[step]` function `plan` is also a braced unit type `plan {}`.
            self.slots.push(quote_spanned!(span=> #path {}));
            return Ok(Item::Step(StepRef {
                name: path_name(&path),
                span,
                slot,
                by_path: true,
            }));
        }
        Err(syn::Error::new(
            lookahead.error().span(),
            "expected a step, a parallel group `[a, b]`, `if pred { … }` or `loop(max = N) { … }`",
        ))
    }

    fn loop_max(&mut self, content: ParseStream) -> syn::Result<LoopMax> {
        let key: syn::Ident = content.parse()?;
        if key != "max" {
            self.errors.at(
                key.span(),
                "expected `max = N`: the most iterations the loop may run",
            );
            return Ok(LoopMax::Lit(1));
        }
        content.parse::<Token![=]>()?;
        if !content.peek(syn::LitInt) {
            // A constant, `max = MAX_STEPS`: checked by the compiler (see `LoopMax`).
            let lookahead = content.lookahead1();
            if lookahead.peek(syn::Ident) || lookahead.peek(Token![::]) {
                let path: syn::Path = content.call(syn::Path::parse_mod_style)?;
                if !content.is_empty() {
                    return Err(content.error("expected `)` after `max = N`"));
                }
                return Ok(LoopMax::Const(path));
            }
            return Err(syn::Error::new(
                lookahead.error().span(),
                "expected the most iterations the loop may run: `max = 10` or `max = MAX_STEPS`",
            ));
        }
        let lit: syn::LitInt = content.parse()?;
        if !content.is_empty() {
            return Err(content.error("expected `)` after `max = N`"));
        }
        match lit.base10_parse::<u32>() {
            Ok(0) => {
                self.errors.at(
                    lit.span(),
                    "a loop runs at least once: `max` must be 1 or more",
                );
                Ok(LoopMax::Lit(1))
            }
            Ok(n) => Ok(LoopMax::Lit(n)),
            Err(_) => {
                self.errors.at(
                    lit.span(),
                    "`max` must be a whole number that fits in `u32`",
                );
                Ok(LoopMax::Lit(1))
            }
        }
    }

    fn block(&mut self, input: ParseStream, what: &str) -> syn::Result<Pipeline> {
        if !input.peek(syn::token::Brace) {
            return Err(input.error(format_args!("expected `{{ … }}` for {what}")));
        }
        let content;
        let brace = braced!(content in input);
        if content.is_empty() {
            return Err(syn::Error::new(
                brace.span.join(),
                format_args!("{what} is empty: it needs at least one step"),
            ));
        }
        let p = self.pipeline(&content)?;
        if !content.is_empty() {
            return Err(content.error("expected `=>` or the end of the block"));
        }
        Ok(p)
    }

    fn pred(&mut self, expr: Expr) -> Pred {
        let slot = self.slots.len();
        self.slots.push(expr.to_token_stream());
        Pred { expr, slot }
    }
}

impl Parse for FlowInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let mut options = Options::default();
        let attrs = input.call(syn::Attribute::parse_outer)?;
        for attr in attrs {
            if !attr.path().is_ident("flow") {
                errors.push(syn::Error::new_spanned(
                    attr.path(),
                    "expected `#[flow(…)]` with the flow's options",
                ));
                continue;
            }
            match &attr.meta {
                syn::Meta::List(list) => {
                    options = Options::parse(list.tokens.clone(), Site::Flow, &mut errors);
                }
                other => errors.push(syn::Error::new_spanned(
                    other,
                    "expected options: `#[flow(name = \"…\", retry = 2)]`",
                )),
            }
        }
        if input.is_empty() {
            return Err(input.error("a flow needs at least one step: `flow! { a => b }`"));
        }
        let mut slots = Vec::new();
        let pipeline = Parser0 {
            errors: &mut errors,
            slots: &mut slots,
        }
        .pipeline(input)?;
        if !input.is_empty() {
            return Err(input.error("expected `=>` between items of the flow"));
        }
        options.check_retry_options(&mut errors);
        Ok(FlowInput {
            options,
            pipeline,
            errors,
            slots,
        })
    }
}

/// Expands `flow! { … }`.
pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let flow = match FlowInput::parse.parse2(input) {
        Ok(flow) => flow,
        Err(e) => {
            // Nothing sensible to lower: report, and stand in an expression of any type so the
            // surrounding code does not add errors of its own.
            let err = e.to_compile_error();
            return Ok(quote!({ #err loop {} }));
        }
    };
    let expansion = Lower::new(&flow).flow();
    if flow.errors.is_empty() {
        Ok(expansion)
    } else {
        // The errors, and beside them the flow as far as it could be understood, so that code
        // using the flow does not report errors of its own.
        let errors = flow.errors.to_compile_errors();
        Ok(quote!({ #errors #expansion }))
    }
}

/// The shape of a pipeline as one normalised line, the input of the fingerprint.
fn shape(p: &Pipeline) -> String {
    p.items
        .iter()
        .map(item_shape)
        .collect::<Vec<_>>()
        .join(" => ")
}

fn item_shape(i: &Item) -> String {
    match i {
        Item::Step(s) => s.name.clone(),
        Item::Group { branches, .. } => {
            format!(
                "[{}]",
                branches.iter().map(shape).collect::<Vec<_>>().join(", ")
            )
        }
        Item::If {
            pred,
            then,
            otherwise,
            ..
        } => match otherwise {
            Some(o) => format!(
                "if {} {{ {} }} else {{ {} }}",
                pred_name(pred),
                shape(then),
                shape(o)
            ),
            None => format!("if {} {{ {} }}", pred_name(pred), shape(then)),
        },
        Item::Loop {
            max, body, until, ..
        } => match until {
            Some(u) => format!(
                "loop(max = {max}) {{ {} }} until {}",
                shape(body),
                pred_name(u)
            ),
            None => format!("loop(max = {max}) {{ {} }}", shape(body)),
        },
    }
}

fn path_name(p: &syn::Path) -> String {
    p.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// A readable name for a step given as an expression: `(research.clone())` is `research`.
fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Path(p) => path_name(&p.path),
        Expr::MethodCall(m) => expr_name(&m.receiver),
        Expr::Call(c) => expr_name(&c.func),
        Expr::Reference(r) => expr_name(&r.expr),
        Expr::Paren(p) => expr_name(&p.expr),
        Expr::Field(f) => match &f.member {
            syn::Member::Named(i) => i.to_string(),
            syn::Member::Unnamed(_) => expr_name(&f.base),
        },
        _ => "step".to_string(),
    }
}

fn pred_name(p: &Pred) -> String {
    match &p.expr {
        Expr::Path(e) => path_name(&e.path),
        Expr::Closure(_) => "<closure>".to_string(),
        other => expr_name(other),
    }
}

/// FNV-1a, 64 bits: stable across compilers and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Where a value comes from when it enters an item.
#[derive(Clone)]
enum Src {
    /// An owned value (the previous item's output).
    Value(TokenStream),
    /// A `Feed` expression (the flow's input, or a group's shared input).
    Feed(TokenStream),
}

struct Lower<'a> {
    flow: &'a FlowInput,
    private: TokenStream,
    /// Variant names of the resumable points, for `FlowInfo::points`.
    point_names: Vec<String>,
    /// Positions inside top-level items (steps of arms, branches and loop bodies, iterations of
    /// inner loops), in a fixed order.
    inner: Vec<InnerPos>,
    /// For each item (by address) with inner positions: (position after it, its loop's
    /// iteration position), as indices into `inner`.
    inner_at: std::collections::HashMap<*const Item, (Option<usize>, Option<usize>)>,
}

/// A resumable position inside a top-level item.
struct InnerPos {
    /// The variant of the generated state (`Inner3AfterExecutor`).
    name: String,
    /// An iteration of an inner loop (`{ iteration, value }`) rather than a value after an item.
    is_loop: bool,
}

/// Which pipeline an item sits in, for deciding which values are saved.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The flow's own pipeline: its items are the top-level points.
    Top,
    /// An `if` arm: its last value is the `if`'s value, saved where the `if` sits.
    Arm,
    /// A loop body: its last value is the iteration's value, saved with the iteration.
    Body,
    /// A branch of a top-level group: its last value is saved as the finished branch.
    TopBranch,
    /// A branch of a group that is not at the top level: every value is saved.
    Branch,
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

impl<'a> Lower<'a> {
    fn new(flow: &'a FlowInput) -> Self {
        let private = match &flow.options.krate {
            Some(p) => quote!(#p::__private),
            None => quote!(::orchflow::__private),
        };
        let mut l = Lower {
            flow,
            private,
            point_names: Vec::new(),
            inner: Vec::new(),
            inner_at: std::collections::HashMap::new(),
        };
        l.point_names = flow
            .pipeline
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| l.point_name(i, it))
            .collect();
        let mut seen = std::collections::BTreeMap::new();
        for n in &mut l.point_names {
            let count = seen.entry(n.clone()).or_insert(0u32);
            *count += 1;
            if *count > 1 {
                n.push_str(&count.to_string());
            }
        }
        l.assign_inner(&flow.pipeline, Role::Top);
        l
    }

    /// Numbers the inner positions of `pl` and of everything nested in it, depth first. A value
    /// is saved after every item of a nested pipeline except where the same value is saved
    /// anyway (the last item of an arm or a loop body, a top-level group's finished branch) or
    /// can be replayed from what is saved inside (a group or a loop).
    fn assign_inner(&mut self, pl: &Pipeline, role: Role) {
        let n = pl.items.len();
        for (i, item) in pl.items.iter().enumerate() {
            let last = i + 1 == n;
            let key: *const Item = item;
            let mut at = (None, None);
            if role != Role::Top
                && let Item::Loop { .. } = item
            {
                at.1 = Some(self.new_inner("Loop".to_string(), true));
            }
            match item {
                Item::If {
                    then, otherwise, ..
                } => {
                    self.assign_inner(then, Role::Arm);
                    if let Some(o) = otherwise {
                        self.assign_inner(o, Role::Arm);
                    }
                }
                Item::Loop { body, .. } => self.assign_inner(body, Role::Body),
                Item::Group { branches, .. } if (2..=MAX_BRANCHES).contains(&branches.len()) => {
                    let inner = match role {
                        Role::Top => Role::TopBranch,
                        _ => Role::Branch,
                    };
                    for b in branches {
                        self.assign_inner(b, inner);
                    }
                }
                Item::Group { .. } | Item::Step(_) => {}
            }
            let covered = last && matches!(role, Role::Arm | Role::Body | Role::TopBranch);
            let replayable = matches!(item, Item::Group { .. } | Item::Loop { .. });
            if role != Role::Top && !covered && !replayable {
                let what = match item {
                    Item::Step(s) => format!("After{}", camel(&s.name)),
                    _ => "AfterIf".to_string(),
                };
                at.0 = Some(self.new_inner(what, false));
            }
            if at != (None, None) {
                self.inner_at.insert(key, at);
            }
        }
    }

    fn new_inner(&mut self, what: String, is_loop: bool) -> usize {
        let index = self.inner.len();
        self.inner.push(InnerPos {
            name: format!("Inner{}{}", index + 1, what),
            is_loop,
        });
        index
    }

    /// The inner positions of an item: (after it, its iterations).
    fn inner_of(&self, item: &Item) -> (Option<&InnerPos>, Option<&InnerPos>) {
        let key: *const Item = item;
        match self.inner_at.get(&key) {
            Some(&(after, iter)) => (
                after.and_then(|i| self.inner.get(i)),
                iter.and_then(|i| self.inner.get(i)),
            ),
            None => (None, None),
        }
    }

    fn point_name(&self, index: usize, item: &Item) -> String {
        match item {
            Item::Step(s) => format!("After{}", camel(&s.name)),
            Item::Group { .. } => format!("AfterGroup{}", index + 1),
            Item::If { .. } => format!("AfterIf{}", index + 1),
            Item::Loop { .. } => format!("Loop{}", index + 1),
        }
    }

    fn slot(&self, slot: usize) -> TokenStream {
        let i = syn::Index::from(slot);
        quote!(__steps.#i)
    }

    /// A `PhantomData` naming what an item produces, for messages.
    fn marker(&self, item: &Item) -> TokenStream {
        let p = &self.private;
        match item {
            Item::Step(s) => {
                let slot = self.slot(s.slot);
                quote!(#p::of(&#slot))
            }
            Item::Group { branches, .. } if branches.len() == 1 => {
                self.pipeline_marker(&branches[0])
            }
            Item::Group { branches, .. }
                if branches.is_empty() || branches.len() > MAX_BRANCHES =>
            {
                quote!(::core::marker::PhantomData::<()>)
            }
            Item::Group { branches, .. } => {
                let f = format_ident!("all{}", branches.len());
                let ms = branches.iter().map(|b| self.pipeline_marker(b));
                quote!(#p::#f(#(#ms),*))
            }
            Item::If {
                then,
                otherwise: Some(o),
                ..
            } => {
                let (a, b) = (self.pipeline_marker(then), self.pipeline_marker(o));
                quote!(#p::all2(#a, #b))
            }
            Item::If {
                then,
                otherwise: None,
                ..
            } => self.pipeline_marker(then),
            Item::Loop { body, .. } => self.pipeline_marker(body),
        }
    }

    fn pipeline_marker(&self, p: &Pipeline) -> TokenStream {
        match p.items.last() {
            Some(last) => self.marker(last),
            None => quote!(::core::marker::PhantomData::<()>),
        }
    }

    fn span_of(item: &Item) -> Span {
        match item {
            Item::Step(s) => s.span,
            Item::Group { span, .. } | Item::If { span, .. } | Item::Loop { span, .. } => *span,
        }
    }

    fn pipeline_span(p: &Pipeline) -> Span {
        p.items.last().map_or_else(Span::call_site, Self::span_of)
    }

    fn feed(&self, src: &Src) -> TokenStream {
        let p = &self.private;
        match src {
            Src::Value(v) => quote!(#p::Feed::Owned(#v)),
            Src::Feed(f) => f.clone(),
        }
    }

    fn owned(&self, src: &Src, span: Span) -> TokenStream {
        let p = &self.private;
        match src {
            Src::Value(v) => v.clone(),
            Src::Feed(f) => respan(quote!(#p::own(#f)), span),
        }
    }

    /// The code of one item: an expression of its output. `from` names the previous item for
    /// hand-off messages; `None` means the value is the flow's input (nothing to check).
    /// `path` holds the iteration counters of the loops around the item (inside its top-level
    /// item), which address its inner positions.
    fn item(
        &self,
        item: &Item,
        src: Src,
        from: Option<&TokenStream>,
        rt: &TokenStream,
        path: &[TokenStream],
    ) -> TokenStream {
        let p = &self.private;
        match item {
            Item::Step(s) => {
                let slot = self.slot(s.slot);
                let feed = self.feed(&src);
                let span = s.span;
                let input = match from {
                    Some(from) => respan(quote!(#p::handoff(#from, &#slot, #feed)), span),
                    None => feed,
                };
                let call = respan(quote!(#rt.step(&#slot, #input)), span);
                quote_spanned!(at(span)=> #call.await?)
            }
            // Reported as an error already; lowered as the branch alone so nothing else breaks.
            Item::Group { branches, .. } if branches.len() == 1 => {
                self.pipeline(&branches[0], src, from, rt, path)
            }
            // `[]`: reported already; lowered as nothing, the value passing through.
            Item::Group { branches, span } if branches.is_empty() => self.owned(&src, *span),
            Item::Group { branches, .. } => {
                let flow_input = quote!(#p::of(&#p::flow_input));
                let futures = branches.iter().enumerate().map(|(i, b)| {
                    // The first branch of a flow's first item fixes the flow's input type.
                    let from = match (from, i) {
                        (Some(f), _) => Some(f.clone()),
                        (None, 0) => None,
                        (None, _) => Some(flow_input.clone()),
                    };
                    let body = self.pipeline(
                        b,
                        Src::Feed(quote!(__in.reborrow())),
                        from.as_ref(),
                        &quote!(__g),
                        path,
                    );
                    quote!(async {
                        let __v = #body;
                        ::core::result::Result::Ok::<_, #p::Halt>(__v)
                    })
                });
                let input = match &src {
                    Src::Value(v) => quote!(#p::Feed::Owned(#v)),
                    Src::Feed(f) => f.clone(),
                };
                let names: Vec<_> = (0..branches.len())
                    .map(|i| format_ident!("__branch{}", i))
                    .collect();
                let indices = (0..branches.len()).map(|i| i as u32);
                quote! {{
                    let __in = #input;
                    let __g = #rt.group();
                    #(let #names = #futures;)*
                    #p::Branches::all(#p::try_join!(#(#p::branch(#indices, #names)),*)?)?
                }}
            }
            Item::If {
                pred,
                then,
                otherwise,
                ..
            } => {
                let slot = self.slot(pred.slot);
                let name = pred_name(pred);
                let pspan = pred.expr.span();
                let (bind, value_ref, arm_src) = match &src {
                    Src::Value(v) => (
                        quote!(let __in = #v;),
                        quote!(&__in),
                        Src::Value(quote!(__in)),
                    ),
                    Src::Feed(f) => (
                        quote!(let __in = #f;),
                        quote!(__in.get()),
                        Src::Feed(quote!(__in)),
                    ),
                };
                let test = respan(quote!(#rt.decide(#name, #value_ref, &#slot)), pspan);
                let test = quote!(#test?);
                let then_code = self.pipeline(then, arm_src.clone(), from, rt, path);
                let then_marker = self.pipeline_marker(then);
                match otherwise {
                    Some(o) => {
                        let else_code = self.pipeline(o, arm_src, from, rt, path);
                        let else_marker = self.pipeline_marker(o);
                        let span = Self::pipeline_span(o);
                        let agree = respan_call(
                            quote!(#p::arms_agree),
                            quote!(#then_marker, #else_marker,),
                            else_code,
                            span,
                        );
                        quote! {{
                            #bind
                            if #test { #then_code } else { #agree }
                        }}
                    }
                    None => {
                        let span = Self::pipeline_span(then);
                        let keep = respan_call(
                            quote!(#p::pass_through),
                            quote!(#then_marker,),
                            then_code,
                            span,
                        );
                        let unchanged = self.owned(&arm_src, pspan);
                        quote! {{
                            #bind
                            if #test { #keep } else { #unchanged }
                        }}
                    }
                }
            }
            Item::Loop {
                max,
                body,
                until,
                span,
            } => {
                let start = self.owned(&src, *span);
                let i = format_ident!("__i{}", path.len());
                let mut inner_path = path.to_vec();
                inner_path.push(quote!(#i));
                let next = self.loop_body(body, quote!(__v), rt, &inner_path);
                let stop = match self.until(until, quote!(__v), rt) {
                    Some(test) => quote!(#i >= #max || #test),
                    None => quote!(#i >= #max),
                };
                let Some(pos) = self.inner_of(item).1 else {
                    return quote! {{
                        let mut __v = #start;
                        let mut #i: u32 = 0;
                        loop {
                            __v = #next;
                            #i += 1;
                            if #stop {
                                break __v;
                            }
                        }
                    }};
                };
                // Resumed inside this loop: continue at the last saved iteration.
                let name = &pos.name;
                let variant = format_ident!("{}", pos.name);
                quote! {{
                    let (mut __v, mut #i) = match __memo.take(#name, &[#(#path),*]) {
                        ::core::option::Option::Some(__Point::#variant { iteration, value }) => {
                            (value, iteration)
                        }
                        _ => (#start, 0u32),
                    };
                    loop {
                        if #i > 0 && (#stop) {
                            break __v;
                        }
                        __v = #next;
                        #i += 1;
                        if #rt.is_durable() {
                            #rt.inner_reached(
                                #name,
                                &[#(#path),*],
                                ::core::option::Option::Some(#i),
                                || #p::to_json!(&__v),
                            )
                            .await?;
                        }
                    }
                }}
            }
        }
    }

    /// A loop body applied to `value`, checked to give back the loop's type.
    fn loop_body(
        &self,
        body: &Pipeline,
        value: TokenStream,
        rt: &TokenStream,
        path: &[TokenStream],
    ) -> TokenStream {
        let p = &self.private;
        // Inside the body, the first step takes the loop's value: name its producer as the body's
        // own last step when iterating, which is what a mismatch on the way back in is about.
        let body_marker = self.pipeline_marker(body);
        let code = self.pipeline(body, Src::Value(value), Some(&body_marker), rt, path);
        let span = Self::pipeline_span(body);
        respan_call(quote!(#p::loop_carry), quote!(#body_marker,), code, span)
    }

    /// The `until` predicate of a loop asked about `value`, spanned at the predicate.
    fn until(
        &self,
        until: &Option<Pred>,
        value: TokenStream,
        rt: &TokenStream,
    ) -> Option<TokenStream> {
        let u = until.as_ref()?;
        let slot = self.slot(u.slot);
        let name = pred_name(u);
        let test = respan(quote!(#rt.decide(#name, &#value, &#slot)), u.expr.span());
        Some(quote!(#test?))
    }

    /// `expr` at an inner position: taken from the memo of a resumed run, else computed and
    /// saved.
    fn saved_after(
        &self,
        pos: &InnerPos,
        expr: TokenStream,
        rt: &TokenStream,
        path: &[TokenStream],
    ) -> TokenStream {
        let p = &self.private;
        let name = &pos.name;
        let variant = format_ident!("{}", pos.name);
        quote! {
            match __memo.take(#name, &[#(#path),*]) {
                ::core::option::Option::Some(__Point::#variant(__v)) => __v,
                _ => {
                    let __v = #expr;
                    if #rt.is_durable() {
                        #rt.inner_reached(
                            #name,
                            &[#(#path),*],
                            ::core::option::Option::None,
                            || #p::to_json!(&__v),
                        )
                        .await?;
                    }
                    __v
                }
            }
        }
    }

    fn pipeline(
        &self,
        pl: &Pipeline,
        src: Src,
        from: Option<&TokenStream>,
        rt: &TokenStream,
        path: &[TokenStream],
    ) -> TokenStream {
        let mut code = Vec::new();
        let mut src = src;
        let mut from = from.cloned();
        let n = pl.items.len();
        for (i, item) in pl.items.iter().enumerate() {
            let expr = self.item(item, src, from.as_ref(), rt, path);
            let expr = match self.inner_of(item).0 {
                Some(pos) => self.saved_after(pos, expr, rt, path),
                None => expr,
            };
            if i + 1 == n {
                code.push(expr);
                break;
            }
            code.push(quote!(let __v = #expr;));
            src = Src::Value(quote!(__v));
            from = Some(self.marker(item));
        }
        if n == 1 {
            code.into_iter().collect()
        } else {
            quote!({ #(#code)* })
        }
    }

    /// The code that consumes the flow's value after top-level item `index - 1` and yields the
    /// next point (or returns the output after the last item).
    /// Whether top-level item `index` is a parallel group that saves each finished branch.
    fn durable_group(&self, index: usize) -> Option<&[Pipeline]> {
        match self.flow.pipeline.items.get(index) {
            Some(Item::Group { branches, .. }) if (2..=MAX_BRANCHES).contains(&branches.len()) => {
                Some(branches)
            }
            _ => None,
        }
    }

    fn in_group_name(&self, index: usize) -> String {
        format!("InGroup{}", index + 1)
    }

    /// The code that consumes the flow's value after top-level item `index - 1` and yields the
    /// next point (or returns the output after the last item).
    fn next_point(&self, index: usize, src: Src) -> TokenStream {
        let items = &self.flow.pipeline.items;
        let Some(item) = items.get(index) else {
            let out = self.owned(&src, Span::call_site());
            return quote!(return ::core::result::Result::Ok(#out));
        };
        let variant = format_ident!("{}", self.point_names[index]);
        let from = if index == 0 {
            None
        } else {
            Some(self.marker(&items[index - 1]))
        };
        if let Some(branches) = self.durable_group(index) {
            // Enter the group: its branches run in the arm of `InGroupK`, so that a resumed run
            // runs only the branches that had not finished.
            let in_group = format_ident!("{}", self.in_group_name(index));
            let nones = branches
                .iter()
                .map(|_| quote!(::core::option::Option::None));
            let input = match (index, &src) {
                (0, _) => quote!(),
                (_, src) => {
                    let v = self.owned(src, Span::call_site());
                    quote!(input: #v,)
                }
            };
            return quote!(__Point::#in_group { #input done: (#(#nones,)*) });
        }
        match item {
            Item::Loop { span, .. } => {
                let start = self.owned(&src, *span);
                quote!(__Point::#variant { iteration: 0, value: #start })
            }
            _ => {
                let code = self.item(item, src, from.as_ref(), &quote!(__rt), &[]);
                quote!(__Point::#variant(#code))
            }
        }
    }

    /// The arm that runs the unfinished branches of top-level group `index`, saving each as it
    /// finishes.
    fn group_arm(&self, index: usize, branches: &[Pipeline]) -> TokenStream {
        let p = &self.private;
        let items = &self.flow.pipeline.items;
        let in_group = format_ident!("{}", self.in_group_name(index));
        let in_group_name = self.in_group_name(index);
        let after = format_ident!("{}", self.point_names[index]);
        let done: Vec<_> = (0..branches.len())
            .map(|b| format_ident!("__done{}", b))
            .collect();
        let outs: Vec<_> = (0..branches.len())
            .map(|b| format_ident!("__b{}", b))
            .collect();
        let (pattern, feed) = if index == 0 {
            (
                quote!(__Point::#in_group { done: (#(#done,)*) }),
                quote!(__input.reborrow()),
            )
        } else {
            (
                quote!(__Point::#in_group { input, done: (#(#done,)*) }),
                quote!(#p::Feed::Borrowed(&input)),
            )
        };
        let from = if index == 0 {
            None
        } else {
            Some(self.marker(&items[index - 1]))
        };
        let flow_input = quote!(#p::of(&#p::flow_input));
        let futures = branches.iter().enumerate().map(|(b, branch)| {
            let from = match (&from, b) {
                (Some(f), _) => Some(f.clone()),
                (None, 0) => None,
                (None, _) => Some(flow_input.clone()),
            };
            let code = self.pipeline(
                branch,
                Src::Feed(quote!(__in.reborrow())),
                from.as_ref(),
                &quote!(__g),
                &[],
            );
            let d = &done[b];
            quote! {
                async {
                    let __v = match #d {
                        ::core::option::Option::Some(__v) => __v,
                        ::core::option::Option::None => {
                            let __v = #code;
                            __g.branch_reached(#in_group_name, #b, || #p::to_json!(&__v)).await?;
                            __v
                        }
                    };
                    ::core::result::Result::Ok::<_, #p::Halt>(__v)
                }
            }
        });
        let names: Vec<_> = (0..branches.len())
            .map(|i| format_ident!("__branch{}", i))
            .collect();
        let indices = (0..branches.len()).map(|i| i as u32);
        quote! {
            #pattern => {
                let __in = #feed;
                let __g = __rt.group();
                #(let #names = #futures;)*
                let (#(#outs,)*) =
                    #p::Branches::all(#p::try_join!(#(#p::branch(#indices, #names)),*)?)?;
                __Point::#after((#(#outs,)*))
            }
        }
    }

    fn flow(&self) -> TokenStream {
        let p = &self.private;
        let f = self.flow;
        let items = &f.pipeline.items;
        let slots = &f.slots;

        // State requirement: fold every step's `Needs`, each check spanned at its step.
        let mut needs = vec![quote!(let __needs = #p::needs_none();)];
        collect_steps(&f.pipeline, &mut |s: &StepRef| {
            let slot = self.slot(s.slot);
            needs.push(respan(
                quote!(let __needs = #p::meet(__needs, &#slot);),
                s.span,
            ));
        });

        // Two different steps with one name: a compile error at the second. Only steps given by
        // path have names known at compile time; the same path twice is the same step.
        let mut by_path: Vec<&StepRef> = Vec::new();
        collect_steps(&f.pipeline, &mut |s: &StepRef| {
            if s.by_path && !by_path.iter().any(|o| o.name == s.name) {
                by_path.push(s);
            }
        });
        let mut names_check = Vec::new();
        for (j, second) in by_path.iter().enumerate() {
            for first in &by_path[..j] {
                let (a, b) = (&f.slots[first.slot], &f.slots[second.slot]);
                let msg = format!(
                    "steps `{}` and `{}` are two different steps with the same name: traces, events \
                     and checkpoints could not tell them apart; give one of them another \
                     `#[step(name = \"…\")]`",
                    first.name, second.name
                );
                let check = quote_spanned! {at(second.span)=>
                    if #p::same_name(&#a, &#b) {
                        ::core::panic!(#msg)
                    }
                };
                names_check.push(quote!(const _: () = #check;));
            }
        }

        // Human questions are named at run time: two different ones with one name are found
        // when the flow is built, and every run fails with it (see `__private::questions`).
        let mut by_value = Vec::new();
        collect_steps(&f.pipeline, &mut |s: &StepRef| {
            if !s.by_path {
                by_value.push(self.slot(s.slot));
            }
        });
        let (questions, invalid) = if by_value.is_empty() {
            (quote!(), quote!())
        } else {
            (
                quote!(let __invalid = #p::questions(&[#(#p::question(&#by_value)),*]);),
                quote! {
                    if let ::core::option::Option::Some(__e) = __invalid {
                        return ::core::result::Result::Err(#p::invalid(__e));
                    }
                },
            )
        };

        // One type parameter per top-level item's output, plus one per branch of a top-level
        // group (its finished branches are saved one by one).
        let mut generics = Vec::new();
        // For each type parameter, a marker type whose name says where the value is in the flow
        // (`the_value_after_plan`): the serde check of a durable flow names it in its message.
        let mut markers = Vec::new();
        let mut variants = Vec::new();
        let mut names = Vec::new();
        let mut all_points = Vec::new();
        // The checkpoint form of each variant: `{"Name": value}` or `{"Name": {fields}}`.
        let mut to_json = Vec::new();
        let mut from_json = Vec::new();
        let tuple_json = |v: &proc_macro2::Ident, lit: &str| {
            (
                quote!(__Point::#v(__x) => #p::variant(#lit, #p::to_value(__x)?),),
                quote!(#lit => __Point::#v(#p::from_value(__c)?),),
            )
        };
        let fields_json = |v: &proc_macro2::Ident, lit: &str, fields: &[&str]| {
            let idents: Vec<_> = fields.iter().map(|f| format_ident!("{}", f)).collect();
            (
                quote! {
                    __Point::#v { #(#idents),* } => #p::variant(
                        #lit,
                        #p::fields([#((#fields, #p::to_value(#idents)?)),*]),
                    ),
                },
                quote!(#lit => __Point::#v { #(#idents: #p::field(&mut __c, #fields)?),* },),
            )
        };
        for (i, item) in items.iter().enumerate() {
            let g = format_ident!("T{}", i + 1);
            let v = format_ident!("{}", self.point_names[i]);
            if let Some(branches) = self.durable_group(i) {
                let bs: Vec<_> = (0..branches.len())
                    .map(|b| format_ident!("T{}_{}", i + 1, b + 1))
                    .collect();
                let ig = format_ident!("{}", self.in_group_name(i));
                let input = if i == 0 {
                    quote!()
                } else {
                    let prev = format_ident!("T{}", i);
                    quote!(input: #prev,)
                };
                variants.push(quote!(#ig { #input done: (#(::core::option::Option<#bs>,)*) }));
                let lit = self.in_group_name(i);
                names.push(quote!(__Point::#ig { .. } => #p::Some(#lit)));
                let fields: &[&str] = if i == 0 {
                    &["done"]
                } else {
                    &["input", "done"]
                };
                let (to, from) = fields_json(&ig, &lit, fields);
                to_json.push(to);
                from_json.push(from);
                all_points.push(self.in_group_name(i));
                markers
                    .extend((0..bs.len()).map(|b| {
                        format_ident!("the_output_of_branch_{}_of_item_{}", b + 1, i + 1)
                    }));
                generics.extend(bs);
            }
            match item {
                Item::Loop { .. } => {
                    variants.push(quote!(#v { iteration: u32, value: #g }));
                    let lit = &self.point_names[i];
                    names.push(quote!(__Point::#v { .. } => #p::Some(#lit)));
                    let (to, from) = fields_json(&v, lit, &["iteration", "value"]);
                    to_json.push(to);
                    from_json.push(from);
                }
                _ => {
                    variants.push(quote!(#v(#g)));
                    let lit = &self.point_names[i];
                    names.push(quote!(__Point::#v(..) => #p::Some(#lit)));
                    let (to, from) = tuple_json(&v, lit);
                    to_json.push(to);
                    from_json.push(from);
                }
            }
            all_points.push(self.point_names[i].clone());
            markers.push(marker_for(&self.point_names[i]));
            generics.push(g);
        }
        // One type parameter per inner position.
        for (k, pos) in self.inner.iter().enumerate() {
            let g = format_ident!("M{}", k + 1);
            let v = format_ident!("{}", pos.name);
            let lit = &pos.name;
            let (to, from) = if pos.is_loop {
                variants.push(quote!(#v { iteration: u32, value: #g }));
                names.push(quote!(__Point::#v { .. } => #p::Some(#lit)));
                fields_json(&v, lit, &["iteration", "value"])
            } else {
                variants.push(quote!(#v(#g)));
                names.push(quote!(__Point::#v(..) => #p::Some(#lit)));
                tuple_json(&v, lit)
            };
            to_json.push(to);
            from_json.push(from);
            all_points.push(pos.name.clone());
            markers.push(marker_for(&pos.name));
            generics.push(g);
        }
        // The flow's output is the value after its last item.
        let output = format_ident!("T{}", items.len());
        let infer = generics.iter().map(|_| quote!(_));
        let memo = if self.inner.is_empty() {
            quote!()
        } else {
            quote!(let __memo = __resume.memo;)
        };

        let start = self.next_point(0, Src::Feed(quote!(__input)));
        let mut arms = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(branches) = self.durable_group(i) {
                arms.push(self.group_arm(i, branches));
            }
            let v = format_ident!("{}", self.point_names[i]);
            let arm = match item {
                Item::Loop {
                    max, body, until, ..
                } => {
                    let body_code =
                        self.loop_body(body, quote!(value), &quote!(__rt), &[quote!(iteration)]);
                    let exit = self.next_point(i + 1, Src::Value(quote!(value)));
                    let stop = match self.until(until, quote!(value), &quote!(__rt)) {
                        // The body runs at least once: the predicate is asked from the first
                        // iteration's output on.
                        Some(test) => quote!(iteration > 0 && (iteration >= #max || #test)),
                        // `max` is at least 1, so this also lets the first iteration run.
                        None => quote!(iteration >= #max),
                    };
                    quote! {
                        __Point::#v { iteration, value } => {
                            if #stop {
                                #exit
                            } else {
                                __Point::#v { iteration: iteration + 1, value: #body_code }
                            }
                        }
                    }
                }
                _ => {
                    let next = self.next_point(i + 1, Src::Value(quote!(__v)));
                    quote!(__Point::#v(__v) => #next,)
                }
            };
            arms.push(arm);
        }
        if !self.inner.is_empty() {
            // A journal's point is never an inner position unless the file was edited.
            arms.push(quote! {
                __other => return ::core::result::Result::Err(__rt.misplaced(__other.__name())),
            });
        }

        let name = f
            .options
            .name
            .as_ref()
            .map_or_else(|| "flow".to_string(), |n| n.value());
        let shape = shape(&f.pipeline);
        let fingerprint = fnv1a(format!("{name}\u{0}{shape}").as_bytes());
        let retry = match f.options.retry_tokens(p) {
            Some(t) => quote!(::core::option::Option::Some(#t)),
            None => quote!(::core::option::Option::None),
        };
        let timeout = match f.options.timeout {
            Some(t) => quote!(::core::option::Option::Some(#p::Duration::#t)),
            None => quote!(::core::option::Option::None),
        };
        let save = quote! {
            if __rt.is_durable() {
                __rt.reached(__point.__name(), &__point).await?;
            }
        };

        quote! {{
            let __steps = (#(#slots,)*);
            #(#needs)*
            #(#names_check)*
            #questions

            /// The resumable points of this flow: the value after each top-level item, each
            /// loop iteration, the finished branches of each top-level group, and the values
            /// inside top-level items (`Inner…`).
            #[allow(non_camel_case_types, dead_code)]
            enum __Point<#(#generics),*> {
                #(#variants),*
            }

            #(
                #[allow(non_camel_case_types, dead_code)]
                struct #markers;
            )*

            // The checkpoint form, for durable runs only (the values' serde bounds are here).
            impl<__I, #(#generics),*> #p::Checkpointable<__I, #output> for __Point<#(#generics),*>
            where
                __I: #p::Saved<#p::the_flow_input>,
                #(#generics: #p::Saved<#markers>,)*
            {
                fn input_to_json(__i: &__I) -> ::core::result::Result<#p::Value, #p::JsonError> {
                    #p::to_value(__i)
                }

                fn input_from_json(__j: #p::Value) -> ::core::result::Result<__I, #p::JsonError> {
                    #p::from_value(__j)
                }

                fn output_to_json(__o: &#output) -> ::core::result::Result<#p::Value, #p::JsonError> {
                    #p::to_value(__o)
                }

                fn output_from_json(__j: #p::Value) -> ::core::result::Result<#output, #p::JsonError> {
                    #p::from_value(__j)
                }

                fn to_json(&self) -> ::core::result::Result<#p::Value, #p::JsonError> {
                    ::core::result::Result::Ok(match self {
                        #(#to_json)*
                    })
                }

                #[allow(unused_mut)]
                fn from_json(__json: #p::Value) -> ::core::result::Result<Self, #p::JsonError> {
                    let (__name, mut __c) = #p::split_variant(__json)?;
                    ::core::result::Result::Ok(match __name.as_str() {
                        #(#from_json)*
                        __other => {
                            return ::core::result::Result::Err(
                                #p::unknown_variant(__other, __INFO.points),
                            );
                        }
                    })
                }
            }

            impl<#(#generics),*> __Point<#(#generics),*> {
                fn __name(&self) -> ::core::option::Option<&'static str> {
                    match self {
                        #(#names,)*
                    }
                }
            }

            static __INFO: #p::FlowInfo = #p::FlowInfo {
                name: #name,
                fingerprint: #fingerprint,
                shape: #shape,
                points: &[#(#all_points),*],
            };

            // One-step flows end every `match` arm in `return`; the driver is generated code, not
            // the user's, so lints about its style are not theirs to fix.
            #[allow(unreachable_code, clippy::all, clippy::pedantic, clippy::nursery)]
            let __flow = #p::Flow::__new(
                &__INFO,
                #p::FlowDefaults { retry: #retry, timeout: #timeout },
                __needs,
                __steps,
                move |__steps, __rt, __input, __resume: #p::Resume<__Point<#(#infer),*>>| {
                    #p::driver(async move {
                        #invalid
                        #memo
                        let mut __point = match __resume.point {
                            ::core::option::Option::Some(__point) => __point,
                            ::core::option::Option::None => {
                                let __point = #start;
                                #save
                                __point
                            }
                        };
                        loop {
                            __point = match __point {
                                #(#arms)*
                            };
                            #save
                        }
                    })
                },
                // After the driver, whose body fixes the input's type: `to_json!` needs it known.
                |__i| #p::to_json!(__i),
            );
            __flow
        }}
    }
}

fn collect_steps<'p>(p: &'p Pipeline, f: &mut dyn FnMut(&'p StepRef)) {
    for item in &p.items {
        match item {
            Item::Step(s) => f(s),
            Item::Group { branches, .. } => branches.iter().for_each(|b| collect_steps(b, f)),
            Item::If {
                then, otherwise, ..
            } => {
                collect_steps(then, f);
                if let Some(o) = otherwise {
                    collect_steps(o, f);
                }
            }
            Item::Loop { body, .. } => collect_steps(body, f),
        }
    }
}

/// A span at the user's token that resolves names like the macro's own code (`call_site`), so
/// generated locals stay visible even when the user's tokens come from a `macro_rules!`.
fn at(span: Span) -> Span {
    Span::call_site().located_at(span)
}

/// Gives every token of `tokens` the location of `span` (with call-site name resolution), so
/// that the compiler reports anything about the expression (an unmet bound, an argument's type)
/// at the user's token.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    let span = at(span);
    tokens
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut ng = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                ng.set_span(span);
                tt = proc_macro2::TokenTree::Group(ng);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

/// `{ let __value = value; f(checks…, __value) }`: the call carries `span`, while `value` (code
/// that may hold errors of its own) keeps its spans.
fn respan_call(f: TokenStream, checks: TokenStream, value: TokenStream, span: Span) -> TokenStream {
    let call = respan(quote!(#f(#checks __value)), span);
    quote!({
        let __value = #value;
        #call
    })
}

/// The marker type naming where a point's value is, for the serde check of a durable flow:
/// `AfterPlan` → `the_value_after_plan`, `Loop2` → `the_value_of_loop_2`, `AfterGroup3` →
/// `the_value_after_group_3`, `Inner1AfterAct` → `the_value_after_act_inside_item_1`.
fn marker_for(point: &str) -> proc_macro2::Ident {
    let words = snake_words(point);
    let text = match words.first().map(String::as_str) {
        Some("after") => format!("the_value_{}", words.join("_")),
        Some("loop") => format!("the_value_of_{}", words.join("_")),
        Some("inner") if words.len() > 2 => {
            let item = &words[1];
            let rest = words[2..].join("_");
            if rest == "loop" {
                format!("the_value_of_the_loop_inside_item_{item}")
            } else {
                format!("the_value_{rest}_inside_item_{item}")
            }
        }
        _ => format!("the_value_at_{}", words.join("_")),
    };
    format_ident!("{}", text)
}

/// `AfterGroup12` → `["after", "group", "12"]`.
fn snake_words(camel: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for c in camel.chars() {
        let boundary = match prev {
            None => true,
            Some(p) => {
                (c.is_ascii_uppercase() && !p.is_ascii_uppercase())
                    || (c.is_ascii_digit() != p.is_ascii_digit())
            }
        };
        if boundary || words.is_empty() {
            words.push(String::new());
        }
        if let Some(w) = words.last_mut() {
            w.push(c.to_ascii_lowercase());
        }
        prev = Some(c);
    }
    words
}

#[cfg(test)]
mod marker_tests {
    use super::marker_for;

    #[test]
    fn markers_say_where_a_value_is() {
        let cases = [
            ("AfterPlan", "the_value_after_plan"),
            ("AfterFetchPage", "the_value_after_fetch_page"),
            ("AfterGroup12", "the_value_after_group_12"),
            ("Loop2", "the_value_of_loop_2"),
            ("Inner1AfterAct", "the_value_after_act_inside_item_1"),
            ("Inner5Loop", "the_value_of_the_loop_inside_item_5"),
            ("InGroup2", "the_value_at_in_group_2"),
        ];
        for (point, marker) in cases {
            assert_eq!(marker_for(point).to_string(), marker, "{point}");
        }
    }
}
