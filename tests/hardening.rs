//! The findings of the security and robustness probe (issue 8), each shown
//! against the real binary: what a function folder may make alyx read
//! (finding 8), which hosts `allowed_hosts` lets a plugin reach (finding
//! 11), and how output that is not text travels over HTTP (finding 12).

mod common;

use std::os::unix::fs::symlink;

use serde_json::{Value, json};

use common::alyx::Folder;
use common::run::alyx;
use common::{TempDir, TestServer, plugin_path};

/// A line that must never come back from alyx, whatever file holds it.
const SECRET: &str = "root:x:0:0:SECRET-do-not-echo:/root:/bin/bash";

/// Finding 8: a function folder can point alyx at files outside it through
/// a default plugin or its manifest, and what alyx read came back in
/// messages. Now every path is held inside the folder, manifests are
/// bounded, and no message repeats a file's text.
#[test]
fn finding_8_nothing_outside_a_function_folder_is_read_or_echoed() {
    let outside = TempDir::new("outside");
    let secret = outside.write("secret.txt", format!("{SECRET}\nmore\n"));
    let foreign = outside.write("manifest.yaml", format!("name: foreign\nruntime: {SECRET}\n"));
    let folder = Folder::new()
        .function("fine", "echo.wat", "echo", "")
        .file("default/manifest.yaml", "")
        .file("bare/readme.txt", "")
        .file("text/manifest.yaml", "plugin: plugin.wat")
        .file("text/plugin.wat", &format!("{SECRET}\n"))
        .file("huge/manifest.yaml", &format!("name: huge\n# {}\n", "x".repeat(2 << 20)));
    let root = folder.0.to_path_buf();
    symlink(&secret, root.join("default/plugin.wasm")).unwrap();
    symlink(&secret, root.join("bare/only.wasm")).unwrap();
    std::fs::create_dir(root.join("linked")).unwrap();
    symlink(&foreign, root.join("linked/manifest.yaml")).unwrap();
    let alyx = folder.serve(&[]);

    let (_, _, listing) = alyx.request("GET", "/api/functions", &[], b"");
    let listing = String::from_utf8(listing).unwrap();
    assert!(!listing.contains("SECRET"), "{listing}");
    let listing: Value = serde_json::from_str(&listing).unwrap();
    let names: Vec<&str> =
        listing["functions"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fine", "text"]);
    let problems: Vec<String> = listing["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().replacen(&format!("{}/", root.display()), "", 1))
        .collect();
    let linked_to = |path: &std::path::Path| path.canonicalize().unwrap().display().to_string();
    assert_eq!(
        problems,
        [
            format!(
                "bare: plugin: must stay inside the function folder (\"only.wasm\" is a link to {})",
                linked_to(&secret)
            ),
            format!(
                "default/manifest.yaml: plugin: must stay inside the function folder (\"plugin.wasm\" is a link to {})",
                linked_to(&secret)
            ),
            format!(
                "huge/manifest.yaml: is {} bytes; a manifest may have at most 1 MiB (is this the right file?)",
                11 + (2 << 20) + 3
            ),
            format!(
                "linked/manifest.yaml: must stay inside the function folder (it is a link to {})",
                linked_to(&foreign)
            ),
        ]
    );

    let (_, text) = alyx.get("/api/functions/text");
    assert_eq!(text["status"], "failed");
    assert_eq!(
        text["last_error"],
        "cannot load plugin: not a Wasm binary, and not valid WAT text: expected `(` at line 1, column 1"
    );
}

/// Runs `http.wat`'s `status` export through `alyx call` with `url` as the
/// request and `patterns` as `--allow-host`; returns (exit code, stdout, stderr).
fn call_status(url: &str, headers: Value, patterns: &[&str]) -> (Option<i32>, String, String) {
    let input = json!({"url": url, "headers": headers}).to_string();
    let plugin = plugin_path("http.wat");
    let mut args = vec!["call", plugin.as_str(), "status", "--input", &input, "--timeout", "5s"];
    for pattern in patterns {
        args.extend(["--allow-host", pattern]);
    }
    let run = alyx(&args, None);
    (run.code(), run.stdout(), run.stderr())
}

/// Finding 11: `*` in `allowed_hosts` spanned dots, so `10.0.0.*` allowed
/// `10.0.0.1.attacker.example` (any address its owner likes), and a
/// plugin's own `Host` header was sent. Denials happen before any lookup,
/// so no network is needed to see them.
#[test]
fn finding_11_allowed_hosts_match_within_labels_and_ip_patterns_match_ips_only() {
    for (pattern, url) in [
        ("127.0.0.*", "http://127.0.0.1.attacker.example/"),
        ("*.example", "http://a.b.example/"),
        ("**.example", "http://example/"),
    ] {
        let (code, _, stderr) = call_status(url, json!({}), &[pattern]);
        let host = url.trim_start_matches("http://").trim_end_matches('/');
        let denied = format!("denied: host {host:?} is not in allowed_hosts");
        assert!(code == Some(1) && stderr.contains(&denied), "{pattern} {url}: {code:?} {stderr}");
    }

    let server = TestServer::start(1, |_| (200, Vec::new(), b"ok".to_vec()));
    let url = server.url("/ip");
    let (code, stdout, stderr) = call_status(&url, json!({"Host": "internal.example"}), &["127.0.0.*"]);
    assert_eq!((code, stdout.as_str()), (Some(0), "200"), "{stderr}");
    let seen = server.next_request();
    let hosts: Vec<&str> =
        seen.headers.iter().filter(|(k, _)| k == "host").map(|(_, v)| v.as_str()).collect();
    assert_eq!(hosts, [server.addr.to_string()], "the URL's host, not the plugin's");
}

/// Finding 12: output that was not JSON became a JSON string, so 3 MiB of
/// NUL bytes (`\u0000`, six bytes each) became an 18 MiB response, and
/// bytes that were not UTF-8 were replaced. Now such output is base64.
#[test]
fn finding_12_output_that_is_not_text_is_base64_and_stays_small() {
    let zeros = 3 << 20;
    let alyx = Folder::new()
        .function("zeros", "output.wat", "zeros", "")
        .function("bytes", "output.wat", "not_utf8", "")
        .serve(&[]);

    let (status, _, body) = alyx.request("POST", "/api/functions/zeros", &[], b"");
    assert_eq!(status, 200);
    assert!(body.len() <= 2 * zeros, "{} bytes for {zeros} bytes of output", body.len());
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (envelope["success"].clone(), envelope["output_encoding"].clone()),
        (json!(true), json!("base64"))
    );
    let output = envelope["output"].as_str().unwrap();
    assert!(output.len() == zeros / 3 * 4 && output.bytes().all(|b| b == b'A'), "base64 of zeros is all A");

    let (status, envelope) = alyx.post("/api/functions/bytes", "");
    assert_eq!(status, 200);
    assert_eq!(
        (envelope["output"].clone(), envelope["output_encoding"].clone()),
        (json!("//4AQQ=="), json!("base64"))
    );
}
