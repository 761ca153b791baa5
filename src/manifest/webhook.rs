//! A webhook hook's own sections: `config` (where it is received) and
//! `verification` (how its sender is proven), each read through its field
//! table into typed values, so the verifier never sees a scheme name or a
//! secret it would have to check again.
//!
//! Secrets may be written `${NAME}` and are then read from the environment
//! while the manifest is checked. Problems name the field and the variable,
//! never a secret; the secret itself is kept as a [`Secret`], which prints
//! `<redacted>`.

use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use super::HookType;
use super::check::{Checker, Field};
use super::triggers::{check_path, read_methods};
use crate::crypto::{Secret, base64_decode};
use crate::quote::quote;

/// Where a webhook is received and how its sender is verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Default `/api/webhooks/{function}` (the function's name).
    pub path: String,
    /// Upper case; default `[POST]`.
    pub methods: Vec<String>,
    pub verification: Verification,
    /// `config.timeout`: the call's time limit when shorter than the
    /// function's.
    pub timeout: Option<Duration>,
}

/// How a webhook request is proven to come from its sender.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub scheme: Scheme,
    /// Deliver requests that fail verification anyway, marked as such
    /// (default false). Only data here: the trigger layer acts on it.
    pub skip_invalid: bool,
}

/// A signature scheme with everything it needs, resolved and checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Scheme {
    /// `hmac-sha256`, `hmac-sha1`: the HMAC of the body in `header`, as
    /// hex, `sha256=<hex>` (GitHub) or base64 (Shopify).
    Hmac { hash: HmacHash, header: String, secret: Secret },
    /// `stripe`: `t=<unix time>,v1=<hex>[,v1=<hex>...]` in `header`
    /// (default `Stripe-Signature`), HMAC-SHA256 of `{t}.{body}` keyed
    /// with the whole secret.
    Stripe { header: String, secret: Secret, tolerance: Duration },
    /// `standard-webhooks`: the headers `webhook-id`, `webhook-timestamp`
    /// and `webhook-signature` (`v1,<base64>`, space-separated), HMAC-SHA256
    /// of `{id}.{timestamp}.{body}`. `secret` holds the key itself: the
    /// base64 after `whsec_`, decoded.
    StandardWebhooks { secret: Secret, tolerance: Duration },
    /// `none`: every request is accepted (a warning in the manifest).
    None,
}

/// The hash of an [`Scheme::Hmac`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacHash {
    Sha256,
    Sha1,
}

impl Scheme {
    /// The name the manifest and the API use.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Hmac { hash: HmacHash::Sha256, .. } => "hmac-sha256",
            Scheme::Hmac { hash: HmacHash::Sha1, .. } => "hmac-sha1",
            Scheme::Stripe { .. } => "stripe",
            Scheme::StandardWebhooks { .. } => "standard-webhooks",
            Scheme::None => "none",
        }
    }

    /// The header that carries the signature, where the manifest chose it.
    pub fn header(&self) -> Option<&str> {
        match self {
            Scheme::Hmac { header, .. } | Scheme::Stripe { header, .. } => Some(header),
            Scheme::StandardWebhooks { .. } | Scheme::None => None,
        }
    }

    /// How far a signed timestamp may be from now, for schemes that sign one.
    pub fn tolerance(&self) -> Option<Duration> {
        match self {
            Scheme::Stripe { tolerance, .. } | Scheme::StandardWebhooks { tolerance, .. } => Some(*tolerance),
            Scheme::Hmac { .. } | Scheme::None => None,
        }
    }
}

/// The tolerance of timestamped schemes unless the manifest sets one.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// A webhook's `config` as read so far.
#[derive(Default)]
pub(super) struct ConfigFields {
    pub path: Option<String>,
    pub methods: Vec<String>,
    pub timeout: Option<Duration>,
}

/// Every field of a webhook's `config`, in checking order.
const CONFIG_FIELDS: &[Field<ConfigFields>] = &[
    Field { key: "path", read: |c, f, v, d| d.path = read_path(c, f, v) },
    Field { key: "methods", read: |c, f, v, d| d.methods = read_methods(c, f, v, &["POST"]) },
    Field { key: "timeout", read: |c, f, v, d| d.timeout = c.duration(f, v) },
];

/// A webhook's `config`, with its defaults when there is none.
pub(super) fn read_config(c: &mut Checker, field: &str, value: Option<&Value>) -> ConfigFields {
    match value.filter(|v| !v.is_null()) {
        None => c.fields(field, &Mapping::new(), CONFIG_FIELDS),
        Some(v) => c.section(field, v, CONFIG_FIELDS).unwrap_or_default(),
    }
}

/// The path, checked like a route's, or `/api/webhooks/{function}`; `None`
/// after an error (or while the function's name is invalid, which is
/// reported already).
fn read_path(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<String> {
    match c.opt_string(field, value) {
        Some(path) => check_path(c, field, path),
        None => c.name.as_ref().map(|name| format!("/api/webhooks/{name}")),
    }
}

/// Which scheme a `type` names, before its other fields are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hmac(HmacHash),
    Stripe,
    StandardWebhooks,
    None,
}

/// A verification as read so far.
#[derive(Default)]
struct VerificationFields {
    kind: Option<Kind>,
    header: Option<String>,
    secret: Option<Secret>,
    tolerance: Option<Duration>,
    skip_invalid: bool,
}

/// Every field of a webhook's `verification`, in checking order (`type`
/// first: what the others mean depends on it).
const VERIFICATION_FIELDS: &[Field<VerificationFields>] = &[
    Field { key: "type", read: |c, f, v, d| d.kind = read_kind(c, f, v) },
    Field { key: "header", read: |c, f, v, d| d.header = read_header(c, f, v, d.kind) },
    Field { key: "secret", read: |c, f, v, d| d.secret = read_secret(c, f, v, d.kind) },
    Field { key: "tolerance", read: |c, f, v, d| d.tolerance = read_tolerance(c, f, v, d.kind) },
    Field { key: "skip_invalid", read: |c, f, v, d| d.skip_invalid = c.opt_bool(f, v).unwrap_or(false) },
];

/// A hook's `verification`: required for webhook hooks (`{type: none}`
/// says so explicitly), ignored with a warning on the others.
pub(super) fn read_verification(
    c: &mut Checker,
    field: &str,
    value: Option<&Value>,
    hook: Option<HookType>,
) -> Option<Verification> {
    match (hook?, value.filter(|v| !v.is_null())) {
        (HookType::Webhook, Some(value)) => {
            let d = c.section(field, value, VERIFICATION_FIELDS)?;
            let skip_invalid = d.skip_invalid;
            Some(Verification { scheme: scheme(d)?, skip_invalid })
        }
        (HookType::Webhook, None) => {
            let hint = "write `verification: {type: none}` to accept unsigned requests";
            c.error(field, format!("required for webhook hooks ({hint})"));
            None
        }
        (_, Some(_)) => {
            c.warn(field, "only webhook hooks are verified; it is ignored");
            None
        }
        (_, None) => None,
    }
}

/// The scheme from its fields; `None` when one it needs failed (reported).
fn scheme(d: VerificationFields) -> Option<Scheme> {
    let (header, secret, tolerance) = (d.header, d.secret, d.tolerance.unwrap_or(DEFAULT_TOLERANCE));
    Some(match d.kind? {
        Kind::Hmac(hash) => Scheme::Hmac { hash, header: header?, secret: secret? },
        Kind::Stripe => Scheme::Stripe { header: header?, secret: secret?, tolerance },
        Kind::StandardWebhooks => Scheme::StandardWebhooks { secret: secret?, tolerance },
        Kind::None => Scheme::None,
    })
}

/// The scheme; `hmac-sha256` when none is named (as the reference design).
fn read_kind(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<Kind> {
    let kind = c.opt_string(field, value).unwrap_or_else(|| "hmac-sha256".into());
    match kind.as_str() {
        "hmac-sha256" => Some(Kind::Hmac(HmacHash::Sha256)),
        "hmac-sha1" => Some(Kind::Hmac(HmacHash::Sha1)),
        "stripe" => Some(Kind::Stripe),
        "standard-webhooks" => Some(Kind::StandardWebhooks),
        "none" => {
            c.warn(field, "none: requests are not verified; anyone who knows the path can call the function");
            Some(Kind::None)
        }
        other => {
            let known = "hmac-sha256, hmac-sha1, stripe, standard-webhooks or none";
            c.error(field, format!("{} is not a verification type (use {known})", quote(other)));
            None
        }
    }
}

/// The signature header: required for the HMAC types, `Stripe-Signature`
/// by default for stripe, and not chosen by the others.
fn read_header(c: &mut Checker, field: &str, value: Option<&Value>, kind: Option<Kind>) -> Option<String> {
    let header = c.opt_string(field, value);
    match (kind?, header) {
        (Kind::Hmac(_), None) => {
            c.error(field, "required: the header that carries the signature, like X-Hub-Signature-256");
            None
        }
        (Kind::Stripe, None) => Some("Stripe-Signature".into()),
        (Kind::StandardWebhooks | Kind::None, None) => None,
        (Kind::StandardWebhooks, Some(_)) => {
            c.warn(field, "standard-webhooks always reads webhook-id, webhook-timestamp and webhook-signature; it is ignored");
            None
        }
        (Kind::None, Some(_)) => {
            c.warn(field, "nothing is verified with type none; it is ignored");
            None
        }
        (Kind::Hmac(_) | Kind::Stripe, Some(header)) if !is_header_name(&header) => {
            c.error(field, format!("{} is not a header name", quote(&header)));
            None
        }
        (Kind::Hmac(_) | Kind::Stripe, Some(header)) => Some(header),
    }
}

/// A header name: one or more of HTTP's token characters (RFC 9110).
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// The key: required except for `none`; `${NAME}` reads the environment;
/// for standard-webhooks, the base64 after `whsec_`, decoded. Messages
/// never repeat the value.
fn read_secret(c: &mut Checker, field: &str, value: Option<&Value>, kind: Option<Kind>) -> Option<Secret> {
    let written = c.opt_string(field, value);
    let kind = kind?;
    if kind == Kind::None {
        if written.is_some() {
            c.warn(field, "nothing is verified with type none; it is ignored");
        }
        return None;
    }
    let Some(text) = written.filter(|s| !s.is_empty()) else {
        c.error(field, "required");
        return None;
    };
    let text = resolve_env(c, field, text)?;
    match kind {
        Kind::StandardWebhooks => standard_webhooks_key(c, field, &text),
        _ => Some(Secret::new(text)),
    }
}

/// `text` itself, or the value of the variable it names as `${NAME}`.
fn resolve_env(c: &mut Checker, field: &str, text: String) -> Option<String> {
    let Some(name) = text.strip_prefix("${").and_then(|rest| rest.strip_suffix('}')) else {
        return Some(text);
    };
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        c.error(field, "`${...}` must name an environment variable (letters, digits and _)");
        return None;
    }
    let problem = match (c.env)(name) {
        Ok(value) if !value.is_empty() => return Some(value),
        Ok(_) => "is empty",
        Err(std::env::VarError::NotPresent) => "is not set",
        Err(std::env::VarError::NotUnicode(_)) => "is not valid UTF-8",
    };
    c.error(field, format!("the environment variable {} {problem}", quote(name)));
    None
}

/// The key of a Standard Webhooks secret: `whsec_` (optional, as the
/// reference libraries allow) and the key in base64.
fn standard_webhooks_key(c: &mut Checker, field: &str, text: &str) -> Option<Secret> {
    let encoded = text.strip_prefix("whsec_").unwrap_or(text);
    match base64_decode(encoded).filter(|key| !key.is_empty()) {
        Some(key) => Some(Secret::new(key)),
        None => {
            c.error(field, "must be whsec_ followed by the key in base64, as the sender gives it");
            None
        }
    }
}

/// How far a signed timestamp may be from now: for stripe and
/// standard-webhooks only (default [`DEFAULT_TOLERANCE`]).
fn read_tolerance(
    c: &mut Checker,
    field: &str,
    value: Option<&Value>,
    kind: Option<Kind>,
) -> Option<Duration> {
    let tolerance = c.duration(field, value)?;
    match kind? {
        Kind::Stripe | Kind::StandardWebhooks => Some(tolerance),
        Kind::Hmac(_) | Kind::None => {
            c.warn(field, "only stripe and standard-webhooks sign a timestamp; it is ignored");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::every_field;
    use super::*;

    /// Reads `{type: webhook, config: .., verification: ..}` as a hook of
    /// the function `f`; the problems as the user sees them.
    fn problems_of(config: &str, verification: &str) -> Vec<String> {
        let mut c = Checker::new("/nonexistent/f".as_ref(), "m.yaml".as_ref());
        c.name = Some("f".into());
        let text = format!("{{type: webhook, config: {config}, verification: {verification}}}");
        let hook = super::super::triggers::read_hook(&mut c, "h", &serde_yaml_ng::from_str(&text).unwrap());
        assert!(hook.is_some(), "{text}: {:?}", c.problems);
        c.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_known_webhook_field_is_read_without_a_warning() {
        let config = every_field(CONFIG_FIELDS, config_sample);
        let verification = every_field(VERIFICATION_FIELDS, verification_sample);
        assert_eq!(problems_of(&config, &verification), Vec::<String>::new());
    }

    /// Valid values for each table's fields; a new field needs one here.
    fn config_sample(key: &str) -> String {
        match key {
            "path" => "/in".into(),
            "methods" => "[put]".into(),
            "timeout" => "5s".into(),
            other => panic!("no sample value for the new webhook config field `{other}`; add one"),
        }
    }

    /// Stripe: the one scheme that reads every field.
    fn verification_sample(key: &str) -> String {
        match key {
            "type" => "stripe".into(),
            "header" => "X-Sig".into(),
            "secret" => "s3cret".into(),
            "tolerance" => "1m".into(),
            "skip_invalid" => "true".into(),
            other => panic!("no sample value for the new verification field `{other}`; add one"),
        }
    }

    #[test]
    fn scheme_names_are_the_manifest_ones() {
        let secret = || Secret::new("k");
        let tolerance = DEFAULT_TOLERANCE;
        let schemes = [
            (Scheme::Hmac { hash: HmacHash::Sha256, header: "X".into(), secret: secret() }, "hmac-sha256"),
            (Scheme::Hmac { hash: HmacHash::Sha1, header: "X".into(), secret: secret() }, "hmac-sha1"),
            (Scheme::Stripe { header: "X".into(), secret: secret(), tolerance }, "stripe"),
            (Scheme::StandardWebhooks { secret: secret(), tolerance }, "standard-webhooks"),
            (Scheme::None, "none"),
        ];
        for (scheme, name) in schemes {
            assert_eq!(scheme.name(), name);
            let problems = problems_of("{}", &format!("{{type: {name}, header: X, secret: a2V5}}"));
            assert!(problems.iter().all(|p| p.contains("warning")), "{name}: {problems:?}");
        }
    }
}
