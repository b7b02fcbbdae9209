//! Options shared by `#[step(...)]` and `#[flow(...)]`: parsed leniently as `key = value` pairs,
//! then validated one by one so that every bad option is reported, each at its own token.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, Lit, LitStr, Path, Token};

/// Collects errors so that all of them are reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }

    pub(crate) fn to_compile_errors(&self) -> TokenStream {
        self.0
            .as_ref()
            .map(syn::Error::to_compile_error)
            .unwrap_or_default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn into_inner(self) -> Option<syn::Error> {
        self.0
    }
}

/// Where the options are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Site {
    Step,
    Flow,
}

/// A duration given as a string such as `"250ms"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Nanos(pub(crate) u64);

impl ToTokens for Nanos {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let n = self.0;
        let t = if n.is_multiple_of(1_000_000_000) {
            let v = n / 1_000_000_000;
            quote!(from_secs(#v))
        } else if n.is_multiple_of(1_000_000) {
            let v = n / 1_000_000;
            quote!(from_millis(#v))
        } else if n.is_multiple_of(1_000) {
            let v = n / 1_000;
            quote!(from_micros(#v))
        } else {
            quote!(from_nanos(#n))
        };
        tokens.extend(t);
    }
}

/// Validated options. Fields that failed validation are left unset (and an error recorded).
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<LitStr>,
    pub(crate) retry: Option<u32>,
    pub(crate) delay: Option<Nanos>,
    pub(crate) backoff: Option<f64>,
    pub(crate) max_delay: Option<Nanos>,
    pub(crate) jitter: Option<f64>,
    pub(crate) timeout: Option<Nanos>,
    pub(crate) retry_if: Option<Expr>,
    pub(crate) inline: Option<Span>,
    pub(crate) krate: Option<Path>,
    /// Where each given option's key is, to point at it later.
    spans: Vec<(String, Span)>,
    /// An option that was reported already may have been meant as `retry` (`retry = "3"`,
    /// `retries = 3`): the options that need `retry` are then not reported as orphans too.
    retry_unsure: bool,
}

const STEP_KEYS: &str =
    "name, retry, delay, backoff, max_delay, jitter, timeout, retry_if, inline, crate";
const FLOW_KEYS: &str = "name, retry, delay, backoff, max_delay, jitter, timeout, crate";

struct Raw {
    key: Ident,
    value: Option<Expr>,
}

fn parse_raw(input: ParseStream) -> syn::Result<Vec<Raw>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let key = Ident::parse_any(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse::<Expr>()?)
        } else {
            None
        };
        out.push(Raw { key, value });
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(out)
}

impl Options {
    /// Parses and validates; every problem is pushed to `errors`.
    pub(crate) fn parse(tokens: TokenStream, site: Site, errors: &mut Errors) -> Options {
        let mut opts = Options::default();
        let raw = match parse_raw.parse2(tokens) {
            Ok(raw) => raw,
            Err(e) => {
                errors.push(e);
                return opts;
            }
        };
        let mut seen: Vec<String> = Vec::new();
        for Raw { key, value } in raw {
            let k = key.unraw().to_string();
            if seen.contains(&k) {
                errors.at(key.span(), format_args!("option `{k}` is given twice"));
                continue;
            }
            seen.push(k.clone());
            opts.spans.push((k.clone(), key.span()));
            let span = key.span();
            let need = |errors: &mut Errors, what: &str| {
                errors.at(
                    span,
                    format_args!("option `{k}` needs a value: `{k} = {what}`"),
                );
            };
            match (k.as_str(), value) {
                ("inline", None) if site == Site::Step => opts.inline = Some(span),
                ("inline", Some(v)) if site == Site::Step => {
                    errors.push(syn::Error::new_spanned(v, "`inline` takes no value"));
                }
                ("name", Some(v)) => match lit_str(&v) {
                    Some(s) if is_valid_name(&s.value()) => opts.name = Some(s),
                    Some(s) => errors.at(
                        s.span(),
                        "a name must be non-empty and made of letters, digits, `_`, `-`, `.` or `:`",
                    ),
                    None => errors.push(syn::Error::new_spanned(v, "expected a string: `name = \"…\"`")),
                },
                ("retry", Some(v)) => match int(&v) {
                    Some(n) => opts.retry = Some(n),
                    None => {
                        opts.retry_unsure = true;
                        errors.push(syn::Error::new_spanned(
                            v,
                            "expected the number of retries after the first attempt: `retry = 2`",
                        ));
                    }
                },
                ("delay", Some(v)) => opts.delay = duration(&v, errors),
                ("max_delay", Some(v)) => opts.max_delay = duration(&v, errors),
                ("timeout", Some(v)) => match duration(&v, errors) {
                    Some(Nanos(0)) => errors.push(syn::Error::new_spanned(v, "a timeout must be longer than zero")),
                    t => opts.timeout = t,
                },
                ("backoff", Some(v)) => match float(&v) {
                    Some(f) if f >= 1.0 && f.is_finite() => opts.backoff = Some(f),
                    _ => errors.push(syn::Error::new_spanned(
                        v,
                        "expected a backoff factor of at least 1: `backoff = 2.0` doubles each delay",
                    )),
                },
                ("jitter", Some(v)) => match float(&v) {
                    Some(f) if (0.0..=1.0).contains(&f) => opts.jitter = Some(f),
                    _ => errors.push(syn::Error::new_spanned(
                        v,
                        "expected a fraction between 0 and 1: `jitter = 0.2` shortens each delay by up to 20%",
                    )),
                },
                ("retry_if", Some(v)) if site == Site::Step => opts.retry_if = Some(v),
                ("crate", Some(v)) => match v {
                    Expr::Path(p) if p.qself.is_none() => opts.krate = Some(p.path),
                    Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => match s.parse::<Path>() {
                        Ok(p) => opts.krate = Some(p),
                        Err(_) => errors.at(s.span(), "expected a path to the orchflow crate"),
                    },
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        "expected a path to the orchflow crate: `crate = orchflow_core`",
                    )),
                },
                ("retry", None) => {
                    opts.retry_unsure = true;
                    need(errors, "N")
                }
                ("name" | "delay" | "max_delay" | "timeout" | "backoff" | "jitter" | "crate", None) => {
                    need(errors, "…")
                }
                ("retry_if", None) if site == Site::Step => need(errors, "path::to::predicate"),
                ("retry_if" | "inline", _) if site == Site::Flow => errors.at(
                    span,
                    format_args!("`{k}` is a step option; set it on the `#[step]` instead"),
                ),
                _ => {
                    let guess = suggestion(&k);
                    opts.retry_unsure |= guess == Some("retry");
                    let hint = match guess {
                        Some(s) => format!(" (did you mean `{s}`?)"),
                        None => String::new(),
                    };
                    errors.at(
                        span,
                        format_args!(
                            "unknown option `{k}`{hint}; expected one of: {}",
                            if site == Site::Step { STEP_KEYS } else { FLOW_KEYS }
                        ),
                    )
                }
            }
        }
        opts
    }

    /// The path of the runtime's private module, `::orchflow::__private_0_1_0` or `<crate>::__private_0_1_0`
    /// under `crate = …`. Every path the expansions emit into it starts here.
    pub(crate) fn private(&self) -> TokenStream {
        match &self.krate {
            Some(p) => quote!(#p::__private_0_1_0),
            None => quote!(::orchflow::__private_0_1_0),
        }
    }

    /// The `RetryPolicy` expression, when `retry` is set.
    pub(crate) fn retry_tokens(&self, private: &TokenStream) -> Option<TokenStream> {
        let n = self.retry?;
        let mut t = quote!(#private::RetryPolicy::retries(#n));
        if let Some(d) = self.delay {
            t.extend(quote!(.with_delay(#private::Duration::#d)));
        }
        if let Some(b) = self.backoff {
            t.extend(quote!(.with_backoff(#b)));
        }
        if let Some(m) = self.max_delay {
            t.extend(quote!(.with_max_delay(#private::Duration::#m)));
        }
        if let Some(j) = self.jitter {
            t.extend(quote!(.with_jitter(#j)));
        }
        Some(t)
    }

    /// Where option `key` was written (the call site if it was not).
    pub(crate) fn span_of(&self, key: &str) -> Span {
        self.spans
            .iter()
            .find(|(k, _)| k == key)
            .map_or_else(Span::call_site, |(_, s)| *s)
    }

    /// Reports retry options that contradict each other: a delay, backoff, cap or jitter
    /// without `retry`, and a cap shorter than the first delay.
    pub(crate) fn check_retry_options(&self, errors: &mut Errors) {
        for orphan in self.orphans() {
            errors.at(
                self.span_of(orphan),
                format_args!("`{orphan}` has no effect without `retry = N`"),
            );
        }
        if let (Some(d), Some(m)) = (self.delay, self.max_delay)
            && m.0 < d.0
        {
            errors.at(
                self.span_of("max_delay"),
                "`max_delay` is shorter than `delay`",
            );
        }
    }

    /// The options that only make sense with `retry`, if set without it.
    fn orphans(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.retry.is_none() && !self.retry_unsure {
            if self.delay.is_some() {
                v.push("delay");
            }
            if self.backoff.is_some() {
                v.push("backoff");
            }
            if self.max_delay.is_some() {
                v.push("max_delay");
            }
            if self.jitter.is_some() {
                v.push("jitter");
            }
        }
        v
    }
}

/// The option a misspelt key probably meant.
fn suggestion(key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    if k.starts_with("retr") && k != "retry_if" || k.contains("attempt") {
        Some("retry")
    } else if k.contains("timeout") {
        Some("timeout")
    } else if k.contains("max_delay") || k.contains("maxdelay") {
        Some("max_delay")
    } else if k.starts_with("delay") || k.contains("wait") {
        Some("delay")
    } else {
        None
    }
}

fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn lit_str(e: &Expr) -> Option<LitStr> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        _ => None,
    }
}

fn int(e: &Expr) -> Option<u32> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<u32>().ok(),
        _ => None,
    }
}

fn float(e: &Expr) -> Option<f64> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<f64>().ok(),
        _ => None,
    }
}

fn duration(e: &Expr, errors: &mut Errors) -> Option<Nanos> {
    const HINT: &str =
        "expected a duration such as \"250ms\", \"2s\" or \"1m\" (units: ns, us, ms, s, m, h)";
    match lit_str(e) {
        Some(s) => match parse_duration(&s.value()) {
            Some(n) => Some(Nanos(n)),
            None => {
                errors.at(s.span(), HINT);
                None
            }
        },
        None => {
            errors.push(syn::Error::new_spanned(e, HINT));
            None
        }
    }
}

/// Parses `"250ms"`, `"1.5s"`, `"2m"` into nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let scale: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    let nanos = (v * scale).round();
    if nanos.is_finite() && nanos >= 0.0 && nanos <= u64::MAX as f64 {
        Some(nanos as u64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("2m"), Some(120_000_000_000));
        assert_eq!(parse_duration("10us"), Some(10_000));
        assert_eq!(parse_duration("0s"), Some(0));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration("1.s"), None);
        assert_eq!(parse_duration("99999999999999999h"), None);
    }

    #[test]
    fn nanos_print_in_the_largest_exact_unit() {
        assert_eq!(
            Nanos(2_000_000_000).to_token_stream().to_string(),
            "from_secs (2u64)"
        );
        assert_eq!(
            Nanos(250_000_000).to_token_stream().to_string(),
            "from_millis (250u64)"
        );
        assert_eq!(
            Nanos(1_500).to_token_stream().to_string(),
            "from_nanos (1500u64)"
        );
    }

    #[test]
    fn every_bad_option_is_reported() {
        let mut errors = Errors::default();
        let o = Options::parse(
            quote!(retry = "two", delay = 5, jitter = 3.0, bogus, retry = 1),
            Site::Step,
            &mut errors,
        );
        let all: Vec<String> = errors
            .0
            .into_iter()
            .flat_map(|e| e.into_iter().map(|e| e.to_string()))
            .collect();
        assert_eq!(all.len(), 5, "{all:#?}");
        assert!(o.retry.is_none());
        assert!(all[3].contains("unknown option `bogus`"));
        assert!(all[4].contains("given twice"));
    }
}
