//! The `__Point` enum: one variant per point of the [`Plan`], each over its own type parameter
//! (the compiler infers them from the driver), and its checkpoint form, `{"Name": value}` or
//! `{"Name": {fields}}`. Each type parameter has a marker type whose name says where the value
//! is in the flow (`the_value_after_plan`): the serde check of a durable flow names it.

use super::Emit;
use crate::flow::plan::{Plan, TopKind, in_group_name};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The generated enum and what the driver needs to know of it.
pub(super) struct Points {
    /// The enum, its markers and impls.
    pub(super) items: TokenStream,
    /// The type parameters, in order.
    pub(super) generics: Vec<Ident>,
}

/// One variant.
struct Variant {
    name: String,
    form: Form,
}

enum Form {
    /// `Name(T)`.
    Tuple(TokenStream),
    /// `Name { field: T, … }`.
    Fields(Vec<(&'static str, TokenStream)>),
}

/// The variants of the plan, with the type parameters and markers they introduce.
fn variants(plan: &Plan) -> (Vec<Variant>, Vec<Ident>, Vec<Ident>) {
    let (mut variants, mut generics, mut markers) = (Vec::new(), Vec::new(), Vec::new());
    for (i, point) in plan.top.iter().enumerate() {
        let g = format_ident!("T{}", i + 1);
        let form = match &point.kind {
            TopKind::Group { branches } => {
                let bs: Vec<_> = (0..*branches)
                    .map(|b| format_ident!("T{}_{}", i + 1, b + 1))
                    .collect();
                let mut fields = Vec::new();
                if i > 0 {
                    let prev = format_ident!("T{}", i);
                    fields.push(("input", quote!(#prev)));
                }
                fields.push(("done", quote!((#(::core::option::Option<#bs>,)*))));
                variants.push(Variant {
                    name: in_group_name(i),
                    form: Form::Fields(fields),
                });
                markers
                    .extend((0..bs.len()).map(|b| {
                        format_ident!("the_output_of_branch_{}_of_item_{}", b + 1, i + 1)
                    }));
                generics.extend(bs);
                Form::Tuple(quote!(#g))
            }
            TopKind::Value => Form::Tuple(quote!(#g)),
            TopKind::Loop => iteration(&g),
        };
        variants.push(Variant {
            name: point.name.clone(),
            form,
        });
        markers.push(marker_for(&point.name));
        generics.push(g);
    }
    for (k, inner) in plan.inner.iter().enumerate() {
        let g = format_ident!("M{}", k + 1);
        let form = if inner.is_loop {
            iteration(&g)
        } else {
            Form::Tuple(quote!(#g))
        };
        variants.push(Variant {
            name: inner.name.clone(),
            form,
        });
        markers.push(marker_for(&inner.name));
        generics.push(g);
    }
    (variants, generics, markers)
}

fn iteration(g: &Ident) -> Form {
    Form::Fields(vec![("iteration", quote!(u32)), ("value", quote!(#g))])
}

impl Variant {
    fn ident(&self) -> Ident {
        format_ident!("{}", self.name)
    }

    fn declaration(&self) -> TokenStream {
        let v = self.ident();
        match &self.form {
            Form::Tuple(ty) => quote!(#v(#ty)),
            Form::Fields(fields) => {
                let (names, tys) = field_parts(fields);
                quote!(#v { #(#names: #tys),* })
            }
        }
    }

    /// Its arm of `__name`.
    fn name_arm(&self, p: &TokenStream) -> TokenStream {
        let (v, lit) = (self.ident(), &self.name);
        match &self.form {
            Form::Tuple(_) => quote!(__Point::#v(..) => #p::Some(#lit)),
            Form::Fields(_) => quote!(__Point::#v { .. } => #p::Some(#lit)),
        }
    }

    /// Its arms of `to_json` and `from_json`.
    fn json_arms(&self, p: &TokenStream) -> (TokenStream, TokenStream) {
        let (v, lit) = (self.ident(), &self.name);
        match &self.form {
            Form::Tuple(_) => (
                quote!(__Point::#v(__x) => #p::variant(#lit, #p::to_value(__x)?),),
                quote!(#lit => __Point::#v(#p::from_value(__c)?),),
            ),
            Form::Fields(fields) => {
                let (idents, _) = field_parts(fields);
                let names = fields.iter().map(|(f, _)| *f);
                let names2 = names.clone();
                (
                    quote! {
                        __Point::#v { #(#idents),* } => #p::variant(
                            #lit,
                            #p::fields([#((#names, #p::to_value(#idents)?)),*]),
                        ),
                    },
                    quote!(#lit => __Point::#v { #(#idents: #p::field(&mut __c, #names2)?),* },),
                )
            }
        }
    }
}

fn field_parts<'a>(
    fields: &'a [(&'static str, TokenStream)],
) -> (Vec<Ident>, Vec<&'a TokenStream>) {
    fields
        .iter()
        .map(|(f, ty)| (format_ident!("{}", f), ty))
        .unzip()
}

impl Emit<'_> {
    /// The `__Point` enum of the plan, its markers, and its `Checkpointable` and `__name` impls.
    pub(super) fn points(&self) -> Points {
        let p = &self.private;
        let (variants, generics, markers) = variants(self.plan);
        // The flow's output is the value after its last item.
        let output = format_ident!("T{}", self.plan.top.len());
        let decls = variants.iter().map(Variant::declaration);
        let names = variants.iter().map(|v| v.name_arm(p));
        let (to_json, from_json): (Vec<_>, Vec<_>) =
            variants.iter().map(|v| v.json_arms(p)).unzip();
        let items = quote! {
            /// The resumable points of this flow: the value after each top-level item, each
            /// loop iteration, the finished branches of each top-level group, and the values
            /// inside top-level items (`Inner…`).
            #[allow(non_camel_case_types, dead_code)]
            enum __Point<#(#generics),*> {
                #(#decls),*
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
        };
        Points { items, generics }
    }
}

/// The marker type naming where a point's value is, for the serde check of a durable flow:
/// `AfterPlan` → `the_value_after_plan`, `Loop2` → `the_value_of_loop_2`, `AfterGroup3` →
/// `the_value_after_group_3`, `Inner1AfterAct` → `the_value_after_act_inside_item_1`.
fn marker_for(point: &str) -> Ident {
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
mod tests {
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
