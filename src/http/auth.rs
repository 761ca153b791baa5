//! Authentication: API keys for invocations, the admin token for admin
//! endpoints, and internal tokens handed to each invocation so a function
//! can call back into the API.
//!
//! Internal tokens verify themselves: `EXPIRY.MAC`, where MAC is
//! HMAC-SHA256 over the expiry with a key drawn at start. Nothing is stored
//! per token, and a restart invalidates all of them. Every comparison of a
//! secret is constant-time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// How long an internal token stays valid.
pub const INTERNAL_TOKEN_TTL: Duration = Duration::from_secs(300);

/// Who a request authenticated as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    ApiKey,
    Internal,
    Admin,
}

impl Caller {
    /// The `context.auth` value handed to functions.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Caller::Anonymous => serde_json::Value::Null,
            Caller::ApiKey => serde_json::json!({"type": "api_key"}),
            Caller::Internal => serde_json::json!({"type": "internal"}),
            Caller::Admin => serde_json::json!({"type": "admin"}),
        }
    }
}

pub struct Auth {
    api_keys: Vec<String>,
    admin_token: Option<String>,
    key: [u8; 32],
}

impl Auth {
    pub fn new(api_keys: Vec<String>, admin_token: Option<String>) -> Auth {
        let mut key = [0u8; 32];
        crate::random::fill(&mut key);
        Auth { api_keys, admin_token, key }
    }

    /// Whether invocations need a key or token.
    pub fn keys_required(&self) -> bool {
        !self.api_keys.is_empty()
    }

    pub fn admin_enabled(&self) -> bool {
        self.admin_token.is_some()
    }

    /// Identifies the bearer of `token` (from `Authorization: Bearer`).
    pub fn identify(&self, token: Option<&str>) -> Caller {
        let Some(token) = token else { return Caller::Anonymous };
        if self
            .admin_token
            .as_deref()
            .is_some_and(|admin| constant_time_eq(admin.as_bytes(), token.as_bytes()))
        {
            return Caller::Admin;
        }
        if self.api_keys.iter().any(|k| constant_time_eq(k.as_bytes(), token.as_bytes())) {
            return Caller::ApiKey;
        }
        if self.verify_internal(token, SystemTime::now()) {
            return Caller::Internal;
        }
        Caller::Anonymous
    }

    /// A new internal token valid for [`INTERNAL_TOKEN_TTL`].
    pub fn issue_internal(&self, now: SystemTime) -> String {
        let expiry = (now + INTERNAL_TOKEN_TTL).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("{expiry:x}.{}", hex(&hmac_sha256(&self.key, expiry.to_string().as_bytes())))
    }

    fn verify_internal(&self, token: &str, now: SystemTime) -> bool {
        let Some((expiry_hex, mac)) = token.split_once('.') else { return false };
        let Ok(expiry) = u64::from_str_radix(expiry_hex, 16) else { return false };
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let expected = hex(&hmac_sha256(&self.key, expiry.to_string().as_bytes()));
        expiry > now && constant_time_eq(expected.as_bytes(), mac.as_bytes())
    }
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares without an early exit, so timing does not reveal how much of a
/// secret matched (the length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random-looking, unique id of 16 hex characters: a counter hashed with
/// std's randomly keyed SipHash (keyed once per process), so it costs no
/// system call per request.
pub fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = KEYS.get_or_init(Default::default).build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn internal_tokens_verify_until_they_expire() {
        let auth = Auth::new(vec![], None);
        let now = SystemTime::now();
        let token = auth.issue_internal(now);
        assert!(auth.verify_internal(&token, now));
        assert!(!auth.verify_internal(&token, now + INTERNAL_TOKEN_TTL + Duration::from_secs(1)));
        let other = Auth::new(vec![], None);
        assert!(!other.verify_internal(&token, now), "another server's key does not verify it");
        let (expiry, mac) = token.split_once('.').unwrap();
        let forged = format!("{:x}.{mac}", u64::from_str_radix(expiry, 16).unwrap() + 1000);
        assert!(!auth.verify_internal(&forged, now));
        assert!(!auth.verify_internal("garbage", now));
    }

    #[test]
    fn callers_are_identified() {
        let auth = Auth::new(vec!["key1".into()], Some("admin!".into()));
        assert_eq!(auth.identify(None), Caller::Anonymous);
        assert_eq!(auth.identify(Some("key1")), Caller::ApiKey);
        assert_eq!(auth.identify(Some("admin!")), Caller::Admin);
        assert_eq!(auth.identify(Some("key2")), Caller::Anonymous);
        let internal = auth.issue_internal(SystemTime::now());
        assert_eq!(auth.identify(Some(&internal)), Caller::Internal);
    }

    #[test]
    fn bearer_tokens_are_parsed() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn request_ids_are_unique() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| random_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == 16));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"samf"));
        assert!(!constant_time_eq(b"same", b"sam"));
    }
}
