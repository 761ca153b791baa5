//! The deployment files in `deploy/` hold against the real binary: the
//! command lines of the systemd unit and the container are ones alyx
//! accepts, every `ALYX_*` variable they set or name is a setting, and the
//! Kubernetes probes ask endpoints that answer. (Building
//! the image or applying the manifests needs a registry and a cluster,
//! which tests do not have.)

mod common;

use std::path::Path;

use alyx::config::SETTINGS;
use common::TempDir;
use common::alyx::Folder;
use serde_json::Value;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `alyx validate` with the settings of a `serve` command line (its folders
/// moved into `scratch`): accepted when every flag is a setting alyx knows.
fn settings_are_accepted(args: &[String], scratch: &TempDir) {
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
    let mut flags: Vec<String> = Vec::new();
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        assert!(flag.starts_with("--"), "{flag} in {args:?}");
        let value = rest.next().unwrap_or_else(|| panic!("{flag} has no value in {args:?}"));
        let value = match flag.as_str() {
            "--dir" | "--data-dir" => {
                scratch.path().join(value.trim_start_matches('/')).display().to_string()
            }
            _ => value.clone(),
        };
        flags.extend([flag.clone(), value]);
    }
    std::fs::create_dir_all(scratch.path().join("srv/alyx/functions")).unwrap();
    std::fs::create_dir_all(scratch.path().join("functions")).unwrap();
    let mut command = vec!["validate".to_string()];
    command.extend(flags);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let run = common::run::alyx_in(scratch.path(), &[], &command);
    run.expect(0);
}

#[test]
fn the_systemd_units_command_line_is_accepted() {
    let unit = read("deploy/alyx.service");
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart line");
    let args: Vec<String> = exec.split_whitespace().skip(1).map(String::from).collect();
    settings_are_accepted(&args, &TempDir::new("deploy"));
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_where_it_is_installed() {
    let Ok(probe) = std::process::Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd unit check: systemd-analyze is not installed");
        return;
    };
    assert!(probe.status.success());
    let scratch = TempDir::new("deploy");
    let binary = env!("CARGO_BIN_EXE_alyx");
    let unit = read("deploy/alyx.service").replace("/usr/local/bin/alyx", binary);
    scratch.write("alyx.service", &unit);
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", scratch.path().join("alyx.service").to_str().unwrap()])
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn the_containers_entrypoint_is_accepted() {
    let dockerfile = read("deploy/Dockerfile");
    let entrypoint = dockerfile.lines().find_map(|l| l.strip_prefix("ENTRYPOINT ")).expect("an ENTRYPOINT");
    let args: Vec<String> = serde_json::from_str(entrypoint).expect("ENTRYPOINT in exec form");
    assert_eq!(args[0], "/alyx");
    settings_are_accepted(&args[1..], &TempDir::new("deploy"));
}

/// The YAML documents of the Kubernetes manifest.
fn kubernetes_documents() -> Vec<Value> {
    let text = read("deploy/kubernetes/alyx.yaml");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("valid YAML"))
        .collect()
}

/// Fails naming `name` and where it was found unless it is the variable of
/// one of alyx's settings.
#[track_caller]
fn assert_is_setting(name: &str, found_in: &str) {
    let known: Vec<&str> = SETTINGS.iter().map(|s| s.env).collect();
    assert!(known.contains(&name), "{found_in}: {name} is not a setting of alyx (those are {known:?})");
}

#[test]
fn every_environment_variable_the_deployment_files_set_or_name_is_a_setting() {
    let containers = kubernetes_documents().into_iter().flat_map(|document| {
        document["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default()
    });
    let env: Vec<Value> = containers.flat_map(|c| c["env"].as_array().cloned().unwrap_or_default()).collect();
    assert!(!env.is_empty(), "the Deployment sets its keys from a Secret");
    for variable in &env {
        assert_is_setting(variable["name"].as_str().expect("env[].name"), "deploy/kubernetes/alyx.yaml env");
    }
    let unit = read("deploy/alyx.service");
    let assignments = unit.lines().filter_map(|l| l.strip_prefix("Environment="));
    for assignment in assignments.flat_map(str::split_whitespace) {
        let name = assignment.trim_matches('"').split_once('=').map_or(assignment, |(name, _)| name);
        assert_is_setting(name, "deploy/alyx.service Environment=");
    }
    // Comments name variables too (`ALYX_SCHEDULES=false` on all replicas
    // but one); `ALYX_*` alone stands for every setting.
    for file in ["deploy/alyx.service", "deploy/Dockerfile", "deploy/kubernetes/alyx.yaml"] {
        let text = read(file);
        let words = text.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
        for word in words.filter(|w| w.starts_with("ALYX_") && *w != "ALYX_") {
            assert_is_setting(word, file);
        }
    }
}

#[test]
fn the_kubernetes_probes_ask_endpoints_that_answer() {
    let documents = kubernetes_documents();
    let kinds: Vec<&str> = documents.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["Deployment", "PersistentVolumeClaim", "PersistentVolumeClaim", "Service"]);
    let container = &documents[0]["spec"]["template"]["spec"]["containers"][0];
    let ready = container["readinessProbe"]["httpGet"]["path"].as_str().unwrap();
    let live = container["livenessProbe"]["httpGet"]["path"].as_str().unwrap();
    assert_eq!(container["ports"][0]["containerPort"], 8090, "the Dockerfile's port");
    let alyx = Folder::new().serve(&[]);
    assert_eq!((alyx.get(ready).0, alyx.get(live).0), (200, 200), "{ready} and {live}");
}
