//! The `allowed_hosts` policy: which hosts a plugin's outbound HTTP may
//! reach, decided on the URL's host alone (no port, no DNS).
//!
//! Patterns match label by label, so a wildcard never crosses a dot:
//! `*.example.com` allows `a.example.com` but not `a.b.example.com`, which
//! `**.example.com` allows (`**` as the first label stands for one label or
//! more). Within a label `*`, `?` and `[...]` are glob wildcards, and case
//! is ignored. A lone `*` allows every host, as in Extism.
//!
//! Names and IP addresses never match each other: a pattern without letters
//! (`10.0.0.*`) or with a `:` (`::1`, `fe80::*`) matches IP literals only,
//! and any other pattern matches names only. Without that, `10.0.0.*` read
//! as a name glob would allow `10.0.0.1.attacker.example`, which resolves
//! wherever its owner likes.

use std::net::IpAddr;

/// Case is ignored; a label holds no separator, so the rest does not matter.
const LABEL_MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// Host patterns a plugin may reach; an empty list denies everything.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    patterns: Vec<String>,
    rules: Vec<Rule>,
}

impl AllowedHosts {
    /// Compiles the patterns; an invalid one is an error naming it.
    pub fn new(patterns: &[String]) -> Result<AllowedHosts, String> {
        let rules = patterns
            .iter()
            .map(|p| Rule::new(p).map_err(|e| format!("allowed_hosts: invalid pattern {p:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(AllowedHosts { patterns: patterns.to_vec(), rules })
    }

    pub fn deny_all() -> AllowedHosts {
        AllowedHosts { patterns: Vec::new(), rules: Vec::new() }
    }

    /// True when the host (no port; an IPv6 literal with or without its
    /// brackets) matches one of the patterns.
    pub fn allows(&self, host: &str) -> bool {
        let host = Host::new(host);
        self.rules.iter().any(|rule| rule.matches(&host))
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// Checks one pattern as [`AllowedHosts::new`] does (for manifests).
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    Rule::new(pattern).map(drop)
}

/// One compiled pattern.
#[derive(Debug, Clone)]
enum Rule {
    /// A lone `*`: every host.
    Any,
    /// Names only.
    Name(Labels),
    /// IP literals only.
    Ip(Labels),
}

impl Rule {
    fn new(pattern: &str) -> Result<Rule, String> {
        let text = unbracket(pattern);
        if text == "*" || text == "**" {
            return Ok(Rule::Any);
        }
        let labels = Labels::new(text)?;
        let is_ip = text.contains(':') || !text.bytes().any(|b| b.is_ascii_alphabetic());
        Ok(if is_ip { Rule::Ip(labels) } else { Rule::Name(labels) })
    }

    fn matches(&self, host: &Host) -> bool {
        match self {
            Rule::Any => true,
            Rule::Name(labels) => !host.is_ip && labels.matches(&host.labels),
            Rule::Ip(labels) => host.is_ip && labels.matches(&host.labels),
        }
    }
}

/// A pattern's labels: globs, after an optional leading `**`.
#[derive(Debug, Clone)]
struct Labels {
    any_depth: bool,
    globs: Vec<glob::Pattern>,
}

impl Labels {
    fn new(text: &str) -> Result<Labels, String> {
        let (any_depth, rest) = match text.strip_prefix("**.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let globs = rest.split('.').map(label_glob).collect::<Result<_, _>>()?;
        Ok(Labels { any_depth, globs })
    }

    /// The globs match the last labels of the host one for one; before
    /// them, `**` takes one label or more, else there is nothing.
    fn matches(&self, host: &[&str]) -> bool {
        let Some(extra) = host.len().checked_sub(self.globs.len()) else {
            return false;
        };
        let depth_ok = if self.any_depth { extra >= 1 } else { extra == 0 };
        let tail = &host[extra..];
        depth_ok && self.globs.iter().zip(tail).all(|(glob, label)| glob.matches_with(label, LABEL_MATCH))
    }
}

fn label_glob(label: &str) -> Result<glob::Pattern, String> {
    if label.contains("**") {
        return Err("`**` may only be the first label, as in **.example.com".into());
    }
    glob::Pattern::new(label).map_err(|e| format!("{} (at {})", e.msg, e.pos))
}

/// A host as the policy sees it.
struct Host<'a> {
    is_ip: bool,
    labels: Vec<&'a str>,
}

impl Host<'_> {
    fn new(host: &str) -> Host<'_> {
        let host = unbracket(host);
        Host { is_ip: host.parse::<IpAddr>().is_ok(), labels: host.split('.').collect() }
    }
}

/// `[::1]` → `::1`; anything else unchanged.
pub(super) fn unbracket(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn hosts(patterns: &[&str]) -> AllowedHosts {
        AllowedHosts::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[track_caller]
    fn allowed(pattern: &str, host: &str) -> bool {
        hosts(&[pattern]).allows(host)
    }

    #[test]
    fn names_match_exactly_or_by_glob_within_labels() {
        assert!(allowed("api.example.com", "api.example.com"));
        assert!(!allowed("api.example.com", "example.com"));
        assert!(allowed("jsonplaceholder.*.com", "jsonplaceholder.typicode.com"));
        assert!(!allowed("jsonplaceholder.*.com", "jsonplaceholder.a.b.com"));
        assert!(allowed("api-?.example.com", "api-1.example.com"));
        assert!(allowed("api-[ab].example.com", "api-b.example.com"));
        assert!(!allowed("api-[ab].example.com", "api-c.example.com"));
        assert!(!allowed("localhost", "127.0.0.1"));
        assert!(!allowed("127.0.0.1:8080", "127.0.0.1"));
        assert!(hosts(&["other.com", "example.com"]).allows("example.com"));
    }

    #[test]
    fn a_star_matches_within_one_label() {
        assert!(allowed("*.example.com", "a.example.com"));
        assert!(!allowed("*.example.com", "a.b.example.com"));
        assert!(!allowed("*.example.com", "example.com"));
        assert!(!allowed("*.example.com", "a.example.com.evil.example"));
        assert!(!allowed("*.internal", "internal.example.com"));
        assert!(!allowed("api.*", "api.example.com"));
        assert!(allowed("api.*", "api.internal"));
    }

    #[test]
    fn a_double_star_first_matches_any_depth_but_not_the_bare_domain() {
        assert!(allowed("**.example.com", "a.example.com"));
        assert!(allowed("**.example.com", "a.b.c.example.com"));
        assert!(!allowed("**.example.com", "example.com"));
        assert!(!allowed("**.example.com", "a.example.com.evil.example"));
        assert!(!allowed("**.example.com", "aexample.com"));
    }

    #[test]
    fn a_double_star_elsewhere_is_refused() {
        for pattern in ["a.**.com", "**", "example.**", "a**.com"] {
            let result = AllowedHosts::new(&[pattern.to_string()]);
            match pattern {
                "**" => assert!(result.is_ok(), "a lone ** is a lone *"),
                _ => assert!(result.unwrap_err().contains("`**` may only be the first label"), "{pattern}"),
            }
        }
    }

    #[test]
    fn a_lone_star_allows_every_host_and_no_pattern_none() {
        for host in ["anything.at.all", "localhost", "10.0.0.1", "::1", "[::1]"] {
            assert!(allowed("*", host), "{host}");
        }
        assert!(!hosts(&[]).allows("example.com"));
        assert!(!AllowedHosts::deny_all().allows("example.com"));
    }

    #[test]
    fn ip_patterns_match_ip_literals_only() {
        assert!(allowed("10.0.0.*", "10.0.0.1"));
        assert!(!allowed("10.0.0.*", "10.0.1.1"));
        assert!(!allowed("10.0.0.*", "10.0.0.1.attacker.example"));
        assert!(!allowed("10.0.0.*", "10.0.0.com"));
        assert!(!allowed("*.*.*.*", "a.b.c.d"), "no letters: an IP pattern");
        assert!(allowed("*.*.*.*", "192.168.1.1"));
        assert!(!allowed("127.0.0.1", "127.1"), "not an IP literal to us, whatever a resolver makes of it");
        assert!(allowed("fe80::*", "fe80::1"));
        assert!(!allowed("fe80::*", "fe80.example"));
    }

    #[test]
    fn name_patterns_never_match_ip_literals() {
        assert!(!allowed("1?.0.0.[1x]", "10.0.0.1"));
        assert!(!allowed("[0-9a].0.0.1", "1.0.0.1"));
        assert!(allowed("[0-9a].0.0.1", "a.0.0.1"));
    }

    #[test]
    fn case_and_ipv6_brackets_are_ignored() {
        assert!(allowed("API.Example.com", "api.example.COM"));
        assert!(allowed("*.EXAMPLE.com", "a.example.com"));
        assert!(allowed("[::1]", "::1"));
        assert!(allowed("::1", "[::1]"));
        assert!(!allowed("::1", "::2"));
    }

    #[test]
    fn invalid_patterns_are_named_and_kept_patterns_are_listed() {
        let error = AllowedHosts::new(&["ok.com".into(), "[oops".into()]).unwrap_err();
        assert!(error.starts_with("allowed_hosts: invalid pattern \"[oops\""), "{error}");
        assert!(check_pattern("[oops").is_err() && check_pattern("**.ok.com").is_ok());
        assert_eq!(hosts(&["a.com", "*.b"]).patterns(), ["a.com", "*.b"]);
        assert!(AllowedHosts::deny_all().patterns().is_empty());
    }
}
