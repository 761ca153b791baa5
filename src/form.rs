//! URL query strings and percent-encoding, read leniently: a malformed
//! escape is kept as it is, and bytes that are not UTF-8 become U+FFFD.

use serde_json::{Map, Value};

/// The `key=value` pairs of a query string, decoded (`+` is a space).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// `{key: value}`, the last value winning for a repeated key.
pub fn query_object(query: &str) -> Map<String, Value> {
    query_pairs(query).into_iter().map(|(k, v)| (k, Value::String(v))).collect()
}

/// `{key: value}`, a repeated key's values gathered in a list.
pub fn query_lists(query: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in query_pairs(query) {
        match map.get_mut(&key) {
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(first) => *first = Value::Array(vec![first.take(), Value::String(value)]),
            None => {
                map.insert(key, Value::String(value));
            }
        }
    }
    map
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`: query
/// strings, not paths).
pub fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some([h, l]) if bytes[i] == b'%' => hex_digit(*h).zip(hex_digit(*l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (None, b'+') if plus_is_space => out.push(b' '),
            (None, byte) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_plus_and_malformed_escapes() {
        assert_eq!(decode("J%C3%BCrgen+x", true), "Jürgen x");
        assert_eq!(decode("a+b", false), "a+b");
        assert_eq!(decode("bad=%zz%4", true), "bad=%zz%4");
        assert_eq!(decode("%ff", true), "\u{fffd}");
    }

    #[test]
    fn repeated_keys_win_or_gather() {
        assert_eq!(Value::Object(query_object("a=1&a=2&b")), json!({"a": "2", "b": ""}));
        assert_eq!(Value::Object(query_lists("a=1&a=2&a=3&b=x&&")), json!({"a": ["1", "2", "3"], "b": "x"}));
    }
}
