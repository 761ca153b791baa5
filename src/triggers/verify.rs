//! Webhook verification: was this request, as received, signed by the
//! sender the manifest names? Pure: no I/O, and the clock is an argument,
//! so every scheme is tested with fixed vectors at a fixed `now`.
//!
//! Signatures are computed over the raw body bytes (never a re-encoded
//! body) and compared in constant time. The signature is checked before the
//! timestamp, so [`VerifyError::StaleTimestamp`] means a genuine but old
//! (or early) request: a replay, or a clock that is off. No message
//! contains the secret or the signatures received.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::crypto::{Secret, base64_decode, constant_time_eq, hmac_sha1, hmac_sha256, unhex};
use crate::manifest::{HmacHash, Scheme, Verification};

/// The headers of the Standard Webhooks spec.
const WEBHOOK_ID: &str = "webhook-id";
const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// Why a request is not accepted as signed. Each variant names the header
/// it is about, so a message says where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// A header the scheme needs is absent or empty.
    MissingHeader { header: String },
    /// The header is there but not in the scheme's format (`expected`).
    Malformed { header: String, expected: &'static str },
    /// Well-formed, but no signature in it is the body's under the secret.
    Mismatch { header: String },
    /// Correctly signed, but at `signed_at` (Unix seconds), more than
    /// `tolerance` away from `now` in either direction.
    StaleTimestamp { header: String, signed_at: u64, now: u64, tolerance: Duration },
}

impl VerifyError {
    /// A stable name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader { .. } => "missing_header",
            VerifyError::Malformed { .. } => "malformed_signature",
            VerifyError::Mismatch { .. } => "signature_mismatch",
            VerifyError::StaleTimestamp { .. } => "stale_timestamp",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::MissingHeader { header } => write!(f, "{header}: missing"),
            VerifyError::Malformed { header, expected } => {
                write!(f, "{header}: malformed (expected {expected})")
            }
            VerifyError::Mismatch { header } => write!(f, "{header}: no signature matches the body"),
            VerifyError::StaleTimestamp { header, signed_at, now, tolerance } => {
                let (off, when) = match signed_at > now {
                    true => (signed_at - now, "in the future"),
                    false => (now - signed_at, "old"),
                };
                let tolerance = tolerance.as_secs();
                write!(f, "{header}: the timestamp is {off}s {when}, beyond the {tolerance}s tolerance")
            }
        }
    }
}

impl std::error::Error for VerifyError {}

/// Checks `body` and `headers` (names in any case) against `verification`
/// at `now`. `skip_invalid` is the caller's to act on.
pub fn verify(
    verification: &Verification,
    headers: &[(String, String)],
    body: &[u8],
    now: SystemTime,
) -> Result<(), VerifyError> {
    let headers = Headers(headers);
    match &verification.scheme {
        Scheme::Hmac { hash, header, secret } => hmac_body(*hash, header, secret, headers, body),
        Scheme::Stripe { header, secret, tolerance } => {
            stripe(header, secret, *tolerance, headers, body, now)
        }
        Scheme::StandardWebhooks { secret, tolerance } => {
            standard_webhooks(secret, *tolerance, headers, body, now)
        }
        Scheme::None => Ok(()),
    }
}

/// The request's headers, looked up by name in any case.
#[derive(Clone, Copy)]
struct Headers<'a>(&'a [(String, String)]);

impl Headers<'_> {
    /// The first value of `name`, trimmed; missing when absent or empty.
    fn get(&self, name: &str) -> Result<&str, VerifyError> {
        let value = self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
        value.filter(|v| !v.is_empty()).ok_or_else(|| VerifyError::MissingHeader { header: name.into() })
    }
}

/// `hmac-sha256`, `hmac-sha1`: one signature of the body, as hex,
/// `sha256=<hex>` / `sha1=<hex>` (GitHub) or base64 (Shopify).
fn hmac_body(
    hash: HmacHash,
    header: &str,
    secret: &Secret,
    headers: Headers,
    body: &[u8],
) -> Result<(), VerifyError> {
    let (prefix, expected) = match hash {
        HmacHash::Sha256 => ("sha256=", "hex, sha256=<hex> or base64 of an HMAC-SHA256"),
        HmacHash::Sha1 => ("sha1=", "hex, sha1=<hex> or base64 of an HMAC-SHA1"),
    };
    let value = headers.get(header)?;
    let mac = hmac(hash, secret, body);
    let given = decode_mac(value.strip_prefix(prefix).unwrap_or(value), mac.len());
    match given {
        None => Err(VerifyError::Malformed { header: header.into(), expected }),
        Some(given) if constant_time_eq(&given, &mac) => Ok(()),
        Some(_) => Err(VerifyError::Mismatch { header: header.into() }),
    }
}

fn hmac(hash: HmacHash, secret: &Secret, message: &[u8]) -> Vec<u8> {
    match hash {
        HmacHash::Sha256 => hmac_sha256(secret.expose(), message).to_vec(),
        HmacHash::Sha1 => hmac_sha1(secret.expose(), message).to_vec(),
    }
}

/// A MAC of `len` bytes written as hex (exactly twice as long) or base64.
fn decode_mac(text: &str, len: usize) -> Option<Vec<u8>> {
    let bytes = match text.len() == 2 * len {
        true => unhex(text),
        false => base64_decode(text),
    };
    bytes.filter(|b| b.len() == len)
}

/// `stripe`: `t=<unix time>,v1=<hex>[,v1=<hex>...]`, each v1 an
/// HMAC-SHA256 of `{t}.{body}`; any one matching accepts (secret rotation).
fn stripe(
    header: &str,
    secret: &Secret,
    tolerance: Duration,
    headers: Headers,
    body: &[u8],
    now: SystemTime,
) -> Result<(), VerifyError> {
    let expected = "t=<unix time>,v1=<hex>[,v1=<hex>...]";
    let parts = stripe_parts(headers.get(header)?);
    let (timestamp, signatures) =
        parts.ok_or_else(|| VerifyError::Malformed { header: header.into(), expected })?;
    let signed_at = unix_time(header, timestamp)?;
    let mac = hmac_sha256(secret.expose(), &signed(&[timestamp.as_bytes(), body]));
    let given = signatures.iter().filter_map(|s| unhex(s).filter(|b| b.len() == mac.len())).collect();
    one_matches(header, given, &mac, expected)?;
    within_tolerance(header, signed_at, tolerance, now)
}

/// The `t` (exactly one) and every `v1` of a Stripe-Signature; other
/// schemes (`v0`) are left out.
fn stripe_parts(value: &str) -> Option<(&str, Vec<&str>)> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',') {
        match item.trim().split_once('=')? {
            ("t", _) if timestamp.is_some() => return None,
            ("t", t) => timestamp = Some(t),
            ("v1", signature) => signatures.push(signature),
            _ => {}
        }
    }
    Some((timestamp?, signatures))
}

/// `standard-webhooks`: `webhook-signature` holds space-separated
/// `v1,<base64>` entries, each an HMAC-SHA256 of `{id}.{timestamp}.{body}`
/// (entries of other versions are left out); any one matching accepts.
fn standard_webhooks(
    secret: &Secret,
    tolerance: Duration,
    headers: Headers,
    body: &[u8],
    now: SystemTime,
) -> Result<(), VerifyError> {
    let (id, timestamp) = (headers.get(WEBHOOK_ID)?, headers.get(WEBHOOK_TIMESTAMP)?);
    let signatures = headers.get(WEBHOOK_SIGNATURE)?;
    let signed_at = unix_time(WEBHOOK_TIMESTAMP, timestamp)?;
    let mac = hmac_sha256(secret.expose(), &signed(&[id.as_bytes(), timestamp.as_bytes(), body]));
    let given = signatures
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|signature| base64_decode(signature).filter(|b| b.len() == mac.len()))
        .collect();
    let expected = "v1,<base64 of an HMAC-SHA256> [v1,<base64>...]";
    one_matches(WEBHOOK_SIGNATURE, given, &mac, expected)?;
    within_tolerance(WEBHOOK_TIMESTAMP, signed_at, tolerance, now)
}

/// The parts joined with `.`, as the timestamped schemes sign them.
fn signed(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b'.')
}

/// Accepts when one of the signatures read from `header` is `mac` (each
/// compared in constant time); none readable is a malformed header.
fn one_matches(
    header: &str,
    given: Vec<Vec<u8>>,
    mac: &[u8],
    expected: &'static str,
) -> Result<(), VerifyError> {
    if given.is_empty() {
        return Err(VerifyError::Malformed { header: header.into(), expected });
    }
    match given.iter().fold(false, |found, g| found | constant_time_eq(g, mac)) {
        true => Ok(()),
        false => Err(VerifyError::Mismatch { header: header.into() }),
    }
}

/// A signed timestamp: Unix seconds, digits only.
fn unix_time(header: &str, text: &str) -> Result<u64, VerifyError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let seconds = text.parse::<u64>().ok().filter(|_| digits);
    seconds
        .ok_or_else(|| VerifyError::Malformed { header: header.into(), expected: "a Unix time in seconds" })
}

/// Refuses a timestamp more than `tolerance` away from `now`, either way:
/// an old one is a replay, and so is one from the future.
fn within_tolerance(
    header: &str,
    signed_at: u64,
    tolerance: Duration,
    now: SystemTime,
) -> Result<(), VerifyError> {
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    match Duration::from_secs(now.abs_diff(signed_at)) > tolerance {
        true => Err(VerifyError::StaleTimestamp { header: header.into(), signed_at, now, tolerance }),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's example in "Validating webhook deliveries"; the signatures
    /// below were computed independently with
    /// `python3 -c 'import hmac,hashlib,base64; m=hmac.new(b"It'"'"'s a Secret to Everybody", b"Hello, World!", hashlib.sha256); print(m.hexdigest(), base64.b64encode(m.digest()))'`
    /// (and `hashlib.sha1` for the SHA-1 ones).
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const SHA256_HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    const SHA256_BASE64: &str = "dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc=";
    const SHA1_HEX: &str = "01dc10d0c83e72ed246219cdd91669667fe2ca59";
    const SHA1_BASE64: &str = "AdwQ0Mg+cu0kYhnN2RZpZn/iylk=";

    /// Stripe: `python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test_secret",
    /// b"1700000000.{\"id\":\"evt_1\"}", hashlib.sha256).hexdigest())'`, and
    /// the same with `whsec_other_secret` for a signature by another key.
    const STRIPE_SECRET: &str = "whsec_test_secret";
    const STRIPE_BODY: &[u8] = br#"{"id":"evt_1"}"#;
    const STRIPE_T: u64 = 1_700_000_000;
    const STRIPE_V1: &str = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";
    const STRIPE_V1_OTHER_KEY: &str = "1d5df318037183db6465b14ebf3e9b33ed4901478e5e2a0d4d9dfa761d91de66";

    /// The Standard Webhooks reference libraries' own vector ("sign
    /// function works", libraries/javascript/src/webhook.test.ts in
    /// standard-webhooks/standard-webhooks); the key is the base64 after
    /// `whsec_`.
    const SW_KEY_BASE64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_TIMESTAMP: u64 = 1_614_265_330;
    const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SW_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    /// A well-formed signature that is not the body's (from the same tests).
    const SW_OTHER: &str = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

    const TOLERANCE: Duration = Duration::from_secs(300);

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn hmac_scheme(hash: HmacHash, header: &str, secret: &str) -> Verification {
        let scheme = Scheme::Hmac { hash, header: header.into(), secret: Secret::new(secret) };
        Verification { scheme, skip_invalid: false }
    }

    fn stripe_scheme(secret: &str) -> Verification {
        let (header, secret) = ("Stripe-Signature".into(), Secret::new(secret));
        Verification { scheme: Scheme::Stripe { header, secret, tolerance: TOLERANCE }, skip_invalid: false }
    }

    fn standard_scheme(key_base64: &str) -> Verification {
        let secret = Secret::new(base64_decode(key_base64).unwrap());
        Verification {
            scheme: Scheme::StandardWebhooks { secret, tolerance: TOLERANCE },
            skip_invalid: false,
        }
    }

    fn check(
        v: &Verification,
        headers: &[(&str, &str)],
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let headers: Vec<(String, String)> =
            headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        verify(v, &headers, body, now)
    }

    /// A GitHub-style check of `value` in `X-Sig` at any time.
    fn github(hash: HmacHash, value: &str, body: &[u8]) -> Result<(), VerifyError> {
        check(&hmac_scheme(hash, "X-Sig", GITHUB_SECRET), &[("x-sig", value)], body, at(0))
    }

    fn missing(header: &str) -> Result<(), VerifyError> {
        Err(VerifyError::MissingHeader { header: header.into() })
    }

    fn mismatch(header: &str) -> Result<(), VerifyError> {
        Err(VerifyError::Mismatch { header: header.into() })
    }

    fn malformed(header: &str, expected: &'static str) -> Result<(), VerifyError> {
        Err(VerifyError::Malformed { header: header.into(), expected })
    }

    fn stale(header: &str, signed_at: u64, now: u64) -> Result<(), VerifyError> {
        Err(VerifyError::StaleTimestamp { header: header.into(), signed_at, now, tolerance: TOLERANCE })
    }

    #[test]
    fn hmac_accepts_hex_prefixed_hex_and_base64() {
        let sha256 = [
            SHA256_HEX.to_string(),
            SHA256_HEX.to_uppercase(),
            format!("sha256={SHA256_HEX}"),
            SHA256_BASE64.into(),
            SHA256_BASE64.trim_end_matches('=').into(),
        ];
        for value in &sha256 {
            assert_eq!(github(HmacHash::Sha256, value, GITHUB_BODY), Ok(()), "{value}");
        }
        for value in [SHA1_HEX.to_string(), format!("sha1={SHA1_HEX}"), SHA1_BASE64.into()] {
            assert_eq!(github(HmacHash::Sha1, &value, GITHUB_BODY), Ok(()), "{value}");
        }
    }

    #[test]
    fn hmac_refuses_a_tampered_body_a_wrong_secret_and_the_other_hash() {
        let value = format!("sha256={SHA256_HEX}");
        assert_eq!(github(HmacHash::Sha256, &value, b"Hello, World?"), mismatch("X-Sig"));
        let wrong_secret = hmac_scheme(HmacHash::Sha256, "X-Sig", "It's a secret to everybody");
        assert_eq!(check(&wrong_secret, &[("X-Sig", &value)], GITHUB_BODY, at(0)), mismatch("X-Sig"));
        let sha1_expected = "hex, sha1=<hex> or base64 of an HMAC-SHA1";
        assert_eq!(github(HmacHash::Sha1, SHA256_HEX, GITHUB_BODY), malformed("X-Sig", sha1_expected));
        let sha256_expected = "hex, sha256=<hex> or base64 of an HMAC-SHA256";
        let sha1_prefixed = format!("sha1={SHA256_HEX}");
        assert_eq!(
            github(HmacHash::Sha256, &sha1_prefixed, GITHUB_BODY),
            malformed("X-Sig", sha256_expected)
        );
    }

    #[test]
    fn hmac_needs_its_header_and_a_readable_signature() {
        let v = hmac_scheme(HmacHash::Sha256, "X-Sig", GITHUB_SECRET);
        assert_eq!(check(&v, &[("X-Other", SHA256_HEX)], GITHUB_BODY, at(0)), missing("X-Sig"));
        assert_eq!(check(&v, &[("X-Sig", "  ")], GITHUB_BODY, at(0)), missing("X-Sig"));
        let expected = "hex, sha256=<hex> or base64 of an HMAC-SHA256";
        for value in [&SHA256_HEX[..62], "sha256=", "zz", &SHA256_HEX.replace('7', "g")] {
            assert_eq!(github(HmacHash::Sha256, value, GITHUB_BODY), malformed("X-Sig", expected), "{value}");
        }
    }

    #[test]
    fn stripe_accepts_any_matching_v1_within_the_tolerance() {
        let v = stripe_scheme(STRIPE_SECRET);
        let value = format!("t={STRIPE_T},v1={STRIPE_V1}");
        assert_eq!(check(&v, &[("stripe-signature", &value)], STRIPE_BODY, at(STRIPE_T + 10)), Ok(()));
        let rotated = format!("t={STRIPE_T}, v1={STRIPE_V1_OTHER_KEY}, v1={STRIPE_V1}, v0=abc");
        assert_eq!(check(&v, &[("Stripe-Signature", &rotated)], STRIPE_BODY, at(STRIPE_T)), Ok(()));
    }

    #[test]
    fn stripe_refuses_a_tampered_body_another_key_and_a_moved_timestamp() {
        let v = stripe_scheme(STRIPE_SECRET);
        let run = |value: &str, body: &[u8]| check(&v, &[("Stripe-Signature", value)], body, at(STRIPE_T));
        let good = format!("t={STRIPE_T},v1={STRIPE_V1}");
        assert_eq!(run(&good, br#"{"id":"evt_2"}"#), mismatch("Stripe-Signature"));
        assert_eq!(
            run(&format!("t={STRIPE_T},v1={STRIPE_V1_OTHER_KEY}"), STRIPE_BODY),
            mismatch("Stripe-Signature")
        );
        let later = STRIPE_T + 1;
        assert_eq!(run(&format!("t={later},v1={STRIPE_V1}"), STRIPE_BODY), mismatch("Stripe-Signature"));
    }

    #[test]
    fn stripe_refuses_stale_and_future_timestamps_beyond_the_tolerance() {
        let v = stripe_scheme(STRIPE_SECRET);
        let value = format!("t={STRIPE_T},v1={STRIPE_V1}");
        let at_offset = |now: u64| check(&v, &[("Stripe-Signature", &value)], STRIPE_BODY, at(now));
        assert_eq!(at_offset(STRIPE_T + 300), Ok(()), "exactly the tolerance is within it");
        assert_eq!(at_offset(STRIPE_T - 300), Ok(()));
        assert_eq!(at_offset(STRIPE_T + 301), stale("Stripe-Signature", STRIPE_T, STRIPE_T + 301));
        assert_eq!(at_offset(STRIPE_T - 301), stale("Stripe-Signature", STRIPE_T, STRIPE_T - 301));
    }

    #[test]
    fn stripe_needs_one_timestamp_and_a_v1() {
        let v = stripe_scheme(STRIPE_SECRET);
        assert_eq!(check(&v, &[], STRIPE_BODY, at(STRIPE_T)), missing("Stripe-Signature"));
        let expected = "t=<unix time>,v1=<hex>[,v1=<hex>...]";
        for value in [
            format!("v1={STRIPE_V1}"),
            format!("t={STRIPE_T},t={STRIPE_T},v1={STRIPE_V1}"),
            format!("t={STRIPE_T},v0={STRIPE_V1}"),
            format!("t={STRIPE_T},v1=xyz"),
            format!("t={STRIPE_T},v1"),
        ] {
            let result = check(&v, &[("Stripe-Signature", &value)], STRIPE_BODY, at(STRIPE_T));
            assert_eq!(result, malformed("Stripe-Signature", expected), "{value}");
        }
        for value in [format!("t=-{STRIPE_T},v1={STRIPE_V1}"), format!("t={STRIPE_T};v1={STRIPE_V1}")] {
            let result = check(&v, &[("Stripe-Signature", &value)], STRIPE_BODY, at(STRIPE_T));
            assert_eq!(result, malformed("Stripe-Signature", "a Unix time in seconds"), "{value}");
        }
    }

    /// The Standard Webhooks headers of the reference vector, with `signature`.
    fn standard(signature: &str, id: &str, now: u64, body: &[u8]) -> Result<(), VerifyError> {
        let timestamp = SW_TIMESTAMP.to_string();
        let headers =
            [("webhook-id", id), ("Webhook-Timestamp", timestamp.as_str()), ("webhook-signature", signature)];
        check(&standard_scheme(SW_KEY_BASE64), &headers, body, at(now))
    }

    #[test]
    fn standard_webhooks_accepts_the_reference_vector_among_other_signatures() {
        assert_eq!(standard(SW_SIGNATURE, SW_ID, SW_TIMESTAMP, SW_BODY), Ok(()));
        let several = format!("v1,{SW_OTHER} v2,{SW_OTHER} {SW_SIGNATURE} v1,{SW_OTHER}");
        assert_eq!(standard(&several, SW_ID, SW_TIMESTAMP, SW_BODY), Ok(()));
    }

    #[test]
    fn standard_webhooks_refuses_a_tampered_body_or_id_and_another_key() {
        let refused = mismatch("webhook-signature");
        assert_eq!(standard(SW_SIGNATURE, SW_ID, SW_TIMESTAMP, br#"{"test": 2432232315}"#), refused);
        assert_eq!(standard(SW_SIGNATURE, "msg_other", SW_TIMESTAMP, SW_BODY), refused);
        assert_eq!(standard(&format!("v1,{SW_OTHER}"), SW_ID, SW_TIMESTAMP, SW_BODY), refused);
        let other_key = standard_scheme("c2VjcmV0LWtleS1vZi1hbm90aGVyLXNlbmRlcg==");
        let timestamp = SW_TIMESTAMP.to_string();
        let headers =
            [("webhook-id", SW_ID), ("webhook-timestamp", &timestamp), ("webhook-signature", SW_SIGNATURE)];
        assert_eq!(check(&other_key, &headers, SW_BODY, at(SW_TIMESTAMP)), refused);
    }

    #[test]
    fn standard_webhooks_refuses_stale_and_future_timestamps() {
        let (old, early) = (SW_TIMESTAMP + 301, SW_TIMESTAMP - 301);
        assert_eq!(
            standard(SW_SIGNATURE, SW_ID, old, SW_BODY),
            stale("webhook-timestamp", SW_TIMESTAMP, old)
        );
        assert_eq!(
            standard(SW_SIGNATURE, SW_ID, early, SW_BODY),
            stale("webhook-timestamp", SW_TIMESTAMP, early)
        );
        assert_eq!(standard(SW_SIGNATURE, SW_ID, SW_TIMESTAMP + 300, SW_BODY), Ok(()));
    }

    #[test]
    fn standard_webhooks_needs_its_three_headers_and_a_v1_signature() {
        let v = standard_scheme(SW_KEY_BASE64);
        let timestamp = SW_TIMESTAMP.to_string();
        let all =
            [("webhook-id", SW_ID), ("webhook-timestamp", &timestamp), ("webhook-signature", SW_SIGNATURE)];
        for (i, name) in ["webhook-id", "webhook-timestamp", "webhook-signature"].into_iter().enumerate() {
            let mut headers = all.to_vec();
            headers.remove(i);
            assert_eq!(check(&v, &headers, SW_BODY, at(SW_TIMESTAMP)), missing(name));
        }
        let expected = "v1,<base64 of an HMAC-SHA256> [v1,<base64>...]";
        for signature in ["v1,dawfeoifkpqwoekfpqoekf", &SW_SIGNATURE[..8], "v1,", &format!("v2,{SW_OTHER}")] {
            let result = standard(signature, SW_ID, SW_TIMESTAMP, SW_BODY);
            assert_eq!(result, malformed("webhook-signature", expected), "{signature}");
        }
        let headers =
            [("webhook-id", SW_ID), ("webhook-timestamp", "hello"), ("webhook-signature", SW_SIGNATURE)];
        let result = check(&v, &headers, SW_BODY, at(SW_TIMESTAMP));
        assert_eq!(result, malformed("webhook-timestamp", "a Unix time in seconds"));
    }

    #[test]
    fn none_accepts_anything() {
        let v = Verification { scheme: Scheme::None, skip_invalid: false };
        assert_eq!(check(&v, &[], b"anything", at(0)), Ok(()));
    }

    #[test]
    fn messages_say_which_header_and_why_without_the_secret() {
        let errors = [
            (missing("X-Sig"), "X-Sig: missing", "missing_header"),
            (
                malformed("webhook-timestamp", "a Unix time in seconds"),
                "webhook-timestamp: malformed (expected a Unix time in seconds)",
                "malformed_signature",
            ),
            (
                mismatch("Stripe-Signature"),
                "Stripe-Signature: no signature matches the body",
                "signature_mismatch",
            ),
            (
                stale("webhook-timestamp", 1000, 1400),
                "webhook-timestamp: the timestamp is 400s old, beyond the 300s tolerance",
                "stale_timestamp",
            ),
            (
                stale("Stripe-Signature", 1400, 1000),
                "Stripe-Signature: the timestamp is 400s in the future, beyond the 300s tolerance",
                "stale_timestamp",
            ),
        ];
        for (error, message, kind) in errors {
            let error = error.unwrap_err();
            assert_eq!((error.to_string().as_str(), error.kind()), (message, kind));
        }
    }
}
