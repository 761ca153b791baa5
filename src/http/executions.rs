//! `GET /api/executions` and `GET /api/executions/{id}`: the execution
//! history, read from [`History`]. The query string becomes a typed
//! [`Query`] in one step; a bad one is a 400 that says what is accepted.

use serde::Serialize;

use super::reply::Reply;
use super::respond::ApiError;
use crate::form::{decode, query_pairs};
use crate::history::{History, Outcome, Query, Record};
use crate::invoke::Trigger;
use crate::quote::quote;

/// Records a page holds unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;
/// Records a page holds at most; a larger `limit` is read as this.
pub const MAX_LIMIT: usize = 1000;

/// `GET /api/executions?function=&trigger=&outcome=&limit=&before=`: newest
/// first, with the `before` of the next page when more records match.
pub fn list(history: &History, query: Option<&str>, request_id: &str) -> Reply {
    let query = match parse_query(query.unwrap_or("")) {
        Ok(query) => query,
        Err(message) => return ApiError::BadQuery { message }.reply(request_id),
    };
    let page = history.list(&query);
    let executions: Vec<&Record> = page.records.iter().map(|r| &**r).collect();
    Reply::json(200, &Listing { executions, next_before: page.next_before })
}

/// A page of records as the listing answers it.
#[derive(Serialize)]
struct Listing<'a> {
    executions: Vec<&'a Record>,
    next_before: Option<String>,
}

/// `GET /api/executions/{id}`: the newest record with that id.
pub fn get(history: &History, id: &str, request_id: &str) -> Reply {
    let id = decode(id, false);
    match history.get(&id) {
        Some(record) => Reply::json(200, &*record),
        None => ApiError::ExecutionNotFound { id }.reply(request_id),
    }
}

/// The query of a listing; empty values count as absent.
fn parse_query(text: &str) -> Result<Query, String> {
    let mut query = Query::all(DEFAULT_LIMIT);
    for (key, value) in query_pairs(text).into_iter().filter(|(_, value)| !value.is_empty()) {
        match key.as_str() {
            "function" => query.function = Some(value),
            "trigger" => query.trigger = Some(trigger(&value)?),
            "outcome" => query.outcome = Some(outcome(&value)?),
            "limit" => query.limit = limit(&value)?,
            "before" => query.before = Some(value),
            _ => {
                return Err(format!(
                    "{}: unknown parameter (use function, trigger, outcome, limit or before)",
                    quote(&key)
                ));
            }
        }
    }
    Ok(query)
}

fn trigger(value: &str) -> Result<&'static str, String> {
    let known = Trigger::KINDS.into_iter().find(|kind| *kind == value);
    known.ok_or_else(|| format!("trigger: {} is not one of {}", quote(value), Trigger::KINDS.join(", ")))
}

fn outcome(value: &str) -> Result<Outcome, String> {
    Outcome::parse(value).ok_or_else(|| {
        let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        format!("outcome: {} is not one of {}", quote(value), names.join(", "))
    })
}

fn limit(value: &str) -> Result<usize, String> {
    let limit = value.parse::<usize>().ok().filter(|n| *n > 0);
    let limit = limit.ok_or_else(|| format!("limit: must be a whole number from 1 to {MAX_LIMIT}"))?;
    Ok(limit.min(MAX_LIMIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_typed_and_empty_values_are_absent() {
        let query =
            parse_query("function=hello&trigger=webhook&outcome=timeout&limit=5&before=a%2Bb").unwrap();
        let expected = Query {
            function: Some("hello".into()),
            trigger: Some("webhook"),
            outcome: Some(Outcome::Timeout),
            before: Some("a+b".into()),
            limit: 5,
        };
        assert_eq!(query, expected);
        assert_eq!(parse_query("function=&trigger=&limit="), Ok(Query::all(DEFAULT_LIMIT)));
        assert_eq!(parse_query("limit=100000").map(|q| q.limit), Ok(MAX_LIMIT));
    }

    #[test]
    fn bad_queries_say_what_is_accepted() {
        let error = |text: &str| parse_query(text).unwrap_err();
        assert_eq!(
            error("trigger=cron"),
            r#"trigger: "cron" is not one of http, route, webhook, event, schedule"#
        );
        assert_eq!(error("outcome=fine"), r#"outcome: "fine" is not one of ok, error, timeout, rejected"#);
        assert_eq!(error("limit=0"), "limit: must be a whole number from 1 to 1000");
        assert_eq!(error("limit=-1"), "limit: must be a whole number from 1 to 1000");
        assert!(error("fn=x").starts_with(r#""fn": unknown parameter"#));
    }
}
