//! Internal tokens: handed to every invocation (`context.internal_token`)
//! so a function can call back into the API, accepted like an API key.
//!
//! They verify themselves: `EXPIRY.MAC`, where MAC is HMAC-SHA256 over the
//! expiry with a key drawn at start. Nothing is stored per token, and a
//! restart invalidates all of them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::crypto::{constant_time_eq, hex, hmac_sha256};

/// How long an internal token stays valid.
pub const INTERNAL_TOKEN_TTL: Duration = Duration::from_secs(300);

/// Issues and verifies internal tokens with one random key.
pub struct InternalTokens {
    key: [u8; 32],
}

impl Default for InternalTokens {
    fn default() -> InternalTokens {
        InternalTokens::new()
    }
}

impl InternalTokens {
    pub fn new() -> InternalTokens {
        let mut key = [0u8; 32];
        crate::random::fill(&mut key);
        InternalTokens { key }
    }

    /// A new token valid for [`INTERNAL_TOKEN_TTL`] from `now`.
    pub fn issue(&self, now: SystemTime) -> String {
        let expiry = (now + INTERNAL_TOKEN_TTL).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("{expiry:x}.{}", self.mac(expiry))
    }

    /// True for a token this key issued that has not expired at `now`.
    pub fn verify(&self, token: &str, now: SystemTime) -> bool {
        let Some((expiry_hex, mac)) = token.split_once('.') else { return false };
        let Some(expiry) = parse_expiry(expiry_hex) else { return false };
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        expiry > now && constant_time_eq(self.mac(expiry).as_bytes(), mac.as_bytes())
    }

    fn mac(&self, expiry: u64) -> String {
        hex(&hmac_sha256(&self.key, expiry.to_string().as_bytes()))
    }
}

/// The expiry exactly as [`InternalTokens::issue`] writes it: lower-case hex
/// digits, no sign, no leading zero. `u64::from_str_radix` alone would also
/// take `+` and upper case, so one token would have several spellings.
fn parse_expiry(text: &str) -> Option<u64> {
    let canonical = !text.starts_with('0') && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    u64::from_str_radix(text, 16).ok().filter(|_| canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire() {
        let tokens = InternalTokens::new();
        let now = SystemTime::now();
        let token = tokens.issue(now);
        assert!(tokens.verify(&token, now));
        assert!(!tokens.verify(&token, now + INTERNAL_TOKEN_TTL + Duration::from_secs(1)));
    }

    #[test]
    fn other_keys_forgeries_and_garbage_do_not_verify() {
        let tokens = InternalTokens::new();
        let now = SystemTime::now();
        let token = tokens.issue(now);
        assert!(!InternalTokens::new().verify(&token, now), "another server's key");
        let (expiry, mac) = token.split_once('.').unwrap();
        let later = format!("{:x}.{mac}", u64::from_str_radix(expiry, 16).unwrap() + 1000);
        assert!(!tokens.verify(&later, now), "a later expiry with the old MAC");
        assert!(!tokens.verify("garbage", now));
        assert!(!tokens.verify("zz.00", now));
    }

    #[test]
    fn the_expiry_is_lower_case_hex_digits_only() {
        let tokens = InternalTokens::new();
        // An expiry whose hex has letters, so upper case is another spelling.
        let now = UNIX_EPOCH + Duration::from_secs(0x7abc_def0);
        let token = tokens.issue(now);
        let (expiry, mac) = token.split_once('.').unwrap();
        assert_eq!(expiry, "7abce01c");
        assert!(tokens.verify(&token, now));
        for respelled in
            [format!("+{expiry}"), format!("0{expiry}"), expiry.to_uppercase(), format!(" {expiry}")]
        {
            assert!(!tokens.verify(&format!("{respelled}.{mac}"), now), "{respelled}");
        }
    }

    #[test]
    fn expiries_parse_only_in_the_issued_spelling() {
        assert_eq!(parse_expiry("6a1b2c3d"), Some(0x6a1b_2c3d));
        assert_eq!(parse_expiry("0"), None, "issued expiries are in the future, never 0");
        for bad in ["", "+1", "-1", "01", "1A", "0x1", "1 ", "12345678901234567"] {
            assert_eq!(parse_expiry(bad), None, "{bad:?}");
        }
    }
}
