//! Tests of [`parse`](super::parse): whole manifests in, the typed result
//! and every problem (as the user reads it) out, with no file touched.

use super::check::every_field;
use super::*;
use crate::crypto::Secret;
use crate::testutil::TempDir;

/// A folder that does not exist: parsing must not need it.
const DIR: &str = "/nonexistent/functions/hello";

fn parse_text(text: &str) -> (Option<Unresolved>, Vec<String>) {
    let parsed = parse(Path::new(DIR), Path::new("functions/hello/manifest.yaml"), text);
    (parsed.manifest, parsed.problems.iter().map(ToString::to_string).collect())
}

#[test]
fn a_full_reference_manifest_loads() {
    let (m, problems) = parse_text(
        r#"
name: hello
runtime: wasm
entrypoint: handle
timeout: 30s
memory: 256mb
env: {KEY: value}
dependencies: []
config: {key: value}
allowed_hosts: ["api.example.com", "*.internal"]
build: {command: make, args: [], watch: ["src/**/*.c"], output: plugin.wasm}
routes: [{path: /hello, methods: [GET, post]}]
hooks:
  - {type: database, source: users, action: insert, mode: sync, config: {timeout: 5s}}
  - {type: webhook, verification: {type: hmac-sha256, header: X-Signature, secret: s3cret}}
schedules: [{name: nightly, type: cron, expression: "0 3 * * *", timezone: Europe/Berlin}]
"#,
    );
    assert!(problems.is_empty(), "{problems:?}");
    let m = m.unwrap();
    assert_eq!(
        (m.name.as_str(), m.timeout, m.memory),
        ("hello", Some(Duration::from_secs(30)), Some(256 << 20))
    );
    assert_eq!(m.routes[0].methods, ["GET", "POST"]);
    assert_eq!(m.hooks[0].event.timeout, Duration::from_secs(5));
    let webhook = m.hooks[1].webhook.as_ref().unwrap();
    let secret = Secret::new("s3cret");
    let header = "X-Signature".to_string();
    assert_eq!(webhook.verification.scheme, Scheme::Hmac { hash: HmacHash::Sha256, header, secret });
    assert!(m.build.as_ref().unwrap().watch[0].matches("src/lib/x.c"));
    assert_eq!(m.build.unwrap().output, Path::new(DIR).join("plugin.wasm"));
    assert_eq!(m.plugin, None, "no plugin named: discovery picks it");
}

#[test]
fn parsing_reads_no_file() {
    let folder = TempDir::new("manifest");
    folder.write("lone.wasm", "");
    std::os::unix::fs::symlink("/etc/hostname", folder.path().join("p.wasm")).unwrap();
    let text = "name: hello\nplugin: p.wasm\nbuild: {command: make}\ntimeout: 5s";
    let on_disk = parse(folder.path(), Path::new("m.yaml"), text);
    assert!(on_disk.problems.is_empty(), "links are for discovery to check: {:?}", on_disk.problems);
    let on_disk = on_disk.manifest.unwrap();
    assert_eq!(on_disk.plugin, Some(folder.path().join("p.wasm")));
    assert_eq!(on_disk.build.as_ref().unwrap().output, folder.path().join("plugin.wasm"));
    let nowhere = parse(Path::new(DIR), Path::new("m.yaml"), text).manifest.unwrap();
    let (dir, plugin, build) = (on_disk.dir.clone(), on_disk.plugin.clone(), on_disk.build.clone());
    assert_eq!(on_disk, Manifest { dir, plugin, build, ..nowhere }, "the same but for the folder");
    let unnamed = parse(folder.path(), Path::new("m.yaml"), "").manifest.unwrap();
    assert_eq!(unnamed.plugin, None, "the lone .wasm is for discovery to find");
}

#[test]
fn named_paths_are_handed_to_discovery() {
    let parsed = parse(Path::new(DIR), Path::new("m.yaml"), "plugin: p.wasm\nbuild: {command: make}");
    let paths: Vec<(&str, &str)> =
        parsed.paths.iter().map(|p| (p.field.as_str(), p.written.as_str())).collect();
    assert_eq!(paths, [("build.output", "plugin.wasm"), ("plugin", "p.wasm")]);
    assert_eq!(parsed.paths[1].path, Path::new(DIR).join("p.wasm"));
}

#[test]
fn every_known_field_is_read_without_a_warning() {
    let text = every_field(FIELDS, top_level_sample);
    let (m, problems) = parse_text(&text);
    assert!(problems.is_empty(), "{text}\n{problems:?}");
    assert!(m.is_some());
}

/// A valid value for each top-level field; a new field needs one here.
fn top_level_sample(key: &str) -> String {
    let sample = match key {
        "name" => "hello",
        "runtime" => "wasm",
        "entrypoint" => "run",
        "timeout" => "5s",
        "memory" => "1mb",
        "env" | "config" => "{a: b}",
        "dependencies" => "[x]",
        "allowed_hosts" => "[example.com]",
        "build" => return every_field(BUILD_FIELDS, build_sample),
        "plugin" => "p.wasm",
        "routes" => "[{path: /x}]",
        "hooks" => "[{type: auth}]",
        "schedules" => "[{name: n, type: interval, expression: 5m}]",
        other => panic!("no sample value for the new field `{other}`; add one"),
    };
    sample.to_string()
}

fn build_sample(key: &str) -> String {
    let sample = match key {
        "command" => "make",
        "args" => "[-s]",
        "watch" => "['src/*.c']",
        "output" => "out.wasm",
        other => panic!("no sample value for the new field `build.{other}`; add one"),
    };
    sample.to_string()
}

#[test]
fn errors_name_file_and_field_path() {
    let (m, problems) = parse_text("hooks: [{type: auth}, {type: webhook, verification: {header: X-Sig}}]");
    assert!(m.is_none());
    assert_eq!(problems, ["functions/hello/manifest.yaml: hooks[1].verification.secret: required"]);
}

#[test]
fn unknown_fields_are_warnings_with_a_hint() {
    let (m, problems) = parse_text("timout: 5s\nbuild: {command: make, outptu: x.wasm}");
    assert!(m.is_some());
    assert_eq!(
        problems,
        [
            "functions/hello/manifest.yaml: warning: timout: unknown field (did you mean `timeout`?); it is ignored",
            "functions/hello/manifest.yaml: warning: build.outptu: unknown field (did you mean `output`?); it is ignored",
        ]
    );
}

#[test]
fn paths_must_stay_inside_the_function_folder() {
    for text in [
        "build: {command: make, output: ../x.wasm}",
        "plugin: /etc/passwd",
        "build: {command: make, watch: [\"../**\"]}",
    ] {
        let (m, problems) = parse_text(text);
        assert!(m.is_none(), "{text}");
        assert!(problems[0].contains("function folder"), "{problems:?}");
    }
}

#[test]
fn the_name_is_handed_to_discovery_even_when_other_fields_fail() {
    let parsed = parse(Path::new(DIR), Path::new("m.yaml"), "name: stats\ntimeout: never");
    assert_eq!((parsed.manifest, parsed.name.as_deref()), (None, Some("stats")));
    let parsed = parse(Path::new("/nonexistent/reload"), Path::new("m.yaml"), "");
    assert_eq!(parsed.name.as_deref(), Some("reload"), "the folder's name when none is given");
}

#[test]
fn bad_values_are_reported_each() {
    let (m, problems) = parse_text(
        "name: Hello World\nruntime: python\ntimeout: soon\nmemory: 10\nschedules: [{name: x, type: cron, expression: nope}]",
    );
    assert!(m.is_none());
    let fields: Vec<&str> = problems.iter().map(|p| p.split(": ").nth(1).unwrap()).collect();
    assert_eq!(fields, ["name", "runtime", "timeout", "memory", "schedules[0].expression"]);
}

#[test]
fn empty_manifest_takes_defaults_from_the_folder() {
    let (m, problems) = parse_text("");
    assert!(problems.is_empty(), "{problems:?}");
    let m = m.unwrap();
    assert_eq!((m.name.as_str(), m.entrypoint.as_str()), ("hello", "handle"));
}

#[test]
fn invalid_yaml_is_one_error() {
    let (m, problems) = parse_text("name: [unclosed");
    assert!(m.is_none());
    assert!(problems[0].contains("not valid YAML"), "{problems:?}");
}

#[test]
fn host_patterns_are_checked_by_the_runtimes_rule() {
    let (m, problems) =
        parse_text(r#"allowed_hosts: ["**.example.com", "::1", "fe80::*", "a.**.com", "x.com:8080"]"#);
    assert!(m.is_none());
    assert_eq!(
        problems,
        [
            "functions/hello/manifest.yaml: allowed_hosts[3]: invalid pattern \"a.**.com\": `**` may only be the first label, as in **.example.com",
            "functions/hello/manifest.yaml: warning: allowed_hosts[4]: \"x.com:8080\" has a port, scheme or path; entries match host names only, so it never matches",
        ]
    );
}

#[test]
fn messages_repeat_at_most_80_characters_of_a_value() {
    let long = "root:x:0:0:root:/root:/bin/bash;".repeat(200);
    let key = "k".repeat(1000);
    let text = format!(
        "runtime: {long}\ntimeout: {long}\n{key}: 1\nenv: {{{key}: [1]}}\nroutes: [{{path: {long}}}]"
    );
    let (m, problems) = parse_text(&text);
    assert!(m.is_none());
    assert_eq!(problems.len(), 5, "{problems:?}");
    for problem in &problems {
        assert!(problem.len() < 250, "{problem}");
    }
    let start = &long[..80];
    assert_eq!(
        problems[1],
        format!(
            "functions/hello/manifest.yaml: runtime: \"{start}\"… (6400 bytes) is not supported; alyx runs `wasm` functions only"
        )
    );
}

// --- webhooks -----------------------------------------------------------------

/// The environment the webhook tests see: only `HOOK_SECRET` and `EMPTY`.
fn test_env(name: &str) -> Result<String, std::env::VarError> {
    match name {
        "HOOK_SECRET" => Ok("from-the-environment".into()),
        "EMPTY" => Ok(String::new()),
        _ => Err(std::env::VarError::NotPresent),
    }
}

/// `hooks: [<hook>]` parsed with [`test_env`]: the webhook, and the problems.
fn parse_webhook(hook: &str) -> (Option<Webhook>, Vec<String>) {
    let text = format!("hooks: [{hook}]");
    let parsed = parse_in(Path::new(DIR), Path::new("m.yaml"), &text, test_env);
    let webhook = parsed.manifest.and_then(|m| m.hooks.into_iter().next()?.webhook);
    (webhook, parsed.problems.iter().map(ToString::to_string).collect())
}

#[track_caller]
fn webhook(hook: &str) -> Webhook {
    let (webhook, problems) = parse_webhook(hook);
    assert!(problems.is_empty(), "{hook}\n{problems:?}");
    webhook.unwrap()
}

#[track_caller]
fn refused(hook: &str) -> Vec<String> {
    let (webhook, problems) = parse_webhook(hook);
    assert!(webhook.is_none(), "{hook} was accepted");
    problems
}

#[test]
fn a_webhook_takes_its_path_from_the_function_and_post() {
    let w = webhook("{type: webhook, verification: {type: stripe, secret: whsec_abc}}");
    assert_eq!(
        (w.path.as_str(), w.methods.as_slice()),
        ("/api/webhooks/hello", ["POST".to_string()].as_slice())
    );
    let header = "Stripe-Signature".to_string();
    let scheme = Scheme::Stripe { header, secret: Secret::new("whsec_abc"), tolerance: DEFAULT_TOLERANCE };
    assert_eq!(w.verification, Verification { scheme, skip_invalid: false });
    assert_eq!(DEFAULT_TOLERANCE, Duration::from_secs(300));
}

#[test]
fn a_webhook_reads_its_config_and_every_verification_field() {
    let w = webhook(
        "{type: webhook, config: {path: /in/orders, methods: [put, post], timeout: 2s},
          verification: {type: hmac-sha1, header: X-Hub-Signature, secret: k, skip_invalid: true}}",
    );
    assert_eq!(
        (w.path.as_str(), w.methods.as_slice()),
        ("/in/orders", ["PUT".to_string(), "POST".into()].as_slice())
    );
    let scheme =
        Scheme::Hmac { hash: HmacHash::Sha1, header: "X-Hub-Signature".into(), secret: Secret::new("k") };
    assert_eq!(w.verification, Verification { scheme, skip_invalid: true });
    let w = webhook("{type: webhook, verification: {type: stripe, secret: k, tolerance: 30s}}");
    assert_eq!(w.verification.scheme.tolerance(), Some(Duration::from_secs(30)));
}

#[test]
fn a_webhook_without_verification_is_refused_with_the_way_out() {
    assert_eq!(
        refused("{type: webhook}"),
        [
            "m.yaml: hooks[0].verification: required for webhook hooks (write `verification: {type: none}` to accept unsigned requests)"
        ]
    );
}

#[test]
fn verification_type_none_is_accepted_with_a_warning() {
    let (w, problems) = parse_webhook("{type: webhook, verification: {type: none}}");
    assert_eq!(w.unwrap().verification.scheme, Scheme::None);
    assert_eq!(
        problems,
        [
            "m.yaml: warning: hooks[0].verification.type: none: requests are not verified; anyone who knows the path can call the function"
        ]
    );
}

#[test]
fn an_unknown_verification_type_names_the_known_ones() {
    assert_eq!(
        refused("{type: webhook, verification: {type: md5, secret: k}}"),
        [
            "m.yaml: hooks[0].verification.type: \"md5\" is not a verification type (use hmac-sha256, hmac-sha1, stripe, standard-webhooks or none)"
        ]
    );
}

#[test]
fn hmac_types_need_a_header_and_every_type_but_none_a_secret() {
    assert_eq!(
        refused("{type: webhook, verification: {type: hmac-sha256, secret: k}}"),
        [
            "m.yaml: hooks[0].verification.header: required: the header that carries the signature, like X-Hub-Signature-256"
        ]
    );
    for kind in ["hmac-sha1", "stripe", "standard-webhooks"] {
        let problems = refused(&format!("{{type: webhook, verification: {{type: {kind}, header: X-Sig}}}}"));
        assert_eq!(problems.last().unwrap(), "m.yaml: hooks[0].verification.secret: required", "{kind}");
    }
    assert_eq!(
        refused("{type: webhook, verification: {type: hmac-sha1, header: 'X Sig', secret: k}}"),
        ["m.yaml: hooks[0].verification.header: \"X Sig\" is not a header name"]
    );
}

#[test]
fn a_secret_can_come_from_the_environment() {
    let w = webhook("{type: webhook, verification: {type: stripe, secret: '${HOOK_SECRET}'}}");
    let Scheme::Stripe { secret, .. } = w.verification.scheme else { panic!("not stripe") };
    assert_eq!(secret.expose(), b"from-the-environment");
}

#[test]
fn an_unset_or_empty_secret_variable_names_the_field_and_the_variable() {
    for (name, problem) in [("UNSET", "is not set"), ("EMPTY", "is empty")] {
        let hook = format!("{{type: webhook, verification: {{type: stripe, secret: '${{{name}}}'}}}}");
        assert_eq!(
            refused(&hook),
            [format!("m.yaml: hooks[0].verification.secret: the environment variable \"{name}\" {problem}")]
        );
    }
    assert_eq!(
        refused("{type: webhook, verification: {type: stripe, secret: '${NOT A NAME}'}}"),
        [
            "m.yaml: hooks[0].verification.secret: `${...}` must name an environment variable (letters, digits and _)"
        ]
    );
}

#[test]
fn a_standard_webhooks_secret_is_the_decoded_key() {
    for written in ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
        let w = webhook(&format!(
            "{{type: webhook, verification: {{type: standard-webhooks, secret: {written}}}}}"
        ));
        let Scheme::StandardWebhooks { secret, .. } = w.verification.scheme else { panic!("not standard") };
        assert_eq!(
            secret.expose(),
            crate::crypto::base64_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
        );
    }
    let problems = refused(
        "{type: webhook, verification: {type: standard-webhooks, secret: 'whsec_not base64!hunter2'}}",
    );
    assert_eq!(
        problems,
        [
            "m.yaml: hooks[0].verification.secret: must be whsec_ followed by the key in base64, as the sender gives it"
        ]
    );
}

#[test]
fn fields_a_scheme_does_not_use_are_warnings() {
    let (w, problems) = parse_webhook(
        "{type: webhook, verification: {type: standard-webhooks, header: X-Sig, secret: whsec_YWJj}}",
    );
    assert!(w.is_some());
    assert_eq!(
        problems,
        [
            "m.yaml: warning: hooks[0].verification.header: standard-webhooks always reads webhook-id, webhook-timestamp and webhook-signature; it is ignored"
        ]
    );
    let (w, problems) = parse_webhook(
        "{type: webhook, verification: {type: hmac-sha256, header: X-Sig, secret: k, tolerance: 1m}}",
    );
    assert!(w.is_some());
    assert_eq!(
        problems,
        [
            "m.yaml: warning: hooks[0].verification.tolerance: only stripe and standard-webhooks sign a timestamp; it is ignored"
        ]
    );
}

#[test]
fn a_webhook_path_is_checked_like_a_route_path_and_methods_are_known_ones() {
    let verification = "verification: {type: none}";
    for (path, problem) in [
        ("in", "must start with /"),
        ("/in//orders", "has an empty segment (//)"),
        ("/in/../admin", "has a . or .. segment"),
        ("'/in?x=1'", "segment \"in?x=1\" has characters a path cannot hold as they are"),
    ] {
        let problems = refused(&format!("{{type: webhook, config: {{path: {path}}}, {verification}}}"));
        let written = path.trim_matches('\'');
        assert_eq!(problems[0], format!("m.yaml: hooks[0].config.path: {problem} (got \"{written}\")"));
    }
    let problems = refused(&format!("{{type: webhook, config: {{methods: [POST, FETCH]}}, {verification}}}"));
    assert_eq!(problems[0], "m.yaml: hooks[0].config.methods[1]: unknown HTTP method \"FETCH\"");
    let (root, _) = parse_webhook(&format!("{{type: webhook, config: {{path: /}}, {verification}}}"));
    assert_eq!(root.unwrap().path, "/");
}

#[test]
fn no_secret_is_ever_printed() {
    let text = "hooks:
  - {type: webhook, verification: {type: hmac-sha256, header: X-Sig, secret: literal-hunter2}}
  - {type: webhook, verification: {type: stripe, secret: '${HOOK_SECRET}'}}
  - {type: webhook, verification: {type: standard-webhooks, secret: whsec_aHVudGVyMw==}}
  - {type: webhook, verification: {type: standard-webhooks, secret: 'whsec_hunter4!'}}";
    let parsed = parse_in(Path::new(DIR), Path::new("m.yaml"), text, test_env);
    let good = parse_in(Path::new(DIR), Path::new("m.yaml"), &text[..text.rfind("\n").unwrap()], test_env);
    assert!(good.manifest.is_some(), "{:?}", good.problems);
    let printed = format!("{parsed:?}\n{good:?}\n{:#?}", good.manifest);
    for secret in ["hunter2", "from-the-environment", "hunter3", "aHVudGVyMw", "hunter4"] {
        assert!(!printed.contains(secret), "{secret} printed in:\n{printed}");
    }
    assert!(printed.contains("secret: <redacted>"), "{printed}");
}
