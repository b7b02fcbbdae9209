//! The syntax tree of `flow! { … }` and its parser. Only syntax errors are reported here (an
//! `Err` stops the expansion); every other rule is [`check`](super::check)'s, which reads this
//! tree as written: a group of any size, a loop bound as written or missing.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Token, braced, bracketed, parenthesized};

/// The whole invocation.
pub(crate) struct FlowInput {
    /// The outer attributes, `#[flow(…)]` expected.
    pub(crate) attrs: Vec<syn::Attribute>,
    pub(crate) pipeline: Pipeline,
    /// The values of the steps and predicates, in order of appearance: `StepRef::slot` and
    /// `Pred::slot` index this.
    pub(crate) slots: Vec<TokenStream>,
}

/// A sequence `a => b => c`; never empty.
pub(crate) struct Pipeline {
    pub(crate) items: Vec<Item>,
}

/// One element of a pipeline, as written.
pub(crate) enum Item {
    Step(StepRef),
    Group(Group),
    If(If),
    Loop(Loop),
    Map(Map),
}

/// `map(step => …, limit = N)`, the limit possibly missing or wrong.
pub(crate) struct Map {
    pub(crate) span: Span,
    pub(crate) body: Pipeline,
    pub(crate) limit: Option<Bound>,
}

/// `[a, b => c]`, with any number of branches (even none).
pub(crate) struct Group {
    pub(crate) span: Span,
    pub(crate) branches: Vec<Pipeline>,
}

/// `if pred { … } else { … }`; `else if` is an `else` arm holding one `if`.
pub(crate) struct If {
    pub(crate) span: Span,
    pub(crate) pred: Pred,
    pub(crate) then: Pipeline,
    pub(crate) otherwise: Option<Pipeline>,
}

/// `loop(max = N) { … } until pred`, the bound possibly missing or wrong.
pub(crate) struct Loop {
    pub(crate) span: Span,
    pub(crate) bound: Option<Bound>,
    pub(crate) body: Pipeline,
    pub(crate) until: Option<Pred>,
}

/// `key = value` inside `loop(…)`: `max = 10` or `max = MAX_STEPS` when well written.
pub(crate) struct Bound {
    pub(crate) key: syn::Ident,
    pub(crate) value: BoundValue,
}

pub(crate) enum BoundValue {
    Lit(syn::LitInt),
    Const(syn::Path),
}

/// A step in a pipeline: a path to a `#[step]` function, or `(expr)`: any step value, such as
/// a flow bound to a variable.
pub(crate) struct StepRef {
    /// What traces and the shape call it.
    pub(crate) name: String,
    pub(crate) span: Span,
    pub(crate) slot: usize,
    /// Given by path (a `#[step]` type, whose name is known at compile time), not as `(expr)`.
    pub(crate) by_path: bool,
}

/// A predicate of `if` or `until`.
pub(crate) struct Pred {
    pub(crate) expr: Expr,
    pub(crate) slot: usize,
}

impl Pred {
    /// What traces and the shape call it: `short`, `<closure>`.
    pub(crate) fn name(&self) -> String {
        match &self.expr {
            Expr::Path(e) => path_name(&e.path),
            Expr::Closure(_) => "<closure>".to_string(),
            other => expr_name(other),
        }
    }
}

pub(crate) fn path_name(p: &syn::Path) -> String {
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

impl Parse for FlowInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(syn::Attribute::parse_outer)?;
        if input.is_empty() {
            return Err(input.error("a flow needs at least one step: `flow! { a => b }`"));
        }
        let mut parser = Parser { slots: Vec::new() };
        let pipeline = parser.pipeline(input)?;
        if !input.is_empty() {
            return Err(input.error("expected `=>` between items of the flow"));
        }
        Ok(FlowInput {
            attrs,
            pipeline,
            slots: parser.slots,
        })
    }
}

/// Numbers the steps and predicates as it meets them.
struct Parser {
    slots: Vec<TokenStream>,
}

impl Parser {
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
            return self.group(input).map(Item::Group);
        }
        if input.peek(Token![if]) {
            return self.if_item(input).map(Item::If);
        }
        if input.peek(Token![loop]) {
            return self.loop_item(input).map(Item::Loop);
        }
        if input.peek(Token![else]) {
            return Err(input.error("`else` without `if`"));
        }
        if input.peek(syn::Ident)
            && input.peek2(syn::token::Paren)
            && input.fork().parse::<syn::Ident>().is_ok_and(|i| i == "map")
        {
            return self.map_item(input).map(Item::Map);
        }
        self.step(input).map(Item::Step)
    }

    fn group(&mut self, input: ParseStream) -> syn::Result<Group> {
        let content;
        let bracket = bracketed!(content in input);
        let mut branches = Vec::new();
        while !content.is_empty() {
            branches.push(self.pipeline(&content)?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(Group {
            span: bracket.span.join(),
            branches,
        })
    }

    fn if_item(&mut self, input: ParseStream) -> syn::Result<If> {
        let if_token: Token![if] = input.parse()?;
        let pred = self.pred(input)?;
        let then = self.block(input, "the `if` arm")?;
        let otherwise = if input.peek(Token![else]) {
            input.parse::<Token![else]>()?;
            if input.peek(Token![if]) {
                let nested = self.if_item(input)?;
                Some(Pipeline {
                    items: vec![Item::If(nested)],
                })
            } else {
                Some(self.block(input, "the `else` arm")?)
            }
        } else {
            None
        };
        Ok(If {
            span: if_token.span,
            pred,
            then,
            otherwise,
        })
    }

    fn loop_item(&mut self, input: ParseStream) -> syn::Result<Loop> {
        let loop_token: Token![loop] = input.parse()?;
        let bound = if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            Some(bound(&content, "`max = N`")?)
        } else {
            None
        };
        let body = self.block(input, "the loop body")?;
        let until = if input.peek(syn::Ident)
            && input
                .fork()
                .parse::<syn::Ident>()
                .is_ok_and(|i| i == "until")
        {
            input.parse::<syn::Ident>()?;
            Some(self.pred(input)?)
        } else {
            None
        };
        Ok(Loop {
            span: loop_token.span,
            bound,
            body,
            until,
        })
    }

    fn map_item(&mut self, input: ParseStream) -> syn::Result<Map> {
        let map_token: syn::Ident = input.parse()?;
        let content;
        let paren = parenthesized!(content in input);
        if content.is_empty() {
            return Err(syn::Error::new(
                paren.span.join(),
                "`map` needs a step to run per item: `map(enrich, limit = 8)`",
            ));
        }
        let body = self.pipeline(&content)?;
        let limit = if content.is_empty() {
            None
        } else {
            content.parse::<Token![,]>()?;
            Some(bound(&content, "`limit = N`")?)
        };
        Ok(Map {
            span: map_token.span(),
            body,
            limit,
        })
    }

    fn step(&mut self, input: ParseStream) -> syn::Result<StepRef> {
        let lookahead = input.lookahead1();
        if lookahead.peek(syn::token::Paren) {
            let content;
            let paren = parenthesized!(content in input);
            let expr: Expr = content.parse()?;
            if !content.is_empty() {
                return Err(content.error("expected `)` after the step value"));
            }
            return Ok(StepRef {
                name: expr_name(&expr),
                span: paren.span.join(),
                slot: self.slot(expr.to_token_stream()),
                by_path: false,
            });
        }
        if lookahead.peek(syn::Ident)
            || lookahead.peek(Token![::])
            || lookahead.peek(Token![crate])
            || lookahead.peek(Token![self])
            || lookahead.peek(Token![super])
        {
            let path: syn::Path = input.call(syn::Path::parse_mod_style)?;
            let span = path.span();
            // A `#[step]` function `plan` is also a braced unit type `plan {}`.
            return Ok(StepRef {
                name: path_name(&path),
                span,
                slot: self.slot(quote_spanned!(span=> #path {})),
                by_path: true,
            });
        }
        Err(syn::Error::new(
            lookahead.error().span(),
            "expected a step, a parallel group `[a, b]`, `if pred { … }` or `loop(max = N) { … }`",
        ))
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

    fn pred(&mut self, input: ParseStream) -> syn::Result<Pred> {
        let expr = Expr::parse_without_eager_brace(input)?;
        let slot = self.slot(expr.to_token_stream());
        Ok(Pred { expr, slot })
    }

    fn slot(&mut self, value: TokenStream) -> usize {
        self.slots.push(value);
        self.slots.len() - 1
    }
}

/// `max = 10` or `max = MAX_STEPS` (any key: [`check`](super::check) wants `max` in a loop,
/// `limit` in a map); `what` names it in messages.
fn bound(content: ParseStream, what: &str) -> syn::Result<Bound> {
    let key: syn::Ident = content.parse()?;
    content.parse::<Token![=]>()?;
    let lookahead = content.lookahead1();
    let value = if lookahead.peek(syn::LitInt) {
        BoundValue::Lit(content.parse()?)
    } else if lookahead.peek(syn::Ident) || lookahead.peek(Token![::]) {
        BoundValue::Const(content.call(syn::Path::parse_mod_style)?)
    } else {
        return Err(syn::Error::new(
            lookahead.error().span(),
            format_args!("expected a whole number or a constant: {what}"),
        ));
    };
    if !content.is_empty() {
        return Err(content.error(format_args!("expected `)` after {what}")));
    }
    Ok(Bound { key, value })
}
