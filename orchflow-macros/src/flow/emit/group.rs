//! Parallel groups: the branches run concurrently on one shared input, and the group's output
//! is the tuple of theirs. One lowering serves both places a group can be: a top-level group
//! also saves each branch as it finishes and, resumed, runs only the branches not yet done;
//! a nested one is replayed from the inner positions of its branches.

use super::{Emit, Scope, Src};
use crate::flow::plan::Pos;
use crate::flow::tree::Group;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The point a top-level group saves its finished branches at: `InGroup2`, whose `done` tuple
/// the arm has bound to `__done0`, `__done1`, ….
pub(super) struct Saved<'a> {
    pub(super) point: &'a str,
}

impl Emit<'_> {
    /// A group at `pos` over the input `src`: a block whose value is the tuple of the branches'
    /// outputs.
    pub(super) fn group(
        &self,
        group: &Group,
        pos: &Pos,
        src: &Src,
        from: Option<&TokenStream>,
        scope: Scope<'_>,
        saved: Option<Saved<'_>>,
    ) -> TokenStream {
        let p = &self.private;
        let feed = self.feed(src);
        let flow_input = quote!(#p::of(&#p::flow_input));
        let g = quote!(__g);
        let in_group = Scope {
            rt: &g,
            path: scope.path,
        };
        let futures = group.branches.iter().enumerate().map(|(b, branch)| {
            // The first branch of a flow's first item fixes the flow's input type.
            let from = match (from, b) {
                (Some(f), _) => Some(f.clone()),
                (None, 0) => None,
                (None, _) => Some(flow_input.clone()),
            };
            let in_branch = Src::Feed(quote!(__in.reborrow()));
            let code = self.pipeline(branch, &pos.branch(b), in_branch, from.as_ref(), in_group);
            let code = match &saved {
                Some(saved) => self.resumed_branch(saved, b, code),
                None => code,
            };
            quote!(async {
                let __v = #code;
                ::core::result::Result::Ok::<_, #p::Halt>(__v)
            })
        });
        let names: Vec<_> = (0..group.branches.len())
            .map(|i| format_ident!("__branch{}", i))
            .collect();
        let indices = (0..group.branches.len()).map(|i| i as u32);
        let rt = scope.rt;
        quote! {{
            let __in = #feed;
            let __g = &#p::group(#rt);
            #(let #names = #futures;)*
            #p::Branches::all(#p::try_join!(#(#p::branch(#indices, #names)),*)?)?
        }}
    }

    /// Branch `b` of a top-level group: its saved output if it had finished, else run and
    /// saved.
    fn resumed_branch(&self, saved: &Saved<'_>, b: usize, code: TokenStream) -> TokenStream {
        let p = &self.private;
        let point = saved.point;
        let done = done(b);
        quote! {
            match #done {
                ::core::option::Option::Some(__v) => __v,
                ::core::option::Option::None => {
                    let __v = #code;
                    #p::branch_reached(__g, #point, #b, || #p::to_json!(&__v)).await?;
                    __v
                }
            }
        }
    }
}

/// The binding of branch `b`'s saved output in a top-level group's arm.
pub(super) fn done(b: usize) -> proc_macro2::Ident {
    format_ident!("__done{}", b)
}
