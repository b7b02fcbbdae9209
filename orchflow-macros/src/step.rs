//! `#[step]`: parse the function, check its signature and options, emit a zero-sized step type.

use crate::options::{Errors, Options, Site};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// A span at the user's token that resolves names like the macro's own code (`call_site`), so
/// generated locals stay visible even when the user's tokens come from a `macro_rules!`.
fn at(span: Span) -> Span {
    Span::call_site().located_at(span)
}
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

/// How the step receives the previous output.
enum Input {
    /// No parameter for it: the step takes `()`.
    Unit,
    ByValue(Box<Type>),
    ByRef(Box<Type>),
}

/// What the context parameter asks for.
enum Ctx {
    None,
    /// `&StepContext` or `&StepContext<()>`: works in any flow.
    Stateless,
    /// `&StepContext<S>`.
    Typed(Box<Type>),
}

/// The return type, split.
enum Ret {
    /// `-> T` (or nothing): cannot fail.
    Plain(TokenStream),
    /// `-> Result<T, E>`.
    Result { ok: TokenStream, err: TokenStream },
    /// `-> io::Result<T>` and other aliases: split by the `Fallible` trait.
    Alias(TokenStream),
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let opts = Options::parse(attr, Site::Step, &mut errors);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            errors.at(
                item_keyword_span(&item),
                "`#[step]` goes on a function: `#[step] async fn name(input: T) -> U { … }`",
            );
            let mut out = errors.to_compile_errors();
            out.extend(item);
            return Ok(out);
        }
    };
    let private = opts.private();
    let sig = &func.sig;

    // Problems that leave nothing sensible to generate: keep the function as written.
    let mut fatal = Errors::default();
    if sig.generics.lt_token.is_some() {
        let span = sig.generics.span();
        fatal.at(
            span,
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
    if !fatal.is_empty() {
        errors.push_all(fatal);
        let mut out = errors.to_compile_errors();
        out.extend(quote!(#func));
        return Ok(out);
    }

    let (input, ctx) = classify_params(&func, &mut errors);
    let ret = split_return(&sig.output, &mut errors);
    let is_async = sig.asyncness.is_some();

    if let Some(span) = opts.inline
        && is_async
    {
        errors.at(
            span,
            "`inline` is for sync steps; an `async fn` already runs on the async worker",
        );
    }
    opts.check_retry_options(&mut errors);
    if let Some(r) = &opts.retry_if
        && matches!(ret, Ret::Plain(_))
    {
        errors.push(syn::Error::new_spanned(
                r,
                "`retry_if` looks at the step's error, but this step cannot fail: return `Result<T, E>`",
            ));
    }

    // With errors, the step is still emitted with the types it declares (so flows using it do
    // not report errors of their own) but without options or a body that could add more.
    let fallback = !errors.is_empty();
    let shape = Shape {
        input,
        ctx,
        ret,
        is_async,
    };
    let out = emit(&func, &opts, &private, &shape, fallback);
    let mut tokens = errors.to_compile_errors();
    tokens.extend(out);
    Ok(tokens)
}

impl Errors {
    fn push_all(&mut self, other: Errors) {
        if let Some(e) = other.into_inner() {
            self.push(e);
        }
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

/// What the signature says, classified.
struct Shape {
    input: Input,
    ctx: Ctx,
    ret: Ret,
    is_async: bool,
}

fn emit(
    func: &ItemFn,
    opts: &Options,
    private: &TokenStream,
    shape: &Shape,
    fallback: bool,
) -> TokenStream {
    let Shape {
        input,
        ctx,
        ret,
        is_async,
    } = shape;
    let is_async = *is_async;
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let name = opts
        .name
        .as_ref()
        .map(|n| n.value())
        .unwrap_or_else(|| ident.unraw().to_string());
    let docs: Vec<_> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .collect();
    // A step that is compiled out is compiled out entirely.
    let cfgs: Vec<_> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .collect();
    let input_ty = match input {
        Input::Unit => quote!(()),
        Input::ByValue(t) | Input::ByRef(t) => quote!(#t),
    };
    let (error_ty, output_ty) = match ret {
        Ret::Alias(ty) => (
            quote!(<#ty as #private::Fallible>::Err),
            quote!(<#ty as #private::Fallible>::Ok),
        ),
        Ret::Result { ok, err } => (err.clone(), ok.clone()),
        Ret::Plain(ty) => (quote!(#private::Infallible), ty.clone()),
    };
    // Turns the user's return value into the `Result` the runtime expects.
    let wrap = |call: TokenStream| match ret {
        Ret::Alias(_) => quote!(#private::Fallible::into_result(#call)),
        Ret::Result { .. } => call,
        Ret::Plain(_) => quote!(::core::result::Result::Ok(#call)),
    };
    let (needs, state_ty) = match ctx {
        Ctx::Typed(s) => (quote!(#private::NeedsState<#s>), quote!(#s)),
        Ctx::None | Ctx::Stateless => (quote!(#private::AnyState), quote!(())),
    };

    // The arguments of the user's function, in order.
    let mut args = Vec::new();
    let input_arg = match input {
        Input::Unit => None,
        Input::ByValue(t) => Some(quote_spanned!(at(t.span())=> #private::by_value(__input))),
        Input::ByRef(_) => Some(quote!(__input.get())),
    };
    if let Some(a) = &input_arg {
        args.push(a.clone());
    }
    match ctx {
        Ctx::None => {}
        Ctx::Stateless | Ctx::Typed(_) => args.push(quote!(__ctx)),
    }
    let call_span = at(ident.span());

    let body = if fallback {
        quote!(::core::unreachable!("this step did not compile"))
    } else if is_async {
        wrap(quote!(#ident(#(#args),*).await))
    } else if opts.inline.is_some() {
        wrap(quote!(#ident(#(#args),*)))
    } else {
        // Sync step on the blocking pool: everything it touches moves into the closure.
        let take_input = match input {
            Input::Unit => quote!(),
            Input::ByValue(t) => {
                quote_spanned!(at(t.span())=> let __input = #private::by_value(__input);)
            }
            Input::ByRef(t) => {
                quote_spanned!(at(t.span())=> let __input = #private::to_blocking_pool(__input);)
            }
        };
        let mut moved_args = Vec::new();
        match input {
            Input::Unit => {}
            Input::ByValue(_) => moved_args.push(quote!(__input)),
            Input::ByRef(_) => moved_args.push(quote!(&__input)),
        }
        let detach = match ctx {
            Ctx::None => quote!(),
            Ctx::Stateless | Ctx::Typed(_) => {
                quote!(let __ctx = ::core::clone::Clone::clone(__ctx);)
            }
        };
        if !matches!(ctx, Ctx::None) {
            moved_args.push(quote!(&__ctx));
        }
        let out = wrap(quote!(#private::blocking(move || #ident(#(#moved_args),*)).await));
        quote! {
            #take_input
            #detach
            #out
        }
    };

    let policy = {
        let retry = match opts.retry_tokens(private) {
            Some(t) => quote!(::core::option::Option::Some(#t)),
            None => quote!(::core::option::Option::None),
        };
        let timeout = match opts.timeout {
            Some(t) => quote!(::core::option::Option::Some(#private::Duration::#t)),
            None => quote!(::core::option::Option::None),
        };
        let retry_if = match &opts.retry_if {
            Some(p) => quote_spanned!(at(p.span())=> ::core::option::Option::Some(#p)),
            None => quote!(::core::option::Option::None),
        };
        if fallback || (opts.retry.is_none() && opts.timeout.is_none() && opts.retry_if.is_none()) {
            quote!()
        } else {
            quote! {
                fn policy(&self) -> #private::StepPolicy<Self::Error> {
                    #private::StepPolicy { retry: #retry, timeout: #timeout, retry_if: #retry_if }
                }
            }
        }
    };
    let uses_context = match ctx {
        Ctx::None => quote!(
            fn uses_context(&self) -> bool {
                false
            }
        ),
        _ => quote!(),
    };
    let unused_input = match input {
        _ if fallback => quote!(let _ = (__input, __ctx);),
        Input::Unit => quote!(let _ = __input;),
        _ => quote!(),
    };
    let unused_ctx = match ctx {
        _ if fallback => quote!(),
        Ctx::None => quote!(let _ = __ctx;),
        _ => quote!(),
    };
    // A plain function returning an `async` block rather than an `async fn`: the future then
    // holds the input and the context once (an `async fn` keeps a second copy of each).
    let impl_fn = quote_spanned! {call_span=>
        fn call<'__a>(
            &'__a self,
            __input: #private::Feed<'__a, Self::Input>,
            __ctx: &'__a #private::StepContext<#state_ty>,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<Self::Output, Self::Error>,
        > + ::core::marker::Send + '__a {
            async move {
                #unused_input
                #unused_ctx
                #body
            }
        }
    };

    quote! {
        #func

        #(#docs)*
        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, Default)]
        #vis struct #ident {}

        #(#cfgs)*
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl #private::StepDef for #ident {
            type Input = #input_ty;
            type Output = #output_ty;
            type Error = #error_ty;
            type Needs = #needs;

            fn name(&self) -> &'static str {
                #name
            }

            const STATIC_NAME: ::core::option::Option<&'static str> = ::core::option::Option::Some(#name);
            const DEFINED_AT: &'static str = ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident));

            #uses_context

            #policy

            fn capture_input(&self, __value: &Self::Input) -> ::core::option::Option<#private::Value> {
                #private::to_json!(__value)
            }

            fn capture_output(&self, __value: &Self::Output) -> ::core::option::Option<#private::Value> {
                #private::to_json!(__value)
            }
        }

        #(#cfgs)*
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl #private::StepCall for #ident {
            #impl_fn
        }
    }
}

/// The span of the keyword that says what an item is (`struct`, `impl`, …), for errors about
/// an attribute placed on the wrong kind of item.
fn item_keyword_span(item: &TokenStream) -> Span {
    const KEYWORDS: &[&str] = &[
        "struct", "enum", "union", "impl", "trait", "mod", "const", "static", "type", "use", "fn",
        "let",
    ];
    item.clone()
        .into_iter()
        .find_map(|tt| match tt {
            proc_macro2::TokenTree::Ident(i) if KEYWORDS.contains(&i.to_string().as_str()) => {
                Some(i.span())
            }
            _ => None,
        })
        .unwrap_or_else(Span::call_site)
}
