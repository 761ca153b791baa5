//! Route path patterns, pure: `/hello/{name}` matches one segment per
//! parameter, a last `{rest...}` matches the remainder, and a literal
//! segment is more specific than a parameter, which is more specific than
//! a remainder.

use std::fmt;

use crate::form::decode;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
    /// `{name...}`: the rest of the path (at least one segment).
    Rest(String),
}

/// A parsed route path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

/// What a matching pattern captured: parameter names and decoded values.
pub type Params = Vec<(String, String)>;

impl Pattern {
    /// Parses `text`; the error says what is wrong in words.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let Some(rest) = text.strip_prefix('/') else { return Err("must start with /".into()) };
        let parts: Vec<&str> = rest.split('/').collect();
        let last = parts.len() - 1;
        let mut segments = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            // `/` and a trailing `/` are fine; an empty segment inside is not.
            if part.is_empty() && i < last {
                return Err("has an empty segment (//)".into());
            }
            if part.is_empty() {
                continue;
            }
            segments.push(segment(part, i == last)?);
        }
        let mut names: Vec<&str> = segments.iter().filter_map(Segment::name).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err("names a parameter twice".into());
        }
        Ok(Pattern { text: text.to_string(), segments })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The pattern with parameter names left out: two patterns with the
    /// same shape match the same paths.
    pub fn shape(&self) -> String {
        let parts: Vec<&str> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(text) => text.as_str(),
                Segment::Param(_) => "{}",
                Segment::Rest(_) => "{...}",
            })
            .collect();
        format!("/{}", parts.join("/"))
    }

    /// Lower is more specific, compared segment by segment.
    pub fn rank(&self) -> Vec<u8> {
        let kind = |s: &Segment| match s {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Rest(_) => 2,
        };
        self.segments.iter().map(kind).collect()
    }

    /// The captured parameters when `path` (without its query) matches.
    pub fn matches(&self, path: &str) -> Option<Params> {
        let path = path.strip_prefix('/')?;
        let path = path.strip_suffix('/').unwrap_or(path);
        let parts: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('/').collect() };
        let mut params = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(text) => (parts.get(i)? == text).then_some(())?,
                Segment::Param(name) => {
                    let part = parts.get(i).filter(|p| !p.is_empty())?;
                    params.push((name.clone(), decode(part, false)));
                }
                Segment::Rest(name) => {
                    let rest = parts.get(i..).filter(|r| !r.is_empty())?;
                    params.push((name.clone(), decode(&rest.join("/"), false)));
                    return Some(params);
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }
}

impl Segment {
    fn name(&self) -> Option<&str> {
        match self {
            Segment::Literal(_) => None,
            Segment::Param(name) | Segment::Rest(name) => Some(name),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn segment(part: &str, last: bool) -> Result<Segment, String> {
    let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
        return literal(part);
    };
    let (name, rest) = match inner.strip_suffix("...") {
        Some(name) => (name, true),
        None => (inner, false),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("parameter {{{inner}}} needs a name of letters, digits and _"));
    }
    match (rest, last) {
        (true, false) => Err(format!("{{{inner}}} must be the last segment")),
        (true, true) => Ok(Segment::Rest(name.into())),
        (false, _) => Ok(Segment::Param(name.into())),
    }
}

fn literal(part: &str) -> Result<Segment, String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b);
    if part == "." || part == ".." {
        return Err("has a . or .. segment".into());
    }
    if !part.bytes().all(allowed) {
        return Err(format!("segment {part:?} has characters a path cannot hold as they are"));
    }
    Ok(Segment::Literal(part.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Option<Params> {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn parameters_take_one_segment_and_rest_the_remainder() {
        assert_eq!(p("/hello/{name}").matches("/hello/ada"), params(&[("name", "ada")]));
        assert_eq!(p("/hello/{name}").matches("/hello/ada/"), params(&[("name", "ada")]));
        assert_eq!(p("/hello/{name}").matches("/hello/ada/x"), None);
        assert_eq!(p("/hello/{name}").matches("/hello"), None);
        assert_eq!(p("/files/{path...}").matches("/files/a/b%20c.txt"), params(&[("path", "a/b c.txt")]));
        assert_eq!(p("/files/{path...}").matches("/files"), None);
        assert_eq!(p("/").matches("/"), params(&[]));
        assert_eq!(p("/a/{x}/b/{y}").matches("/a/1/b/2"), params(&[("x", "1"), ("y", "2")]));
    }

    #[test]
    fn literals_rank_before_parameters_before_the_rest() {
        assert!(p("/users/me").rank() < p("/users/{id}").rank());
        assert!(p("/users/{id}").rank() < p("/users/{all...}").rank());
        assert_eq!(p("/a/{x}").shape(), p("/a/{y}").shape());
    }

    #[test]
    fn bad_patterns_say_why() {
        for (text, why) in [
            ("hello", "must start with /"),
            ("/a//b", "empty segment"),
            ("/a/{}", "needs a name"),
            ("/a/{x...}/b", "must be the last"),
            ("/a/{x}/{x}", "twice"),
            ("/a/../b", ". or .."),
            ("/a b", "characters"),
        ] {
            let error = Pattern::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }
}
