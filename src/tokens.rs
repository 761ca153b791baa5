//! Internal tokens: handed to every invocation (`context.internal_token`)
//! so a function can call back into the API, accepted like an API key.
//!
//! They verify themselves: `EXPIRY.DEPTH.MAC`, where MAC is HMAC-SHA256
//! over the expiry and depth with a key drawn at start. Nothing is stored
//! per token, and a restart invalidates all of them. DEPTH is the event
//! nesting of the invocation the token was handed to: an event raised with
//! it has that depth, so hooks that raise events cannot loop forever.

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

    /// A new token valid for [`INTERNAL_TOKEN_TTL`] from `now`, carrying
    /// the event `depth` of the invocation it is handed to.
    pub fn issue(&self, now: SystemTime, depth: u32) -> String {
        let expiry = (now + INTERNAL_TOKEN_TTL).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("{expiry:x}.{depth}.{}", self.mac(expiry, depth))
    }

    /// The depth of a token this key issued that has not expired at `now`;
    /// `None` for any other text.
    pub fn verify(&self, token: &str, now: SystemTime) -> Option<u32> {
        let mut parts = token.splitn(3, '.');
        let (expiry, depth, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let (expiry, depth) = (parse_expiry(expiry)?, parse_depth(depth)?);
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let genuine = constant_time_eq(self.mac(expiry, depth).as_bytes(), mac.as_bytes());
        (expiry > now && genuine).then_some(depth)
    }

    fn mac(&self, expiry: u64, depth: u32) -> String {
        hex(&hmac_sha256(&self.key, format!("{expiry}.{depth}").as_bytes()))
    }
}

/// The depth exactly as [`InternalTokens::issue`] writes it: decimal, no
/// sign, no leading zero.
fn parse_depth(text: &str) -> Option<u32> {
    let canonical = text == "0" || (!text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit()));
    text.parse().ok().filter(|_| canonical)
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
        let token = tokens.issue(now, 0);
        assert_eq!(tokens.verify(&token, now), Some(0));
        assert_eq!(tokens.verify(&token, now + INTERNAL_TOKEN_TTL + Duration::from_secs(1)), None);
    }

    #[test]
    fn other_keys_forgeries_and_garbage_do_not_verify() {
        let tokens = InternalTokens::new();
        let now = SystemTime::now();
        let token = tokens.issue(now, 2);
        assert_eq!(InternalTokens::new().verify(&token, now), None, "another server's key");
        let [expiry, depth, mac] = token.splitn(3, '.').collect::<Vec<_>>()[..] else { panic!("{token}") };
        assert_eq!(depth, "2");
        let later = format!("{:x}.{depth}.{mac}", u64::from_str_radix(expiry, 16).unwrap() + 1000);
        assert_eq!(tokens.verify(&later, now), None, "a later expiry with the old MAC");
        assert_eq!(
            tokens.verify(&format!("{expiry}.0.{mac}"), now),
            None,
            "a smaller depth with the old MAC"
        );
        for respelled in ["02", "+2", " 2", "2 "] {
            assert_eq!(tokens.verify(&format!("{expiry}.{respelled}.{mac}"), now), None, "{respelled:?}");
        }
        assert_eq!(tokens.verify("garbage", now), None);
        assert_eq!(tokens.verify("zz.0.00", now), None);
    }

    #[test]
    fn tokens_carry_their_depth() {
        let tokens = InternalTokens::new();
        let now = SystemTime::now();
        for depth in [0, 1, 8, u32::MAX] {
            assert_eq!(tokens.verify(&tokens.issue(now, depth), now), Some(depth));
        }
    }

    #[test]
    fn the_expiry_is_lower_case_hex_digits_only() {
        let tokens = InternalTokens::new();
        // An expiry whose hex has letters, so upper case is another spelling.
        let now = UNIX_EPOCH + Duration::from_secs(0x7abc_def0);
        let token = tokens.issue(now, 0);
        let (expiry, rest) = token.split_once('.').unwrap();
        assert_eq!(expiry, "7abce01c");
        assert_eq!(tokens.verify(&token, now), Some(0));
        for respelled in
            [format!("+{expiry}"), format!("0{expiry}"), expiry.to_uppercase(), format!(" {expiry}")]
        {
            assert_eq!(tokens.verify(&format!("{respelled}.{rest}"), now), None, "{respelled}");
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
