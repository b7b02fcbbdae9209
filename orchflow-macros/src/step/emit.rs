//! The step type: a zero-sized struct named like the function, with its `StepDef` and
//! `StepCall` impls. With errors, the fallback declares the same types (so flows using the step
//! do not report errors of their own) but no options and no body that could add more.

use super::check::{Ctx, Input, Ret, Signature};
use crate::options::Options;
use crate::spans::at;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ItemFn;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

/// Emits the step type of `func`; `fallback` when errors were reported.
pub(super) fn emit(func: &ItemFn, opts: &Options, sig: &Signature, fallback: bool) -> TokenStream {
    Emit {
        func,
        opts,
        sig,
        private: opts.private(),
        fallback,
    }
    .step()
}

struct Emit<'a> {
    func: &'a ItemFn,
    opts: &'a Options,
    sig: &'a Signature,
    /// The runtime's private module.
    private: TokenStream,
    fallback: bool,
}

/// The associated types of `StepDef`, and the context's state type.
/// Reads a value of type `ty` (written `written` in the source) back from `__json`, when it is
/// `Deserialize`. A type that holds a reference or a lifetime never is (it cannot be read from an
/// owned value), and the compiler would reject the autoref choice rather than fall back, so it
/// reads nothing.
fn restore(private: &TokenStream, ty: TokenStream, written: &TokenStream) -> TokenStream {
    if borrows(written.clone()) {
        quote!(::core::option::Option::None)
    } else {
        quote!(#private::from_json!(#ty, __json))
    }
}

/// Whether a type's tokens hold a reference (`&`) or a lifetime (`'a`).
fn borrows(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        proc_macro2::TokenTree::Punct(p) => p.as_char() == '&' || p.as_char() == '\'',
        proc_macro2::TokenTree::Group(g) => borrows(g.stream()),
        _ => false,
    })
}

struct Types {
    input: TokenStream,
    output: TokenStream,
    error: TokenStream,
    needs: TokenStream,
    state: TokenStream,
}

impl Emit<'_> {
    fn step(&self) -> TokenStream {
        let private = &self.private;
        let func = self.func;
        let ident = &func.sig.ident;
        let vis = &func.vis;
        let name = self
            .opts
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
        let Types {
            input,
            output,
            error,
            needs,
            state,
        } = self.types();
        let uses_context = self.uses_context();
        let policy = self.policy();
        let impl_fn = self.call(&state);
        let restore_input = restore(private, quote!(Self::Input), &input);
        let restore_output = restore(private, quote!(Self::Output), &output);
        // `file!` and `line!` spanned at the function's name: the definition's own place.
        let source = quote_spanned! {ident.span()=>
            #private::Source::at(::core::file!(), ::core::line!(), ::core::column!())
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
                type Input = #input;
                type Output = #output;
                type Error = #error;
                type Needs = #needs;

                fn name(&self) -> &'static str {
                    #name
                }

                const STATIC_NAME: ::core::option::Option<&'static str> = ::core::option::Option::Some(#name);
                const DEFINED_AT: &'static str = ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident));
                const SOURCE: #private::Source = #source;

                #uses_context

                #policy

                fn capture_input(&self, __value: &Self::Input) -> ::core::option::Option<#private::Value> {
                    #private::to_json!(__value)
                }

                fn capture_output(&self, __value: &Self::Output) -> ::core::option::Option<#private::Value> {
                    #private::to_json!(__value)
                }

                fn restore_input(&self, __json: #private::Value) -> ::core::option::Option<::core::result::Result<Self::Input, #private::JsonError>> {
                    #restore_input
                }

                fn restore_output(&self, _: &Self::Input, __json: #private::Value) -> ::core::option::Option<::core::result::Result<Self::Output, #private::JsonError>> {
                    #restore_output
                }
            }

            #(#cfgs)*
            #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
            impl #private::StepCall for #ident {
                #impl_fn
            }
        }
    }

    fn types(&self) -> Types {
        let private = &self.private;
        let input = match &self.sig.input {
            Input::Unit => quote!(()),
            Input::ByValue(t) | Input::ByRef(t) => quote!(#t),
        };
        let (error, output) = match &self.sig.ret {
            Ret::Alias(ty) => (
                quote!(<#ty as #private::Fallible>::Err),
                quote!(<#ty as #private::Fallible>::Ok),
            ),
            Ret::Result { ok, err } => (err.clone(), ok.clone()),
            Ret::Plain(ty) => (quote!(#private::Infallible), ty.clone()),
        };
        let (needs, state) = match &self.sig.ctx {
            Ctx::Typed(s) => (quote!(#private::NeedsState<#s>), quote!(#s)),
            Ctx::None | Ctx::Stateless => (quote!(#private::AnyState), quote!(())),
        };
        Types {
            input,
            output,
            error,
            needs,
            state,
        }
    }

    /// `fn uses_context` when the step takes no context (the trait's default says it does).
    fn uses_context(&self) -> TokenStream {
        match self.sig.ctx {
            Ctx::None => quote!(
                fn uses_context(&self) -> bool {
                    false
                }
            ),
            Ctx::Stateless | Ctx::Typed(_) => quote!(),
        }
    }

    /// `fn policy`, when the step sets one (and compiled without errors).
    fn policy(&self) -> TokenStream {
        let private = &self.private;
        let opts = self.opts;
        if self.fallback
            || (opts.retry.is_none() && opts.timeout.is_none() && opts.retry_if.is_none())
        {
            return quote!();
        }
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
        quote! {
            fn policy(&self) -> #private::StepPolicy<Self::Error> {
                #private::StepPolicy { retry: #retry, timeout: #timeout, retry_if: #retry_if }
            }
        }
    }

    /// `fn call`: a plain function returning an `async` block rather than an `async fn`, so
    /// the future holds the input and the context once (an `async fn` keeps a second copy of
    /// each).
    fn call(&self, state: &TokenStream) -> TokenStream {
        let private = &self.private;
        let call_span = at(self.func.sig.ident.span());
        let unused = self.unused();
        let body = self.body();
        quote_spanned! {call_span=>
            fn call<'__a>(
                &'__a self,
                __input: #private::Feed<'__a, Self::Input>,
                __ctx: &'__a #private::StepContext<#state>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Self::Output, Self::Error>,
            > + ::core::marker::Send + '__a {
                async move {
                    #unused
                    #body
                }
            }
        }
    }

    /// Lets go of what the body does not use.
    fn unused(&self) -> TokenStream {
        if self.fallback {
            return quote!(let _ = (__input, __ctx););
        }
        let input = match self.sig.input {
            Input::Unit => quote!(let _ = __input;),
            Input::ByValue(_) | Input::ByRef(_) => quote!(),
        };
        let ctx = match self.sig.ctx {
            Ctx::None => quote!(let _ = __ctx;),
            Ctx::Stateless | Ctx::Typed(_) => quote!(),
        };
        quote!(#input #ctx)
    }

    /// The body of `call`: the user's function called, its result turned into a `Result`.
    fn body(&self) -> TokenStream {
        let ident = &self.func.sig.ident;
        if self.fallback {
            return quote!(::core::unreachable!("this step did not compile"));
        }
        if !self.sig.is_async && self.opts.inline.is_none() {
            return self.blocking_body();
        }
        let args = self.args();
        let call = if self.sig.is_async {
            quote!(#ident(#(#args),*).await)
        } else {
            quote!(#ident(#(#args),*))
        };
        self.wrap(call)
    }

    /// The arguments of the user's function, in order, as the async worker passes them.
    fn args(&self) -> Vec<TokenStream> {
        let private = &self.private;
        let mut args = Vec::new();
        match &self.sig.input {
            Input::Unit => {}
            Input::ByValue(t) => {
                args.push(quote_spanned!(at(t.span())=> #private::by_value(__input)));
            }
            Input::ByRef(_) => args.push(quote!(__input.get())),
        }
        match self.sig.ctx {
            Ctx::None => {}
            Ctx::Stateless | Ctx::Typed(_) => args.push(quote!(__ctx)),
        }
        args
    }

    /// A sync step on the blocking pool: everything it touches moves into the closure.
    fn blocking_body(&self) -> TokenStream {
        let private = &self.private;
        let ident = &self.func.sig.ident;
        let mut moved_args = Vec::new();
        let take_input = match &self.sig.input {
            Input::Unit => quote!(),
            Input::ByValue(t) => {
                moved_args.push(quote!(__input));
                quote_spanned!(at(t.span())=> let __input = #private::by_value(__input);)
            }
            Input::ByRef(t) => {
                moved_args.push(quote!(&__input));
                quote_spanned!(at(t.span())=> let __input = #private::to_blocking_pool(__input);)
            }
        };
        let detach = match self.sig.ctx {
            Ctx::None => quote!(),
            Ctx::Stateless | Ctx::Typed(_) => {
                moved_args.push(quote!(&__ctx));
                quote!(let __ctx = ::core::clone::Clone::clone(__ctx);)
            }
        };
        let out = self.wrap(quote!(#private::blocking(move || #ident(#(#moved_args),*)).await));
        quote! {
            #take_input
            #detach
            #out
        }
    }

    /// Turns the user's return value into the `Result` the runtime expects.
    fn wrap(&self, call: TokenStream) -> TokenStream {
        let private = &self.private;
        match self.sig.ret {
            Ret::Alias(_) => quote!(#private::Fallible::into_result(#call)),
            Ret::Result { .. } => call,
            Ret::Plain(_) => quote!(::core::result::Result::Ok(#call)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::borrows;
    use quote::quote;

    #[test]
    fn a_type_with_a_reference_or_a_lifetime_borrows() {
        assert!(borrows(quote!(Vec<&str>)));
        assert!(borrows(quote!((String, Vec<&'static str>, u32))));
        assert!(borrows(quote!(Cow<'a, str>)));
        assert!(!borrows(quote!(Vec<String>)));
        assert!(!borrows(quote!((u32, Option<Box<[u8]>>))));
    }
}
