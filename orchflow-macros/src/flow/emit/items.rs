//! The code of each item: an expression of its output, inside the driver's `async` block.
//!
//! `from` names the previous item's output (a `PhantomData` marker) for hand-off messages;
//! `None` means the value is the flow's input (nothing to check). `pos` is the item's place in
//! the tree, which finds its inner positions in the plan, and the [`Scope`]'s loop counters
//! address them at run time.

use super::{Emit, Scope, Src, at, respan, respan_call};
use crate::flow::plan::{InnerPos, Pos};
use crate::flow::tree::{If, Item, Loop, LoopMax, Map, Pipeline, Pred, StepRef};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

impl Emit<'_> {
    /// `__steps.N`: the value of a step or predicate.
    pub(super) fn slot(&self, slot: usize) -> TokenStream {
        let i = syn::Index::from(slot);
        quote!(__steps.#i)
    }

    /// A `PhantomData` naming what an item produces, for messages.
    pub(super) fn marker(&self, item: &Item) -> TokenStream {
        let p = &self.private;
        match item {
            Item::Step(s) => {
                let slot = self.slot(s.slot);
                quote!(#p::of(&#slot))
            }
            Item::Group(g) => {
                let f = format_ident!("all{}", g.branches.len());
                let ms = g.branches.iter().map(|b| self.pipeline_marker(b));
                quote!(#p::#f(#(#ms),*))
            }
            Item::If(If {
                then,
                otherwise: Some(o),
                ..
            }) => {
                let (a, b) = (self.pipeline_marker(then), self.pipeline_marker(o));
                quote!(#p::all2(#a, #b))
            }
            Item::If(If {
                then,
                otherwise: None,
                ..
            }) => self.pipeline_marker(then),
            Item::Loop(l) => self.pipeline_marker(&l.body),
            Item::Map(m) => {
                let body = self.pipeline_marker(&m.body);
                quote!(#p::vec_of(#body))
            }
        }
    }

    pub(super) fn pipeline_marker(&self, p: &Pipeline) -> TokenStream {
        self.marker(p.last())
    }

    /// The value as a `Feed`.
    pub(super) fn feed(&self, src: &Src) -> TokenStream {
        let p = &self.private;
        match src {
            Src::Value(v) => quote!(#p::Feed::Owned(#v)),
            Src::Feed(f) => f.clone(),
        }
    }

    /// The value, owned (a fed value is cloned, reported at `span` if it cannot be).
    pub(super) fn owned(&self, src: &Src, span: Span) -> TokenStream {
        let p = &self.private;
        match src {
            Src::Value(v) => v.clone(),
            Src::Feed(f) => respan(quote!(#p::own(#f)), span),
        }
    }

    /// The code of a pipeline at `pos`: its items in turn, each value saved at its inner
    /// position if it has one.
    pub(super) fn pipeline(
        &self,
        pl: &Pipeline,
        pos: &Pos,
        src: Src,
        from: Option<&TokenStream>,
        scope: Scope<'_>,
    ) -> TokenStream {
        let mut code = Vec::new();
        let mut src = src;
        let mut from = from.cloned();
        let n = pl.len();
        for (i, item) in pl.items().enumerate() {
            let pos = pos.item(i);
            let expr = self.item(item, &pos, src, from.as_ref(), scope);
            let expr = match self.plan.after(&pos) {
                Some(inner) => self.saved_after(inner, expr, scope),
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

    /// The code of one item at `pos`: an expression of its output.
    pub(super) fn item(
        &self,
        item: &Item,
        pos: &Pos,
        src: Src,
        from: Option<&TokenStream>,
        scope: Scope<'_>,
    ) -> TokenStream {
        match item {
            Item::Step(s) => self.step(s, pos, &src, from, scope),
            Item::Group(g) => self.group(g, pos, &src, from, scope, None),
            Item::If(x) => self.if_item(x, pos, &src, from, scope),
            Item::Loop(l) => self.loop_item(l, pos, &src, scope),
            Item::Map(m) => self.map_item(m, pos, &src, scope),
        }
    }

    /// A map at `pos`: its body run once per item of the incoming collection, at most `limit` at
    /// a time, under one group; each finished item saved at the map's inner position (keyed by
    /// its index after the loop counters around it) and, resumed, taken from there instead.
    fn map_item(&self, m: &Map, pos: &Pos, src: &Src, scope: Scope<'_>) -> TokenStream {
        let p = &self.private;
        let Scope { rt, path } = scope;
        let Some(first) = m.first_step() else {
            // `check` keeps only maps whose body starts with a step.
            return quote!(::core::compile_error!("a map's body starts with a step"));
        };
        let slot = self.slot(first.slot);
        let (bind, items) = match src {
            Src::Value(v) => (
                quote!(let __in = #v;),
                respan(quote!(#p::map_owned(&#slot, __in)), m.span),
            ),
            Src::Feed(f) => (
                quote!(let __in = #f;),
                respan(quote!(#p::map_borrowed(&#slot, __in.get())), m.span),
            ),
        };
        let k = format_ident!("__k{}", path.len());
        let mut item_path = path.to_vec();
        item_path.push(quote!(#k));
        let mi = quote!(__mi);
        let in_item = Scope {
            rt: &mi,
            path: &item_path,
        };
        let body = self.pipeline(
            &m.body,
            &pos.map_body(),
            Src::Feed(quote!(__item)),
            None,
            in_item,
        );
        let body = match self.plan.map_item(pos) {
            Some(inner) => {
                let name = &inner.name;
                let variant = format_ident!("{}", inner.name);
                quote! {
                    match #p::memo_take(__memo, #name, &[#(#item_path),*]) {
                        ::core::option::Option::Some(__Point::#variant(__v)) => __v,
                        _ => {
                            let __v = #body;
                            if #p::is_durable(__mi) {
                                #p::inner_reached(
                                    __mi,
                                    #name,
                                    &[#(#item_path),*],
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
            None => body,
        };
        let limit = limit(&m.limit);
        // Everything that names the items' type carries the check of the item type: all of it is
        // spanned at the user's `map`, where its one message is reported.
        let run = respan(quote!(#p::map(&__slots, __items, __each).await?), m.span);
        let items_and_slots = respan(
            quote! {
                let __items = #items;
                let __slots = #p::map_slots(&__m, __limit, &__items);
            },
            m.span,
        );
        quote! {{
            #bind
            let __m = #p::group(&#rt);
            let __memo = &__memo;
            let __limit = #limit;
            #items_and_slots
            let __each = #p::map_fn(&__slots, move |__mi, #k, __item| async move {
                let __v = #body;
                ::core::result::Result::Ok::<_, #p::Halt>(__v)
            });
            #run
        }}
    }

    fn step(
        &self,
        s: &StepRef,
        pos: &Pos,
        src: &Src,
        from: Option<&TokenStream>,
        scope: Scope<'_>,
    ) -> TokenStream {
        let p = &self.private;
        let Scope { rt, path } = scope;
        let slot = self.slot(s.slot);
        let feed = self.feed(src);
        let input = match from {
            Some(from) => respan(quote!(#p::handoff(#from, &#slot, #feed)), s.span),
            None => feed,
        };
        let node = super::graph::node_id(&self.flow.pipeline, pos);
        let call = respan(
            quote!(#p::step(#rt, &#slot, #input, &#p::StaticNode(#node), &[#(#path),*])),
            s.span,
        );
        quote_spanned!(at(s.span)=> #call.await?)
    }

    fn if_item(
        &self,
        x: &If,
        pos: &Pos,
        src: &Src,
        from: Option<&TokenStream>,
        scope: Scope<'_>,
    ) -> TokenStream {
        let p = &self.private;
        let (bind, value_ref, arm_src) = match src {
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
        let test = self.decide(&x.pred, value_ref, scope.rt);
        let then_code = self.pipeline(&x.then, &pos.then_arm(), arm_src.clone(), from, scope);
        let then_marker = self.pipeline_marker(&x.then);
        match &x.otherwise {
            Some(o) => {
                let else_code = self.pipeline(o, &pos.else_arm(), arm_src, from, scope);
                let else_marker = self.pipeline_marker(o);
                let agree = respan_call(
                    quote!(#p::arms_agree),
                    quote!(#then_marker, #else_marker,),
                    else_code,
                    o.span(),
                );
                quote! {{
                    #bind
                    if #test { #then_code } else { #agree }
                }}
            }
            None => {
                let keep = respan_call(
                    quote!(#p::pass_through),
                    quote!(#then_marker,),
                    then_code,
                    x.then.span(),
                );
                let unchanged = self.owned(&arm_src, x.pred.expr.span());
                quote! {{
                    #bind
                    if #test { #keep } else { #unchanged }
                }}
            }
        }
    }

    /// A predicate asked about `value_ref`, spanned at the predicate.
    pub(super) fn decide(
        &self,
        pred: &Pred,
        value_ref: TokenStream,
        rt: &TokenStream,
    ) -> TokenStream {
        let p = &self.private;
        let slot = self.slot(pred.slot);
        let name = pred.name();
        let test = respan(
            quote!(#p::decide(#rt, #name, #value_ref, &#slot)),
            pred.expr.span(),
        );
        quote!(#test?)
    }

    /// A loop inside a top-level item: resumed at its last saved iteration if it saves them.
    fn loop_item(&self, l: &Loop, pos: &Pos, src: &Src, scope: Scope<'_>) -> TokenStream {
        let p = &self.private;
        let Scope { rt, path } = scope;
        let start = self.owned(src, l.span);
        let i = format_ident!("__i{}", path.len());
        let mut inner_path = path.to_vec();
        inner_path.push(quote!(#i));
        let inner_scope = Scope {
            rt,
            path: &inner_path,
        };
        let next = self.loop_body(&l.body, &pos.body(), quote!(__v), inner_scope);
        let max = max(&l.max);
        let stop = match &l.until {
            Some(u) => {
                let test = self.decide(u, quote!(&__v), rt);
                quote!(#i >= #max || #test)
            }
            None => quote!(#i >= #max),
        };
        let Some(inner) = self.plan.iteration(pos) else {
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
        let name = &inner.name;
        let variant = format_ident!("{}", inner.name);
        quote! {{
            let (mut __v, mut #i) = match #p::memo_take(&__memo, #name, &[#(#path),*]) {
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
                if #p::is_durable(#rt) {
                    #p::inner_reached(
                        #rt,
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

    /// A loop body at `pos` applied to `value`, checked to give back the loop's type.
    pub(super) fn loop_body(
        &self,
        body: &Pipeline,
        pos: &Pos,
        value: TokenStream,
        scope: Scope<'_>,
    ) -> TokenStream {
        let p = &self.private;
        // Inside the body, the first step takes the loop's value: name its producer as the body's
        // own last step when iterating, which is what a mismatch on the way back in is about.
        let body_marker = self.pipeline_marker(body);
        let code = self.pipeline(body, pos, Src::Value(value), Some(&body_marker), scope);
        respan_call(
            quote!(#p::loop_carry),
            quote!(#body_marker,),
            code,
            body.span(),
        )
    }

    /// `expr` at an inner position: taken from the memo of a resumed run, else computed and
    /// saved.
    fn saved_after(&self, inner: &InnerPos, expr: TokenStream, scope: Scope<'_>) -> TokenStream {
        let p = &self.private;
        let Scope { rt, path } = scope;
        let name = &inner.name;
        let variant = format_ident!("{}", inner.name);
        quote! {
            match #p::memo_take(&__memo, #name, &[#(#path),*]) {
                ::core::option::Option::Some(__Point::#variant(__v)) => __v,
                _ => {
                    let __v = #expr;
                    if #p::is_durable(#rt) {
                        #p::inner_reached(
                            #rt,
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
}

/// A map's limit: a literal, or the constant checked at its path to be a `u32` of at least 1.
pub(super) fn limit(limit: &LoopMax) -> TokenStream {
    match limit {
        LoopMax::Lit(n) => quote!(#n),
        LoopMax::Const(path) => {
            let check = quote_spanned! {at(path.span())=>
                const __LIMIT: u32 = {
                    let __limit: u32 = #path;
                    ::core::assert!(__limit >= 1, "a map runs at least one item at a time: `limit` must be 1 or more");
                    __limit
                };
            };
            quote!({ #check __LIMIT })
        }
    }
}

/// A loop's bound: a literal, or the constant checked at its path to be a `u32` of at least 1.
pub(super) fn max(max: &LoopMax) -> TokenStream {
    match max {
        LoopMax::Lit(n) => quote!(#n),
        LoopMax::Const(path) => {
            let check = quote_spanned! {at(path.span())=>
                const __MAX: u32 = {
                    let __max: u32 = #path;
                    ::core::assert!(__max >= 1, "a loop runs at least once: `max` must be 1 or more");
                    __max
                };
            };
            quote!({ #check __MAX })
        }
    }
}
