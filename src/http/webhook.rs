//! A webhook over HTTP: the signature is checked on the raw body before
//! anything parses it; a request that fails is refused with 401 (and
//! recorded in the history as `rejected`) and the function is not called,
//! unless the hook says `skip_invalid`, in which case the function sees
//! `verified: false` and why. The input is a route's, with `trigger:
//! "webhook"` and `verified`; the output maps to the response as a
//! route's does.

use std::time::SystemTime;

use serde_json::json;

use super::invoke::reject;
use super::reply::Reply;
use super::request::Request;
use super::respond::ApiError;
use super::route::{self, Matched};
use crate::invoke::{Admission, Caller, Invocation, Invoker, Trigger};
use crate::manifest::{Scheme, Webhook};
use crate::triggers::verify::verify;

/// The trigger of a call through this webhook.
pub fn trigger(matched: &Matched) -> Trigger {
    Trigger::Webhook { path: matched.route.clone() }
}

/// Verifies, then invokes the webhook's function.
pub fn call(
    invoker: &Invoker,
    request: &Request,
    matched: Matched,
    hook: &Webhook,
    request_id: &str,
    admission: Option<Admission>,
) -> Reply {
    let rejected = |error, input_bytes| {
        reject(invoker, &matched.function, trigger(&matched), request_id, input_bytes, error)
    };
    let body = match &request.body {
        Ok(body) => body,
        Err(error) => return rejected(ApiError::from(*error), 0),
    };
    let verification = &hook.verification;
    let checked = verify(verification, &request.headers, body, SystemTime::now());
    if let Err(error) = &checked {
        log::warn!("{}: webhook {} refused: {error}", matched.function, matched.route);
        if !verification.skip_invalid {
            return rejected(ApiError::InvalidSignature { reason: error.to_string() }, body.len());
        }
    }
    let mut input = route::input(request, &matched, body);
    input["trigger"] = json!("webhook");
    input["verified"] = json!(checked.is_ok() && verification.scheme != Scheme::None);
    if let Err(error) = &checked {
        input["verification_error"] = json!(error.to_string());
    }
    let trigger = trigger(&matched);
    let invocation = Invocation {
        admission,
        timeout: hook.timeout,
        ..Invocation::new(&matched.function, input, trigger, request_id.to_string(), Caller::Anonymous)
    };
    route::reply(invoker.run(invocation))
}
