//! {{name}}: an alyx function. It reads the request envelope
//! ({"request_id", "function", "input", "context"}), uses a config value,
//! logs, and answers JSON: POST {"name": "Ada"} -> {"greeting": "Hello, Ada!"}.

use extism_pdk::*;
use serde_json::{json, Value};

#[plugin_fn]
pub fn handle(Json(envelope): Json<Value>) -> FnResult<Json<Value>> {
    let name = envelope["input"]["name"].as_str().unwrap_or("world");
    if name.is_empty() {
        // A failure with a 4xx status of its own: alyx answers 422.
        let error = json!({"code": "BAD_NAME", "message": "name is empty", "status": 422});
        return Ok(Json(json!({"success": false, "error": error})));
    }
    let word = config::get("greeting")?.unwrap_or_else(|| "Hello".into());
    info!("greeting {}", name);
    Ok(Json(json!({"greeting": format!("{word}, {name}!")})))
}
