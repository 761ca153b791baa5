//! Authentication: API keys for `/api/*`, the admin token for admin
//! endpoints, and the internal tokens handed to each invocation (see
//! [`crate::tokens`]). Every comparison of a secret is constant-time.

use std::sync::Arc;
use std::time::SystemTime;

use super::respond::ApiError;
use crate::config::ApiKey;
use crate::crypto::constant_time_eq;
use crate::invoke::Caller;
use crate::tokens::InternalTokens;

pub struct Auth {
    /// Name and key.
    api_keys: Vec<(Arc<str>, String)>,
    admin_token: Option<String>,
    tokens: Arc<InternalTokens>,
}

impl Auth {
    pub fn new(api_keys: Vec<ApiKey>, admin_token: Option<String>, tokens: Arc<InternalTokens>) -> Auth {
        let api_keys = api_keys.into_iter().map(|k| (Arc::from(k.name), k.key)).collect();
        Auth { api_keys, admin_token, tokens }
    }

    /// Identifies the bearer of `token` (from `Authorization: Bearer`).
    pub fn identify(&self, token: Option<&str>) -> Caller {
        let Some(token) = token else { return Caller::Anonymous };
        let admin = self.admin_token.as_deref();
        if admin.is_some_and(|admin| constant_time_eq(admin.as_bytes(), token.as_bytes())) {
            return Caller::Admin;
        }
        let key = self.api_keys.iter().find(|(_, k)| constant_time_eq(k.as_bytes(), token.as_bytes()));
        if let Some((name, _)) = key {
            return Caller::ApiKey { name: name.clone() };
        }
        if let Some(depth) = self.tokens.verify(token, SystemTime::now()) {
            return Caller::Internal { depth };
        }
        Caller::Anonymous
    }

    /// May `caller` use the API? Anyone, unless API keys are configured.
    pub fn api(&self, caller: &Caller) -> Result<(), ApiError> {
        match self.api_keys.is_empty() || *caller != Caller::Anonymous {
            true => Ok(()),
            false => Err(ApiError::Unauthorized),
        }
    }

    /// May `caller` use admin endpoints? Only with the admin token, and
    /// only when one is configured.
    pub fn admin(&self, caller: &Caller) -> Result<(), ApiError> {
        match (&self.admin_token, caller) {
            (None, _) => Err(ApiError::AdminDisabled),
            (Some(_), Caller::Admin) => Ok(()),
            (Some(_), _) => Err(ApiError::AdminRequired),
        }
    }
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name=key` pairs.
    fn auth(keys: &[&str], admin: Option<&str>) -> Auth {
        let key = |pair: &&str| {
            let (name, key) = pair.split_once('=').unwrap_or(("key1", pair));
            ApiKey { name: name.into(), key: key.into() }
        };
        let keys = keys.iter().map(key).collect();
        Auth::new(keys, admin.map(String::from), Arc::new(InternalTokens::new()))
    }

    #[test]
    fn callers_are_identified() {
        let auth = auth(&["ci=key1", "deploy=key3"], Some("admin!"));
        let key = |name: &str| Caller::ApiKey { name: name.into() };
        assert_eq!(auth.identify(None), Caller::Anonymous);
        assert_eq!((auth.identify(Some("key1")), auth.identify(Some("key3"))), (key("ci"), key("deploy")));
        assert_eq!(auth.identify(Some("admin!")), Caller::Admin);
        assert_eq!(auth.identify(Some("key2")), Caller::Anonymous);
        let internal = auth.tokens.issue(SystemTime::now(), 3);
        assert_eq!(auth.identify(Some(&internal)), Caller::Internal { depth: 3 });
    }

    #[test]
    fn the_api_is_open_without_keys_and_closed_to_strangers_with_them() {
        assert_eq!(auth(&[], None).api(&Caller::Anonymous), Ok(()));
        assert_eq!(auth(&["k"], None).api(&Caller::Anonymous), Err(ApiError::Unauthorized));
        assert_eq!(auth(&["k"], None).api(&Caller::Internal { depth: 0 }), Ok(()));
    }

    #[test]
    fn admin_needs_a_configured_token_and_its_bearer() {
        assert_eq!(auth(&[], None).admin(&Caller::Admin), Err(ApiError::AdminDisabled));
        assert_eq!(
            auth(&[], Some("t")).admin(&Caller::ApiKey { name: "k".into() }),
            Err(ApiError::AdminRequired)
        );
        assert_eq!(auth(&[], Some("t")).admin(&Caller::Admin), Ok(()));
    }

    #[test]
    fn bearer_tokens_are_parsed() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
