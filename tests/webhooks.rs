//! Signed webhooks against the real binary: each scheme signed right and
//! wrong (signatures computed here from fixed secrets), stale timestamps,
//! `skip_invalid`, `${ENV}` secrets, and secrets never shown.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use alyx::crypto::{base64, hex, hmac_sha1, hmac_sha256};
use serde_json::Value;

use common::alyx::{Alyx, Folder};

const SECRET: &str = "It's a Secret to Everybody";
const BODY: &[u8] = br#"{"event": "push", "n": 1}"#;

/// A function echoing its envelope, with one webhook hook.
fn hooked(folder: Folder, name: &str, hook: &str) -> Folder {
    folder.function(name, "echo.wat", "echo", &format!("hooks:\n  - {hook}\n"))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn post(alyx: &Alyx, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let (status, _, body) = alyx.request("POST", path, headers, body);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Calls the function has had (the stats count every call).
fn calls(alyx: &Alyx, name: &str) -> u64 {
    alyx.get("/api/functions/stats").1["functions"][name]["calls"].as_u64().unwrap_or(0)
}

fn server() -> Alyx {
    let folder = Folder::new().env("GH_SECRET", SECRET);
    let folder = hooked(
        folder,
        "github",
        r#"{type: webhook, config: {path: /hooks/github}, verification: {type: hmac-sha256, header: X-Hub-Signature-256, secret: "${GH_SECRET}"}}"#,
    );
    let folder = hooked(
        folder,
        "legacy",
        &format!(
            r#"{{type: webhook, verification: {{type: hmac-sha1, header: X-Signature, secret: "{SECRET}"}}}}"#
        ),
    );
    let folder = hooked(
        folder,
        "shop",
        &format!(
            r#"{{type: webhook, verification: {{type: hmac-sha256, header: X-Shopify-Hmac-Sha256, secret: "{SECRET}"}}}}"#
        ),
    );
    let folder = hooked(
        folder,
        "stripe",
        &format!(
            r#"{{type: webhook, config: {{path: /stripe}}, verification: {{type: stripe, secret: "{SECRET}"}}}}"#
        ),
    );
    let key = base64(b"a standard webhooks key");
    let folder = hooked(
        folder,
        "std",
        &format!(r#"{{type: webhook, verification: {{type: standard-webhooks, secret: "whsec_{key}"}}}}"#),
    );
    let folder = hooked(
        folder,
        "lenient",
        &format!(
            r#"{{type: webhook, verification: {{type: hmac-sha256, header: X-Sig, secret: "{SECRET}", skip_invalid: true}}}}"#
        ),
    );
    folder.serve(&["--api-keys", "k1"])
}

#[test]
fn hmac_signatures_in_each_format_are_accepted_and_wrong_ones_refused() {
    let alyx = server();
    let sha256 = hmac_sha256(SECRET.as_bytes(), BODY);
    let github = format!("sha256={}", hex(&sha256));
    let (status, body) = post(&alyx, "/hooks/github", &[("X-Hub-Signature-256", &github)], BODY);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["input"]["trigger"].as_str(), body["input"]["verified"].as_bool()),
        (Some("webhook"), Some(true))
    );
    assert_eq!(body["input"]["json"]["event"], "push");
    let sha1 = hex(&hmac_sha1(SECRET.as_bytes(), BODY));
    assert_eq!(post(&alyx, "/api/webhooks/legacy", &[("X-Signature", &sha1)], BODY).0, 200, "bare hex");
    let shopify = base64(&sha256);
    assert_eq!(
        post(&alyx, "/api/webhooks/shop", &[("X-Shopify-Hmac-Sha256", &shopify)], BODY).0,
        200,
        "base64"
    );
    let before = calls(&alyx, "github");
    let tampered =
        post(&alyx, "/hooks/github", &[("X-Hub-Signature-256", &github)], b"{\"event\": \"forged\"}");
    assert_eq!((tampered.0, tampered.1["error"]["code"].as_str()), (401, Some("INVALID_SIGNATURE")));
    assert_eq!(post(&alyx, "/hooks/github", &[], BODY).0, 401, "no signature");
    let wrong = format!("sha256={}", hex(&hmac_sha256(b"another secret", BODY)));
    assert_eq!(post(&alyx, "/hooks/github", &[("X-Hub-Signature-256", &wrong)], BODY).0, 401);
    assert_eq!(calls(&alyx, "github"), before, "refused deliveries never reach the function");
}

#[test]
fn stripe_and_standard_webhooks_check_the_signature_and_the_timestamp() {
    let alyx = server();
    let stripe = |t: u64| {
        let signed = [t.to_string().as_bytes(), b".", BODY].concat();
        format!("t={t},v1={}", hex(&hmac_sha256(SECRET.as_bytes(), &signed)))
    };
    assert_eq!(post(&alyx, "/stripe", &[("Stripe-Signature", &stripe(now()))], BODY).0, 200);
    let stale = post(&alyx, "/stripe", &[("Stripe-Signature", &stripe(now() - 3600))], BODY);
    assert_eq!(stale.0, 401, "a replay an hour later: {}", stale.1);
    let standard = |t: u64| {
        let signed = [format!("msg_1.{t}.").as_bytes(), BODY].concat();
        format!("v1,{}", base64(&hmac_sha256(b"a standard webhooks key", &signed)))
    };
    let headers = |t: u64, signature: String| {
        vec![
            ("webhook-id".to_string(), "msg_1".to_string()),
            ("webhook-timestamp".into(), t.to_string()),
            ("webhook-signature".into(), signature),
        ]
    };
    let send = |h: Vec<(String, String)>| {
        let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        post(&alyx, "/api/webhooks/std", &h, BODY).0
    };
    assert_eq!(send(headers(now(), standard(now()))), 200);
    assert_eq!(send(headers(now() + 3600, standard(now() + 3600))), 401, "from the future");
    assert_eq!(send(headers(now(), "v1,AAAA".into())), 401);
}

#[test]
fn skip_invalid_delivers_marked_unverified() {
    let alyx = server();
    let (status, body) = post(&alyx, "/api/webhooks/lenient", &[("X-Sig", "nope")], BODY);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["input"]["verified"], false);
    assert!(body["input"]["verification_error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
}

#[test]
fn webhooks_need_no_api_key_and_secrets_are_never_shown() {
    let alyx = server();
    let sha256 = format!("sha256={}", hex(&hmac_sha256(SECRET.as_bytes(), BODY)));
    assert_eq!(
        post(&alyx, "/hooks/github", &[("X-Hub-Signature-256", &sha256)], BODY).0,
        200,
        "its signature is its key"
    );
    let (status, _, listing) = alyx.request("GET", "/api/functions", &[("Authorization", "Bearer k1")], b"");
    let listing = String::from_utf8(listing).unwrap();
    assert_eq!(status, 200);
    assert!(listing.contains("<redacted>") && !listing.contains(SECRET), "{listing}");
    post(&alyx, "/hooks/github", &[("X-Hub-Signature-256", "sha256=00")], BODY);
    let (_, stderr) = alyx.terminate();
    assert!(!stderr.contains(SECRET), "a secret in the log: {stderr}");
}

#[test]
fn an_unset_secret_variable_is_a_manifest_problem() {
    let folder = hooked(
        Folder::new(),
        "broken",
        r#"{type: webhook, verification: {type: hmac-sha256, header: X-Sig, secret: "${ALYX_TEST_UNSET_SECRET}"}}"#,
    );
    let alyx = folder.serve(&[]);
    let problems = alyx.get("/api/functions").1["problems"].to_string();
    assert!(problems.contains("ALYX_TEST_UNSET_SECRET"), "{problems}");
    assert_eq!(post(&alyx, "/api/webhooks/broken", &[], BODY).0, 404, "not mounted");
}

#[test]
fn a_webhooks_timeout_ends_its_call_before_the_functions() {
    let hook = "hooks: [{type: webhook, config: {path: /in, timeout: 300ms}, verification: {type: none}}]\ntimeout: 30s\n";
    let alyx = Folder::new().function("slow", "loop.wat", "spin", hook).serve(&[]);
    let started = std::time::Instant::now();
    let (status, body) = post(&alyx, "/in", &[], BODY);
    assert_eq!((status, body["error"]["code"].clone()), (504, serde_json::json!("TIMEOUT")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("300 ms"), "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the hook's 300 ms, not the function's 30 s"
    );
}
