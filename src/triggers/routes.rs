//! The table of user routes and webhooks, built from the manifests of the
//! loaded versions: reserved paths and conflicts become manifest problems,
//! and a request's method and path find the mount that serves it. Pure: the
//! caller says which functions held which paths before, so a function
//! already serving a path keeps it when another claims the same one.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::path::{Params, Pattern};
use crate::manifest::{FILE_NAME, Manifest, Problem, RouteAccess, Severity, Webhook};

/// Paths alyx serves itself; routes may not claim them.
const RESERVED: &[&str] = &["/api", "/health", "/metrics"];

/// Where webhooks may live under `/api/`.
const WEBHOOKS: &str = "/api/webhooks";

/// What a mount is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A `routes` entry, with who may call it.
    Route(RouteAccess),
    /// A webhook hook: public, proven by its signature.
    Webhook(Webhook),
}

/// One route or webhook of one function, mounted for some of its methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub function: String,
    pub pattern: Pattern,
    pub methods: Vec<String>,
    pub kind: Kind,
}

/// The routes being served.
#[derive(Debug, Default)]
pub struct RouteTable {
    mounts: Vec<Mount>,
}

/// What a request's method and path find.
#[derive(Debug, PartialEq)]
pub enum Lookup<'t> {
    Found {
        mount: &'t Mount,
        params: Params,
    },
    /// The path is a route's, not with this method; what `Allow` lists.
    MethodNotAllowed {
        allow: String,
    },
    Missing,
}

/// One claim of a method on a path shape.
struct Claim<'m> {
    manifest: &'m Manifest,
    /// Where in the manifest: `routes[0].path`, `hooks[1].config.path`.
    field: String,
    pattern: Pattern,
    method: String,
    kind: Kind,
}

impl RouteTable {
    /// Mounts the routes of `manifests` (one per loaded function). Where two
    /// claim the same method and path, `previous`'s holder keeps it, else
    /// the first by function name.
    pub fn build(manifests: &[Arc<Manifest>], previous: &RouteTable) -> (RouteTable, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut claims = claims(manifests, &mut problems);
        let held =
            |c: &Claim| previous.holder(&c.pattern.shape(), &c.method) == Some(c.manifest.name.as_str());
        claims.sort_by_key(|c| (!held(c), c.manifest.name.clone(), c.field.clone()));
        let mut owners: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut won: BTreeMap<(String, String), Mount> = BTreeMap::new();
        for claim in claims {
            let key = (claim.pattern.shape(), claim.method.clone());
            if let Some(owner) = owners.get(&key) {
                problems.push(conflict(&claim, owner));
                continue;
            }
            owners.insert(key, claim.manifest.name.clone());
            mount(&mut won, claim);
        }
        (RouteTable { mounts: won.into_values().collect() }, problems)
    }

    /// Which function serves `method` on paths of `shape`.
    fn holder(&self, shape: &str, method: &str) -> Option<&str> {
        let serves = |m: &&Mount| m.pattern.shape() == shape && m.methods.iter().any(|x| x == method);
        self.mounts.iter().find(serves).map(|m| m.function.as_str())
    }

    /// The most specific route whose pattern matches `path`, then its
    /// method (`HEAD` is served by a `GET` route).
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_> {
        let matching: Vec<(&Mount, Params)> =
            self.mounts.iter().filter_map(|m| m.pattern.matches(path).map(|p| (m, p))).collect();
        let Some(best) = matching.iter().map(|(m, _)| m.pattern.rank()).min() else { return Lookup::Missing };
        let best: Vec<(&Mount, Params)> =
            matching.into_iter().filter(|(m, _)| m.pattern.rank() == best).collect();
        let serves = |m: &Mount, method: &str| m.methods.iter().any(|x| x == method);
        let found = best.iter().find(|(m, _)| serves(m, method)).or_else(|| match method {
            "HEAD" => best.iter().find(|(m, _)| serves(m, "GET")),
            _ => None,
        });
        match found {
            Some((mount, params)) => Lookup::Found { mount, params: params.clone() },
            None => Lookup::MethodNotAllowed { allow: allow(best.iter().map(|(m, _)| *m)) },
        }
    }

    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }
}

/// Every (path, method) the manifests ask for, minus reserved paths.
fn claims<'m>(manifests: &'m [Arc<Manifest>], problems: &mut Vec<Problem>) -> Vec<Claim<'m>> {
    let mut claims = Vec::new();
    for manifest in manifests {
        let routes = manifest
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("routes[{i}].path"), &r.path, &r.methods, Kind::Route(r.access)));
        let hooks = manifest.hooks.iter().enumerate().filter_map(|(i, h)| {
            let w = h.webhook.as_ref()?;
            Some((format!("hooks[{i}].config.path"), &w.path, &w.methods, Kind::Webhook(w.clone())))
        });
        for (field, path, methods, kind) in routes.chain(hooks) {
            let Ok(pattern) = Pattern::parse(path) else { continue };
            if reserved(path, &kind) {
                let message = format!("{path} is reserved for alyx's own API (/api/, /health, /metrics)");
                problems.push(problem(manifest, &field, message));
                continue;
            }
            for method in methods {
                let kind = kind.clone();
                claims.push(Claim {
                    manifest,
                    field: field.clone(),
                    pattern: pattern.clone(),
                    method: method.clone(),
                    kind,
                });
            }
        }
    }
    claims
}

/// Routes stay out of alyx's paths; webhooks may also live under
/// `/api/webhooks/`.
fn reserved(path: &str, kind: &Kind) -> bool {
    let under =
        |root: &str| path == root || path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'));
    let webhook_home = matches!(kind, Kind::Webhook(_)) && path.starts_with(&format!("{WEBHOOKS}/"));
    !webhook_home && RESERVED.iter().any(|r| under(r))
}

fn mount(won: &mut BTreeMap<(String, String), Mount>, claim: Claim) {
    let key = (claim.manifest.name.clone(), claim.field.clone());
    let entry = won.entry(key).or_insert_with(|| Mount {
        function: claim.manifest.name.clone(),
        pattern: claim.pattern.clone(),
        methods: Vec::new(),
        kind: claim.kind.clone(),
    });
    entry.methods.push(claim.method);
}

fn conflict(claim: &Claim, owner: &str) -> Problem {
    let message = format!(
        "{} {} is already served by function {owner:?}; function {:?} does not get it",
        claim.method, claim.pattern, claim.manifest.name
    );
    problem(claim.manifest, &claim.field, message)
}

fn problem(manifest: &Manifest, field: &str, message: String) -> Problem {
    Problem {
        file: manifest.dir.join(FILE_NAME),
        field: field.to_string(),
        message,
        severity: Severity::Error,
    }
}

/// `GET, HEAD, POST`: every method of `mounts`, and HEAD where GET is.
fn allow<'m>(mounts: impl Iterator<Item = &'m Mount>) -> String {
    let mut methods: Vec<&str> = mounts.flat_map(|m| m.methods.iter().map(String::as_str)).collect();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods.sort_unstable();
    methods.dedup();
    methods.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Route;

    fn manifest(name: &str, routes: &[(&str, &[&str])]) -> Arc<Manifest> {
        let mut m = crate::manifest::defaults(std::path::Path::new(name), name, "plugin.wasm".into());
        m.routes = routes
            .iter()
            .map(|(path, methods)| Route {
                path: path.to_string(),
                methods: methods.iter().map(|x| x.to_string()).collect(),
                access: RouteAccess::Default,
            })
            .collect();
        Arc::new(m)
    }

    fn found<'t>(table: &'t RouteTable, method: &str, path: &str) -> (&'t str, Params) {
        match table.lookup(method, path) {
            Lookup::Found { mount, params } => (mount.function.as_str(), params),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn the_most_specific_route_serves_and_other_methods_get_405() {
        let fns = [
            manifest("a", &[("/users/{id}", &["GET"]), ("/users/me", &["GET", "POST"])]),
            manifest("b", &[("/files/{path...}", &["GET"])]),
        ];
        let (table, problems) = RouteTable::build(&fns, &RouteTable::default());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(found(&table, "GET", "/users/7"), ("a", vec![("id".into(), "7".into())]));
        assert_eq!(found(&table, "POST", "/users/me").1, vec![]);
        assert_eq!(found(&table, "HEAD", "/files/x/y").0, "b");
        assert_eq!(
            table.lookup("DELETE", "/users/7"),
            Lookup::MethodNotAllowed { allow: "GET, HEAD".into() }
        );
        assert_eq!(table.lookup("GET", "/nowhere"), Lookup::Missing);
    }

    #[test]
    fn reserved_paths_are_problems_naming_the_field() {
        let fns = [manifest("a", &[("/ok", &["GET"]), ("/api/x", &["GET"]), ("/health", &["GET"])])];
        let (table, problems) = RouteTable::build(&fns, &RouteTable::default());
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["routes[1].path", "routes[2].path"]);
        assert!(problems[0].message.contains("reserved"), "{}", problems[0]);
        assert_eq!(table.mounts().len(), 1);
        let route = Kind::Route(RouteAccess::Default);
        assert!(
            !reserved("/apis", &route) && !reserved("/healthy", &route) && reserved("/metrics/x", &route)
        );
        assert!(reserved("/api/webhooks/x", &route), "routes stay out of /api/");
    }

    #[test]
    fn a_conflict_goes_to_the_first_by_name_then_stays_with_its_holder() {
        let b = manifest("b", &[("/hello/{name}", &["GET", "POST"])]);
        let (table, problems) = RouteTable::build(std::slice::from_ref(&b), &RouteTable::default());
        assert!(problems.is_empty());
        let a = manifest("a", &[("/hello/{who}", &["GET"])]);
        let (table, problems) = RouteTable::build(&[a.clone(), b.clone()], &table);
        assert_eq!(found(&table, "GET", "/hello/x").0, "b", "the function already serving keeps it");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("already served by function \"b\""), "{}", problems[0]);
        assert!(problems[0].file.ends_with("a/manifest.yaml"));
        let (fresh, _) = RouteTable::build(&[a, b], &RouteTable::default());
        assert_eq!(found(&fresh, "GET", "/hello/x").0, "a", "at start: the first by name");
        assert_eq!(found(&fresh, "POST", "/hello/x").0, "b", "a method nobody else claims is mounted");
    }
}
