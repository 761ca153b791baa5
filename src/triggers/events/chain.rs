//! A sync chain: the sync hooks an event reaches, run one after another
//! before the caller is answered. Each hook gets the event with the data as
//! the hooks before it left it; its output may reject the event
//! (`{reject: true, reason}`, the chain stops) or replace its data
//! (`{data: ...}`). A hook that fails (an error or its `config.timeout`)
//! stops the chain unless its `on_failure` is `continue`.

use std::time::Duration;

use serde_json::Value;

use super::event::Event;
use super::matching::Subscriber;
use crate::history::ErrorInfo;
use crate::invoke::{Caller, Invocation, Invoker, Outcome, Trigger};
use crate::manifest::OnFailure;
use crate::random::unique_id;

/// What one hook of a chain did.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub function: String,
    pub outcome: Step,
    pub duration: Duration,
    /// The invocation's id in the execution history.
    pub request_id: String,
    pub error: Option<ErrorInfo>,
}

/// A hook's effect on its chain.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Passed the event on unchanged.
    Passed,
    /// Replaced the event's data.
    Modified,
    /// Refused the event, for this reason.
    Rejected(String),
    /// Failed; `continued` when its `on_failure` let the chain go on.
    Failed { continued: bool },
}

impl Step {
    pub fn as_str(&self) -> &'static str {
        match self {
            Step::Passed => "ok",
            Step::Modified => "modified",
            Step::Rejected(_) => "rejected",
            Step::Failed { continued: false } => "failed",
            Step::Failed { continued: true } => "failed_continued",
        }
    }
}

/// How a chain ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every hook passed (or failed and continued); the event's data is as
    /// the last hook left it.
    Passed,
    /// A hook rejected the event.
    Rejected { function: String, reason: String },
    /// A hook failed and its `on_failure` is `reject`.
    Failed { function: String, error: ErrorInfo },
}

/// Runs `hooks` (in order) on `event` for `caller`, updating the event's
/// data as they replace it. Returns the verdict and one line per hook run.
pub fn run(
    invoker: &Invoker,
    event: &mut Event,
    hooks: &[Subscriber],
    caller: &Caller,
) -> (Verdict, Vec<Line>) {
    let mut lines = Vec::with_capacity(hooks.len());
    for hook in hooks {
        let outcome = invoker.run(invocation(event, hook, caller, 1));
        let (step, verdict) = judge(hook, &outcome, event);
        lines.push(Line {
            function: hook.function.clone(),
            outcome: step,
            duration: outcome.duration,
            request_id: outcome.request_id.clone(),
            error: outcome.error(),
        });
        if let Some(verdict) = verdict {
            return (verdict, lines);
        }
    }
    (Verdict::Passed, lines)
}

/// The `attempt`th call of `hook` for `event`: under the hook's timeout,
/// one level deeper than the event.
pub fn invocation(event: &Event, hook: &Subscriber, caller: &Caller, attempt: u32) -> Invocation {
    let trigger = Trigger::Event {
        event: event.id.clone(),
        source: event.source.clone(),
        action: event.action.clone(),
        attempt,
    };
    Invocation {
        timeout: Some(hook.config.timeout),
        depth: event.depth + 1,
        ..Invocation::new(&hook.function, event.input(), trigger, unique_id(), caller.clone())
    }
}

/// The step a hook's outcome is, and the verdict if it ends the chain.
/// Replaced data is written into `event`.
fn judge(hook: &Subscriber, outcome: &Outcome, event: &mut Event) -> (Step, Option<Verdict>) {
    if let Some(error) = outcome.error() {
        let continued = hook.config.on_failure == OnFailure::Continue;
        let verdict = (!continued).then(|| Verdict::Failed { function: hook.function.clone(), error });
        return (Step::Failed { continued }, verdict);
    }
    let output: Option<Value> = outcome.result.as_ref().ok().and_then(|o| serde_json::from_slice(o).ok());
    let Some(Value::Object(mut output)) = output else { return (Step::Passed, None) };
    if output.get("reject") == Some(&Value::Bool(true)) {
        let reason = match output.remove("reason") {
            Some(Value::String(reason)) => reason,
            Some(Value::Null) | None => format!("rejected by {}", hook.function),
            Some(other) => other.to_string(),
        };
        let verdict = Verdict::Rejected { function: hook.function.clone(), reason: reason.clone() };
        return (Step::Rejected(reason), Some(verdict));
    }
    match output.remove("data") {
        Some(data) => {
            event.data = data;
            (Step::Modified, None)
        }
        None => (Step::Passed, None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    fn ci() -> Caller {
        Caller::ApiKey { name: "ci".into() }
    }

    use serde_json::json;

    use super::*;
    use crate::history::History;
    use crate::manifest::{EventConfig, HookMode};
    use crate::registry::Registry;
    use crate::testutil::TempDir;
    use crate::tokens::InternalTokens;

    /// Functions `name: (export, config)` of hook.wat.
    fn invoker(root: &TempDir, functions: &[(&str, &str, &str)]) -> Invoker {
        let plugin =
            std::fs::read_to_string(format!("{}/testdata/plugins/hook.wat", env!("CARGO_MANIFEST_DIR")));
        for (name, export, config) in functions {
            root.write(&format!("{name}/plugin.wat"), plugin.as_ref().unwrap());
            let manifest =
                format!("plugin: plugin.wat\nentrypoint: {export}\nconfig: {{answer: '{config}'}}\n");
            root.write(&format!("{name}/manifest.yaml"), manifest);
        }
        let registry = Arc::new(Registry::new(root.path(), crate::testutil::defaults()));
        registry.reload();
        let tokens = Arc::new(InternalTokens::new());
        Invoker::new(registry, tokens, "http://alyx".into(), 4, Arc::new(History::new(100)))
    }

    fn hook(function: &str, on_failure: OnFailure) -> Subscriber {
        let config = EventConfig { on_failure, ..EventConfig::default() };
        Subscriber { function: function.into(), mode: HookMode::Sync, priority: 0, config }
    }

    fn event() -> Event {
        let body = json!({"type": "custom", "source": "shop", "action": "paid", "data": {"n": 1}});
        Event::parse(body, "e1".into(), 0).unwrap()
    }

    fn steps(lines: &[Line]) -> Vec<(&str, &str)> {
        lines.iter().map(|l| (l.function.as_str(), l.outcome.as_str())).collect()
    }

    #[test]
    fn each_hook_sees_the_data_the_one_before_left() {
        let root = TempDir::new("chain");
        let invoker = invoker(&root, &[("a", "wrap", ""), ("b", "wrap", ""), ("c", "answer", "{}")]);
        let hooks =
            [hook("a", OnFailure::Reject), hook("b", OnFailure::Reject), hook("c", OnFailure::Reject)];
        let mut e = event();
        let (verdict, lines) = run(&invoker, &mut e, &hooks, &ci());
        assert_eq!(verdict, Verdict::Passed);
        assert_eq!(steps(&lines), [("a", "modified"), ("b", "modified"), ("c", "ok")]);
        // b wrapped the envelope it got, whose data was a's envelope.
        assert_eq!(e.data["function"], "b");
        let seen_by_b = &e.data["input"]["event"]["data"];
        assert_eq!(
            (seen_by_b["function"].clone(), seen_by_b["input"]["event"]["data"].clone()),
            (json!("a"), json!({"n": 1}))
        );
        assert_eq!(seen_by_b["input"]["event"]["id"], "e1");
    }

    #[test]
    fn a_rejection_stops_the_chain_with_its_reason() {
        let root = TempDir::new("chain");
        let reject = r#"{"reject": true, "reason": "out of stock"}"#;
        let invoker = invoker(&root, &[("a", "wrap", ""), ("b", "answer", reject), ("c", "wrap", "")]);
        let hooks =
            [hook("a", OnFailure::Reject), hook("b", OnFailure::Reject), hook("c", OnFailure::Reject)];
        let (verdict, lines) = run(&invoker, &mut event(), &hooks, &ci());
        assert_eq!(verdict, Verdict::Rejected { function: "b".into(), reason: "out of stock".into() });
        assert_eq!(steps(&lines), [("a", "modified"), ("b", "rejected")]);
    }

    #[test]
    fn a_failure_stops_the_chain_or_is_skipped_as_its_hook_says() {
        let root = TempDir::new("chain");
        let invoker = invoker(&root, &[("a", "fail", ""), ("b", "wrap", "")]);
        let (verdict, lines) =
            run(&invoker, &mut event(), &[hook("a", OnFailure::Reject), hook("b", OnFailure::Reject)], &ci());
        let Verdict::Failed { function, error } = verdict else { panic!("{verdict:?}") };
        assert_eq!(
            (function.as_str(), error.code, error.message.as_str()),
            ("a", "PLUGIN_ERROR", "hook failed")
        );
        assert_eq!(steps(&lines), [("a", "failed")]);
        let mut e = event();
        let (verdict, lines) =
            run(&invoker, &mut e, &[hook("a", OnFailure::Continue), hook("b", OnFailure::Reject)], &ci());
        assert_eq!(verdict, Verdict::Passed);
        assert_eq!(steps(&lines), [("a", "failed_continued"), ("b", "modified")]);
        assert_eq!(lines[0].error.as_ref().map(|e| e.code), Some("PLUGIN_ERROR"));
        assert_eq!(e.data["function"], "b");
    }

    #[test]
    fn hooks_run_one_level_deeper_under_their_timeout() {
        let mut hook = hook("f", OnFailure::Reject);
        hook.config.timeout = Duration::from_millis(250);
        let e = Event { depth: 2, ..event() };
        let invocation = invocation(&e, &hook, &ci(), 2);
        assert_eq!((invocation.depth, invocation.timeout), (3, Some(Duration::from_millis(250))));
        assert_eq!(invocation.input, json!({"trigger": "event", "event": e.to_json()}));
        let Trigger::Event { event, attempt, .. } = invocation.trigger else { panic!() };
        assert_eq!((event.as_str(), attempt), ("e1", 2));
    }
}
