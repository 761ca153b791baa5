//! An event as `POST /api/events` takes it: read from JSON and checked
//! field by field, and written back as the `event` a hook's input holds.

use serde_json::{Map, Value, json};

use crate::manifest::HookType;
use crate::quote::quote;

/// The kinds of event, as hooks of the same `type` receive them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Database,
    Auth,
    Custom,
}

impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        match text {
            "database" => Some(Kind::Database),
            "auth" => Some(Kind::Auth),
            "custom" => Some(Kind::Custom),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Database => "database",
            Kind::Auth => "auth",
            Kind::Custom => "custom",
        }
    }

    /// The hook type that receives this kind of event.
    pub fn hook_type(self) -> HookType {
        match self {
            Kind::Database => HookType::Database,
            Kind::Auth => HookType::Auth,
            Kind::Custom => HookType::Custom,
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub kind: Kind,
    pub source: String,
    pub action: String,
    pub data: Value,
    /// An object, or null.
    pub metadata: Value,
    /// How many hook invocations raised it, one inside the other: 0 for an
    /// event from outside.
    pub depth: u32,
}

/// The fields an event may have.
const FIELDS: [&str; 5] = ["type", "source", "action", "data", "metadata"];

/// Longest `source` or `action`, in bytes.
const MAX_NAME: usize = 256;

impl Event {
    /// Reads an event from a request body, or says what is wrong with it.
    pub fn parse(body: Value, id: String, depth: u32) -> Result<Event, String> {
        let Value::Object(mut map) = body else {
            return Err("an event is a JSON object: {type, source, action, data, metadata}".into());
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!("{}: unknown field (an event has {})", quote(unknown), FIELDS.join(", ")));
        }
        let kind = required(&map, "type")?;
        let kind = Kind::parse(kind).ok_or_else(|| {
            format!("type: {} is not an event type (use database, auth or custom)", quote(kind))
        })?;
        let source = name(&map, "source")?;
        let action = name(&map, "action")?;
        let metadata = match map.remove("metadata") {
            None | Some(Value::Null) => Value::Null,
            Some(metadata @ Value::Object(_)) => metadata,
            Some(_) => return Err("metadata: must be an object".into()),
        };
        let data = map.remove("data").unwrap_or(Value::Null);
        Ok(Event { id, kind, source, action, data, metadata, depth })
    }

    /// The event as a hook sees it (`input.event`) and the API shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "source": self.source,
            "action": self.action,
            "data": self.data,
            "metadata": self.metadata,
        })
    }

    /// The input of a hook invocation for this event.
    pub fn input(&self) -> Value {
        json!({"trigger": "event", "event": self.to_json()})
    }

    /// Reads back what [`Event::to_json`] wrote, with the depth kept beside.
    pub fn from_json(value: &Value, depth: u32) -> Result<Event, String> {
        let id = value.get("id").and_then(Value::as_str).ok_or("id: missing")?.to_string();
        let mut fields = value.as_object().cloned().unwrap_or_default();
        fields.remove("id");
        Event::parse(Value::Object(fields), id, depth)
    }
}

fn required<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, String> {
    match map.get(field) {
        Some(Value::String(text)) => Ok(text),
        None | Some(Value::Null) => Err(format!("{field}: required")),
        Some(_) => Err(format!("{field}: must be a string")),
    }
}

/// A source or action: 1 to [`MAX_NAME`] bytes, and not `*` (which hooks
/// use to match any).
fn name(map: &Map<String, Value>, field: &str) -> Result<String, String> {
    let text = required(map, field)?;
    if text.is_empty() || text.len() > MAX_NAME {
        return Err(format!("{field}: must be 1 to {MAX_NAME} bytes"));
    }
    if text == "*" {
        return Err(format!("{field}: * matches any in a hook; an event names one"));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Event, String> {
        Event::parse(serde_json::from_str(text).unwrap(), "e1".into(), 0)
    }

    #[test]
    fn events_read_every_field_and_default_data_and_metadata() {
        let e = parse(r#"{"type":"database","source":"users","action":"insert","data":{"id":1},"metadata":{"by":"ci"}}"#)
            .unwrap();
        assert_eq!((e.kind, e.source.as_str(), e.action.as_str()), (Kind::Database, "users", "insert"));
        assert_eq!((e.data.clone(), e.metadata.clone()), (json!({"id": 1}), json!({"by": "ci"})));
        let bare = parse(r#"{"type":"custom","source":"shop","action":"paid"}"#).unwrap();
        assert_eq!((bare.data, bare.metadata), (Value::Null, Value::Null));
    }

    #[test]
    fn bad_events_say_which_field() {
        let cases = [
            ("[]", "an event is a JSON object"),
            (r#"{"type":"custom","source":"s","acton":"a"}"#, "\"acton\": unknown field"),
            (r#"{"source":"s","action":"a"}"#, "type: required"),
            (r#"{"type":"cron","source":"s","action":"a"}"#, "type: \"cron\" is not an event type"),
            (r#"{"type":"auth","source":7,"action":"a"}"#, "source: must be a string"),
            (r#"{"type":"auth","source":"","action":"a"}"#, "source: must be 1 to 256 bytes"),
            (r#"{"type":"auth","source":"s","action":"*"}"#, "action: * matches any in a hook"),
            (r#"{"type":"auth","source":"s","action":"a","metadata":[1]}"#, "metadata: must be an object"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }

    #[test]
    fn events_read_back_what_they_write() {
        let e = parse(r#"{"type":"auth","source":"login","action":"failed","data":[1,"x"]}"#).unwrap();
        assert_eq!(Event::from_json(&e.to_json(), 3).unwrap(), Event { depth: 3, ..e.clone() });
        assert_eq!(e.input(), json!({"trigger": "event", "event": e.to_json()}));
    }
}
