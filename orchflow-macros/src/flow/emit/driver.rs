//! The flow value: its steps, the compile-time checks over all of them, its `FlowInfo`, and the
//! driver, a loop over the top-level points that a resumed run enters at its saved point.

use super::group::{Saved, done};
use super::{Emit, Scope, Src, respan};
use crate::flow::plan::{Pos, TopPoint, in_group_name};
use crate::flow::shape::{fingerprint, shape};
use crate::flow::tree::{Group, Item, Loop, StepRef, for_each_step};
use crate::spans::at;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

impl Emit<'_> {
    /// The whole expansion: a block whose value is the flow.
    pub(super) fn flow(&self) -> TokenStream {
        let p = &self.private;
        let slots = &self.flow.slots;
        let needs = self.needs();
        let names_check = self.names_check();
        let (questions, invalid) = self.questions();
        let points = self.points();
        let point_items = &points.items;
        let infer = points.generics.iter().map(|_| quote!(_));
        let info = self.info();
        let mut facts = Vec::new();
        for_each_step(&self.flow.pipeline, &mut |s: &StepRef| {
            let slot = self.slot(s.slot);
            facts.push(quote!(#p::step_facts(&#slot)));
        });
        let defaults = self.defaults();
        let memo = if self.plan.inner.is_empty() {
            quote!(let (__resumed, _) = #p::resume_parts(__resume);)
        } else {
            quote!(let (__resumed, __memo) = #p::resume_parts(__resume);)
        };
        let start = self.next_point(0, Src::Feed(quote!(__input)));
        let arms = self.arms();
        let save = quote! {
            if #p::is_durable(__rt) {
                #p::reached(__rt, __point.__name(), &__point).await?;
            }
        };

        quote! {{
            let __steps = (#(#slots,)*);
            #(#needs)*
            #(#names_check)*
            #questions

            #point_items

            #info

            // One-step flows end every `match` arm in `return`; the driver is generated code, not
            // the user's, so lints about its style are not theirs to fix.
            #[allow(unreachable_code, clippy::all, clippy::pedantic, clippy::nursery)]
            let __flow = #p::new_flow(
                &__INFO,
                #defaults,
                __needs,
                __steps,
                move |__steps, __rt, __input, __resume: #p::Resume<__Point<#(#infer),*>>| {
                    #p::driver(async move {
                        #invalid
                        #memo
                        let mut __point = match __resumed {
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
                |__steps| #p::Vec::from([#(#facts),*]),
            );
            __flow
        }}
    }

    /// The flow's state requirement: every step's `Needs` folded, each check spanned at its step.
    fn needs(&self) -> Vec<TokenStream> {
        let p = &self.private;
        let mut needs = vec![quote!(let __needs = #p::needs_none();)];
        for_each_step(&self.flow.pipeline, &mut |s: &StepRef| {
            let slot = self.slot(s.slot);
            needs.push(respan(
                quote!(let __needs = #p::meet(__needs, &#slot);),
                s.span,
            ));
        });
        needs
    }

    /// Two different steps with one name: a compile error at the second. Only steps given by
    /// path have names known at compile time; the same path twice is the same step.
    fn names_check(&self) -> Vec<TokenStream> {
        let p = &self.private;
        let mut by_path: Vec<(&StepRef, &TokenStream)> = Vec::new();
        for_each_step(&self.flow.pipeline, &mut |s: &StepRef| {
            if let Some(value) = self.flow.slots.get(s.slot)
                && s.by_path
                && !by_path.iter().any(|(o, _)| o.name == s.name)
            {
                by_path.push((s, value));
            }
        });
        let mut checks = Vec::new();
        for (j, (second, b)) in by_path.iter().enumerate() {
            for (first, a) in &by_path[..j] {
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
                checks.push(quote!(const _: () = #check;));
            }
        }
        checks
    }

    /// Human questions are named at run time: two different ones with one name are found when
    /// the flow is built, and every run fails with it (see `__private_0_1_0::questions`). The
    /// statement that finds them, and the driver's check of what it found.
    fn questions(&self) -> (TokenStream, TokenStream) {
        let p = &self.private;
        let mut by_value = Vec::new();
        for_each_step(&self.flow.pipeline, &mut |s: &StepRef| {
            if !s.by_path {
                by_value.push(self.slot(s.slot));
            }
        });
        if by_value.is_empty() {
            return (quote!(), quote!());
        }
        (
            quote!(let __invalid = #p::questions(&[#(#p::question(&#by_value)),*]);),
            quote! {
                if let ::core::option::Option::Some(__e) = __invalid {
                    return ::core::result::Result::Err(#p::invalid(__e));
                }
            },
        )
    }

    /// `static __INFO: FlowInfo`: the flow's name, shape, fingerprint and points.
    fn info(&self) -> TokenStream {
        let p = &self.private;
        let name = self
            .flow
            .options
            .name
            .as_ref()
            .map_or_else(|| "flow".to_string(), |n| n.value());
        let shape = shape(&self.flow.pipeline);
        let fingerprint = fingerprint(&name, &shape);
        let all_points = self.plan.names();
        let graph = self.graph(&name, fingerprint);
        quote! {
            #graph
            static __INFO: #p::FlowInfo = #p::FlowInfo {
                name: #name,
                fingerprint: #fingerprint,
                shape: #shape,
                points: &[#(#all_points),*],
                graph: &__GRAPH,
            };
        }
    }

    /// The `FlowDefaults` of the steps that set no policy of their own.
    fn defaults(&self) -> TokenStream {
        let p = &self.private;
        let options = &self.flow.options;
        let retry = match options.retry_tokens(p) {
            Some(t) => quote!(::core::option::Option::Some(#t)),
            None => quote!(::core::option::Option::None),
        };
        let timeout = match options.timeout {
            Some(t) => quote!(::core::option::Option::Some(#p::Duration::#t)),
            None => quote!(::core::option::Option::None),
        };
        quote!(#p::FlowDefaults { retry: #retry, timeout: #timeout })
    }

    /// The top-level items with their points, in order.
    fn top(&self) -> impl Iterator<Item = (&Item, &TopPoint)> {
        self.flow.pipeline.items().zip(&self.plan.top)
    }

    /// The marker of top-level item `index - 1`, for hand-off messages into item `index`; `None`
    /// for the first item, which takes the flow's input.
    fn marker_before(&self, index: usize) -> Option<TokenStream> {
        let previous = self.top().nth(index.checked_sub(1)?)?;
        Some(self.marker(previous.0))
    }

    /// The arms of the driver's `match`: one per top-level point.
    fn arms(&self) -> Vec<TokenStream> {
        let p = &self.private;
        let mut arms = Vec::new();
        for (i, (item, point)) in self.top().enumerate() {
            match item {
                Item::Group(g) => {
                    arms.push(self.group_arm(i, g, point));
                    arms.push(self.value_arm(i, point));
                }
                Item::Loop(l) => arms.push(self.loop_arm(i, l, point)),
                Item::Step(_) | Item::If(_) | Item::Map(_) => arms.push(self.value_arm(i, point)),
            }
        }
        if !self.plan.inner.is_empty() {
            // A journal's point is never an inner position unless the file was edited.
            arms.push(quote! {
                __other => return ::core::result::Result::Err(#p::misplaced(__rt, __other.__name())),
            });
        }
        arms
    }

    /// The arm of the value after top-level item `i`: on to the next point.
    fn value_arm(&self, i: usize, point: &TopPoint) -> TokenStream {
        let v = format_ident!("{}", point.name);
        let next = self.next_point(i + 1, Src::Value(quote!(__v)));
        quote!(__Point::#v(__v) => #next,)
    }

    /// The arm of top-level loop `i`: one more iteration, or on to the next point.
    fn loop_arm(&self, i: usize, l: &Loop, point: &TopPoint) -> TokenStream {
        let v = format_ident!("{}", point.name);
        let rt = quote!(__rt);
        let body_pos = Pos::root().item(i).body();
        let body = self.loop_body(
            &l.body,
            &body_pos,
            quote!(value),
            Scope {
                rt: &rt,
                path: &[quote!(iteration)],
            },
        );
        let exit = self.next_point(i + 1, Src::Value(quote!(value)));
        let max = super::items::max(&l.max);
        let stop = match &l.until {
            // The body runs at least once: the predicate is asked from the first iteration's
            // output on.
            Some(u) => {
                let test = self.decide(u, quote!(&value), &rt);
                quote!(iteration > 0 && (iteration >= #max || #test))
            }
            // `max` is at least 1, so this also lets the first iteration run.
            None => quote!(iteration >= #max),
        };
        quote! {
            __Point::#v { iteration, value } => {
                if #stop {
                    #exit
                } else {
                    __Point::#v { iteration: iteration + 1, value: #body }
                }
            }
        }
    }

    /// The arm that runs the unfinished branches of top-level group `i`, saving each as it
    /// finishes.
    fn group_arm(&self, i: usize, g: &Group, point: &TopPoint) -> TokenStream {
        let p = &self.private;
        let in_group_name = in_group_name(i);
        let in_group = format_ident!("{}", in_group_name);
        let after = format_ident!("{}", point.name);
        let done: Vec<_> = (0..g.branches.len()).map(done).collect();
        let (pattern, input) = if i == 0 {
            (
                quote!(__Point::#in_group { done: (#(#done,)*) }),
                Src::Feed(quote!(__input.reborrow())),
            )
        } else {
            (
                quote!(__Point::#in_group { input, done: (#(#done,)*) }),
                Src::Feed(quote!(#p::Feed::Borrowed(&input))),
            )
        };
        let from = self.marker_before(i);
        let saved = Saved {
            point: &in_group_name,
        };
        let pos = Pos::root().item(i);
        let group = self.group(
            g,
            &pos,
            &input,
            from.as_ref(),
            Scope {
                rt: &quote!(__rt),
                path: &[],
            },
            Some(saved),
        );
        quote!(#pattern => __Point::#after(#group),)
    }

    /// The code that consumes the flow's value after top-level item `index - 1` and yields the
    /// next point (or returns the output after the last item).
    fn next_point(&self, index: usize, src: Src) -> TokenStream {
        let Some((item, point)) = self.top().nth(index) else {
            let out = self.owned(&src, Span::call_site());
            return quote!(return ::core::result::Result::Ok(#out));
        };
        let variant = format_ident!("{}", point.name);
        match item {
            // Enter the group: its branches run in the arm of `InGroupK`, so that a resumed run
            // runs only the branches that had not finished.
            Item::Group(g) => {
                let in_group = format_ident!("{}", in_group_name(index));
                let nones = g
                    .branches
                    .iter()
                    .map(|_| quote!(::core::option::Option::None));
                let input = match index {
                    0 => quote!(),
                    _ => {
                        let v = self.owned(&src, Span::call_site());
                        quote!(input: #v,)
                    }
                };
                quote!(__Point::#in_group { #input done: (#(#nones,)*) })
            }
            Item::Loop(l) => {
                let start = self.owned(&src, l.span);
                quote!(__Point::#variant { iteration: 0, value: #start })
            }
            Item::Step(_) | Item::If(_) | Item::Map(_) => {
                let from = self.marker_before(index);
                let pos = Pos::root().item(index);
                let code = self.item(
                    item,
                    &pos,
                    src,
                    from.as_ref(),
                    Scope {
                        rt: &quote!(__rt),
                        path: &[],
                    },
                );
                quote!(__Point::#variant(#code))
            }
        }
    }
}
