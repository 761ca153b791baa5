//! Which hooks an event reaches, in the order they run: every hook of the
//! event's type whose `source` and `action` are the event's or `*` (or left
//! out), higher `priority` first, then by function name, then in manifest
//! order.

use crate::manifest::{EventConfig, Hook, HookMode};
use crate::registry::Registry;

use super::event::Event;

/// One hook an event reaches.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub function: String,
    pub mode: HookMode,
    pub priority: i64,
    pub config: EventConfig,
}

/// The hooks of the versions `registry` serves now that `event` reaches.
pub fn subscribers(registry: &Registry, event: &Event) -> Vec<Subscriber> {
    let versions: Vec<_> =
        registry.list().iter().filter_map(|f| Some((f.name.clone(), f.current()?))).collect();
    select(versions.iter().map(|(name, v)| (name.as_str(), v.manifest.hooks.as_slice())), event)
}

/// [`subscribers`] over `(function, hooks)` pairs.
pub fn select<'a>(functions: impl Iterator<Item = (&'a str, &'a [Hook])>, event: &Event) -> Vec<Subscriber> {
    let mut found: Vec<(usize, Subscriber)> = Vec::new();
    for (function, hooks) in functions {
        for (index, hook) in hooks.iter().enumerate().filter(|(_, h)| reaches(h, event)) {
            let subscriber = Subscriber {
                function: function.to_string(),
                mode: hook.mode,
                priority: hook.priority,
                config: hook.event,
            };
            found.push((index, subscriber));
        }
    }
    found.sort_by(|(i, a), (j, b)| {
        b.priority.cmp(&a.priority).then_with(|| a.function.cmp(&b.function)).then(i.cmp(j))
    });
    found.into_iter().map(|(_, s)| s).collect()
}

fn reaches(hook: &Hook, event: &Event) -> bool {
    hook.kind == event.kind.hook_type()
        && matches(hook.source.as_deref(), &event.source)
        && matches(hook.action.as_deref(), &event.action)
}

fn matches(pattern: Option<&str>, value: &str) -> bool {
    pattern.is_none_or(|p| p == "*" || p == value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::HookType;
    use serde_json::Value;

    fn hook(kind: HookType, source: Option<&str>, action: Option<&str>, priority: i64) -> Hook {
        Hook {
            kind,
            source: source.map(String::from),
            action: action.map(String::from),
            mode: HookMode::Sync,
            priority,
            event: EventConfig::default(),
            webhook: None,
        }
    }

    fn event(kind: super::super::event::Kind, source: &str, action: &str) -> Event {
        let (source, action) = (source.to_string(), action.to_string());
        Event { id: "e".into(), kind, source, action, data: Value::Null, metadata: Value::Null, depth: 0 }
    }

    fn order(functions: &[(&str, Vec<Hook>)], e: &Event) -> Vec<(String, i64)> {
        let pairs = functions.iter().map(|(name, hooks)| (*name, hooks.as_slice()));
        select(pairs, e).into_iter().map(|s| (s.function, s.priority)).collect()
    }

    #[test]
    fn type_source_and_action_match_exactly_or_by_wildcard() {
        use super::super::event::Kind;
        let functions = [
            ("exact", vec![hook(HookType::Database, Some("users"), Some("insert"), 0)]),
            ("any_action", vec![hook(HookType::Database, Some("users"), Some("*"), 0)]),
            ("any_source", vec![hook(HookType::Database, None, Some("insert"), 0)]),
            ("other_action", vec![hook(HookType::Database, Some("users"), Some("delete"), 0)]),
            ("other_source", vec![hook(HookType::Database, Some("orders"), None, 0)]),
            ("other_type", vec![hook(HookType::Auth, None, None, 0)]),
        ];
        let reached = order(&functions, &event(Kind::Database, "users", "insert"));
        let names: Vec<&str> = reached.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["any_action", "any_source", "exact"]);
        let auth = order(&functions, &event(Kind::Auth, "login", "failed"));
        assert_eq!(auth, [("other_type".to_string(), 0)]);
        assert!(order(&functions, &event(Kind::Custom, "users", "insert")).is_empty());
    }

    #[test]
    fn higher_priority_first_then_by_name_then_manifest_order() {
        use super::super::event::Kind;
        let any = |p| hook(HookType::Custom, None, None, p);
        let functions = [("b", vec![any(0), any(5)]), ("a", vec![any(0)]), ("c", vec![any(-1), any(10)])];
        let reached = order(&functions, &event(Kind::Custom, "s", "a"));
        let expected = [("c", 10), ("b", 5), ("a", 0), ("b", 0), ("c", -1)];
        assert_eq!(reached, expected.map(|(f, p)| (f.to_string(), p)));
    }
}
