//! The rules of a step's signature and options. A signature that leaves nothing sensible to
//! generate (generics, `self`, …) is [`fatal`]; otherwise it is classified into a [`Signature`],
//! every problem reported, each at its own token.

use crate::options::{Errors, Options};
use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

/// How the step receives the previous output.
pub(super) enum Input {
    /// No parameter for it: the step takes `()`.
    Unit,
    ByValue(Box<Type>),
    ByRef(Box<Type>),
}

/// What the context parameter asks for.
pub(super) enum Ctx {
    None,
    /// `&StepContext` or `&StepContext<()>`: works in any flow.
    Stateless,
    /// `&StepContext<S>`.
    Typed(Box<Type>),
}

/// The return type, split.
pub(super) enum Ret {
    /// `-> T` (or nothing): cannot fail.
    Plain(TokenStream),
    /// `-> Result<T, E>`.
    Result { ok: TokenStream, err: TokenStream },
    /// `-> io::Result<T>` and other aliases: split by the `Fallible` trait.
    Alias(TokenStream),
}

/// What the signature says, classified.
pub(super) struct Signature {
    pub(super) input: Input,
    pub(super) ctx: Ctx,
    pub(super) ret: Ret,
    pub(super) is_async: bool,
}

/// Problems that leave nothing sensible to generate, all of them.
pub(super) fn fatal(sig: &syn::Signature) -> Option<syn::Error> {
    let mut fatal = Errors::default();
    if sig.generics.lt_token.is_some() {
        fatal.at(
            sig.generics.span(),
            "a step cannot be generic: `flow!` needs one concrete input and output type",
        );
    }
    if let Some(w) = &sig.generics.where_clause {
        fatal.push(syn::Error::new_spanned(
            w,
            "a step cannot have a `where` clause",
        ));
    }
    if let Some(r) = sig.receiver() {
        fatal.push(syn::Error::new_spanned(
            r,
            "a step is a free function; it cannot take `self`",
        ));
    }
    if let Some(v) = &sig.variadic {
        fatal.push(syn::Error::new_spanned(v, "a step cannot be variadic"));
    }
    if let Some(abi) = &sig.abi {
        fatal.push(syn::Error::new_spanned(
            abi,
            "a step cannot have an `extern` ABI",
        ));
    }
    if let syn::Safety::Unsafe(u) = &sig.safety {
        fatal.push(syn::Error::new_spanned(u, "a step cannot be `unsafe`"));
    }
    fatal.into_inner()
}

/// Classifies the signature and checks the options against it; problems go to `errors`.
pub(super) fn signature(func: &ItemFn, opts: &Options, errors: &mut Errors) -> Signature {
    let (input, ctx) = classify_params(func, errors);
    let ret = split_return(&func.sig.output, errors);
    let is_async = func.sig.asyncness.is_some();
    if let Some(span) = opts.inline
        && is_async
    {
        errors.at(
            span,
            "`inline` is for sync steps; an `async fn` already runs on the async worker",
        );
    }
    opts.check_retry_options(errors);
    if let (Some(r), Ret::Plain(_)) = (&opts.retry_if, &ret) {
        errors.push(syn::Error::new_spanned(
            r,
            "`retry_if` looks at the step's error, but this step cannot fail: return `Result<T, E>`",
        ));
    }
    Signature {
        input,
        ctx,
        ret,
        is_async,
    }
}

/// Looks through the invisible groups a `macro_rules!` `$t:ty` leaves, and parentheses.
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => peel(&g.elem),
        Type::Paren(p) => peel(&p.elem),
        other => other,
    }
}

fn is_step_context(ty: &Type) -> Option<&syn::PathSegment> {
    match peel(ty) {
        Type::Path(p) if p.qself.is_none() => {
            p.path.segments.last().filter(|s| s.ident == "StepContext")
        }
        _ => None,
    }
}

fn classify_params(func: &ItemFn, errors: &mut Errors) -> (Input, Ctx) {
    let params: Vec<&syn::PatType> = func
        .sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let ctx_of = |t: &Type| -> Option<Ctx> {
        let Type::Reference(r) = peel(t) else {
            return None;
        };
        let seg = is_step_context(&r.elem)?;
        let state = match &seg.arguments {
            PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
                GenericArgument::Type(t) => Some(t.clone()),
                _ => None,
            }),
            _ => None,
        };
        Some(match state {
            None => Ctx::Stateless,
            Some(Type::Tuple(t)) if t.elems.is_empty() => Ctx::Stateless,
            Some(t) => Ctx::Typed(Box::new(t)),
        })
    };
    for extra in params.iter().skip(2) {
        errors.push(syn::Error::new_spanned(
            extra,
            "a step takes at most two parameters: the previous step's output and `&StepContext<S>`",
        ));
    }
    let mut input = Input::Unit;
    let mut ctx = Ctx::None;
    // The context came first: the parameter after it is the input, in the wrong place, which
    // the error about the context already says.
    let mut ctx_first = false;
    for (i, p) in params.iter().take(2).enumerate() {
        let ty = &*p.ty;
        if let Some(c) = ctx_of(ty) {
            if let Type::Reference(syn::TypeReference {
                mutability: Some(m),
                ..
            }) = peel(ty)
            {
                errors.push(syn::Error::new_spanned(
                    m,
                    "take the context by shared reference, `&StepContext<S>`: parallel steps see it at once",
                ));
            }
            if i + 1 != params.len().min(2) {
                errors.push(syn::Error::new_spanned(
                    ty,
                    "`&StepContext` must be the last parameter: the previous step's output comes first",
                ));
                ctx_first = true;
            }
            ctx = c;
            continue;
        }
        if is_step_context(ty).is_some() {
            errors.push(syn::Error::new_spanned(
                ty,
                "take the context by reference: `&StepContext<S>`",
            ));
            continue;
        }
        if i == 0 || ctx_first {
            input = classify_input(ty, errors);
        } else {
            errors.push(syn::Error::new_spanned(
                ty,
                "the second parameter of a step must be `&StepContext<S>`; a step takes one input, \
                 the previous step's output (use a tuple or a struct to pass several values)",
            ));
        }
    }
    (input, ctx)
}

fn classify_input(ty: &Type, errors: &mut Errors) -> Input {
    let ty = peel(ty);
    match ty {
        Type::Reference(r) => {
            if let Some(m) = &r.mutability {
                errors.push(syn::Error::new_spanned(
                    m,
                    "a step cannot take `&mut`: the value may be shared with other branches; take it by value instead",
                ));
            }
            match peel(&r.elem) {
                Type::Path(p) if p.path.is_ident("str") => {
                    errors.push(syn::Error::new_spanned(
                        ty,
                        "a step cannot borrow `str`: take `&String` or `String`",
                    ));
                    Input::ByRef(Box::new(
                        syn::parse_quote_spanned!(ty.span()=> ::std::string::String),
                    ))
                }
                Type::Slice(s) => {
                    errors.push(syn::Error::new_spanned(
                        ty,
                        "a step cannot borrow a slice: take `&Vec<T>` or `Vec<T>`",
                    ));
                    let elem = &s.elem;
                    Input::ByRef(Box::new(
                        syn::parse_quote_spanned!(ty.span()=> ::std::vec::Vec<#elem>),
                    ))
                }
                inner => {
                    check_nameable(inner, errors);
                    Input::ByRef(Box::new(inner.clone()))
                }
            }
        }
        other => {
            check_nameable(other, errors);
            Input::ByValue(Box::new(other.clone()))
        }
    }
}

fn check_nameable(ty: &Type, errors: &mut Errors) {
    match ty {
        Type::ImplTrait(_) => errors.push(syn::Error::new_spanned(
            ty,
            "a step's types must be nameable: `impl Trait` cannot cross a hand-off",
        )),
        Type::Infer(_) => errors.push(syn::Error::new_spanned(
            ty,
            "a step's types must be written out",
        )),
        _ => {}
    }
}

fn split_return(ret: &ReturnType, errors: &mut Errors) -> Ret {
    let ty = match ret {
        ReturnType::Default => return Ret::Plain(quote!(())),
        ReturnType::Type(_, ty) => ty,
    };
    let ty = peel(ty);
    check_nameable(ty, errors);
    if let Type::Path(p) = ty
        && let Some(last) = p.path.segments.last().filter(|s| s.ident == "Result")
    {
        if let PathArguments::AngleBracketed(args) = &last.arguments {
            let tys: Vec<&Type> = args
                .args
                .iter()
                .filter_map(|a| match a {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                })
                .collect();
            if let [ok, err] = tys.as_slice() {
                check_nameable(ok, errors);
                return Ret::Result {
                    ok: quote!(#ok),
                    err: quote!(#err),
                };
            }
        }
        // An alias such as `io::Result<T>` or `anyhow::Result<T>`: ask the type system.
        return Ret::Alias(quote!(#ty));
    }
    Ret::Plain(quote!(#ty))
}
