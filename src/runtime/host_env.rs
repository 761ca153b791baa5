//! The `extism:host/env` module: the 20 kernel functions and the 12 host
//! functions (config, vars, HTTP, logging) with their exact ABI types.
//!
//! Every handle a plugin passes is checked: kernel accessors are total (bad
//! addresses read 0, writes are dropped), host functions refuse a non-zero
//! handle that is not a live block with an error naming themselves.

use wasmi::{Caller, Linker};

use super::error::{HostError, MemoryLimit};
use super::outbound::{HttpError, parse_extism_request};
use super::signature::Signature;
use super::state::{HostState, LogLevel, VarError};

/// The import module name.
pub const MODULE: &str = "extism:host/env";

/// Every `extism:host/env` function with its type (`i` = i32, `I` = i64).
pub const SIGNATURES: &[Signature] = &[
    ("alloc", "I", "I"),
    ("free", "I", ""),
    ("length", "I", "I"),
    ("length_unsafe", "I", "I"),
    ("load_u8", "I", "i"),
    ("load_u64", "I", "I"),
    ("store_u8", "Ii", ""),
    ("store_u64", "II", ""),
    ("input_length", "", "I"),
    ("input_offset", "", "I"),
    ("input_load_u8", "I", "i"),
    ("input_load_u64", "I", "I"),
    ("input_set", "II", ""),
    ("output_set", "II", ""),
    ("output_offset", "", "I"),
    ("output_length", "", "I"),
    ("error_set", "I", ""),
    ("error_get", "", "I"),
    ("reset", "", ""),
    ("memory_bytes", "", "I"),
    ("config_get", "I", "I"),
    ("var_get", "I", "I"),
    ("var_set", "II", ""),
    ("http_request", "II", "I"),
    ("http_status_code", "", "i"),
    ("http_headers", "", "I"),
    ("log_trace", "I", ""),
    ("log_debug", "I", ""),
    ("log_info", "I", ""),
    ("log_warn", "I", ""),
    ("log_error", "I", ""),
    ("get_log_level", "", "i"),
];

type Ctx<'a> = Caller<'a, HostState>;
type HostResult<T> = Result<T, wasmi::Error>;

/// Defines every `extism:host/env` function in the linker.
pub fn define(linker: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    define_kernel(linker)?;
    define_input_output(linker)?;
    define_config_and_vars(linker)?;
    define_http(linker)?;
    define_logging(linker)?;
    Ok(())
}

fn define_kernel(l: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    l.func_wrap(MODULE, "alloc", |mut c: Ctx, n: i64| c.data_mut().kernel.alloc(n as u64) as i64)?;
    l.func_wrap(MODULE, "free", |mut c: Ctx, h: i64| c.data_mut().kernel.free(h as u64))?;
    l.func_wrap(MODULE, "length", |c: Ctx, h: i64| c.data().kernel.length(h as u64) as i64)?;
    l.func_wrap(MODULE, "length_unsafe", |c: Ctx, h: i64| c.data().kernel.length(h as u64) as i64)?;
    l.func_wrap(MODULE, "load_u8", |c: Ctx, p: i64| i32::from(c.data().kernel.load_u8(p as u64)))?;
    l.func_wrap(MODULE, "load_u64", |c: Ctx, p: i64| c.data().kernel.load_u64(p as u64) as i64)?;
    l.func_wrap(MODULE, "store_u8", |mut c: Ctx, p: i64, v: i32| {
        c.data_mut().kernel.store_u8(p as u64, v as u8)
    })?;
    l.func_wrap(MODULE, "store_u64", |mut c: Ctx, p: i64, v: i64| {
        c.data_mut().kernel.store_u64(p as u64, v as u64)
    })?;
    l.func_wrap(MODULE, "reset", |mut c: Ctx| c.data_mut().kernel.reset())?;
    l.func_wrap(MODULE, "memory_bytes", |c: Ctx| c.data().kernel.memory_bytes() as i64)?;
    Ok(())
}

fn define_input_output(l: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    l.func_wrap(MODULE, "input_length", |c: Ctx| c.data().kernel.input_length() as i64)?;
    l.func_wrap(MODULE, "input_offset", |c: Ctx| c.data().kernel.input_offset() as i64)?;
    l.func_wrap(MODULE, "input_load_u8", |c: Ctx, i: i64| {
        i32::from(c.data().kernel.input_load_u8(i as u64))
    })?;
    l.func_wrap(MODULE, "input_load_u64", |c: Ctx, i: i64| c.data().kernel.input_load_u64(i as u64) as i64)?;
    l.func_wrap(MODULE, "input_set", |mut c: Ctx, p: i64, n: i64| {
        c.data_mut().kernel.input_set(p as u64, n as u64)
    })?;
    l.func_wrap(MODULE, "output_set", |mut c: Ctx, p: i64, n: i64| {
        c.data_mut().kernel.output_set(p as u64, n as u64)
    })?;
    l.func_wrap(MODULE, "output_offset", |c: Ctx| c.data().kernel.output_offset() as i64)?;
    l.func_wrap(MODULE, "output_length", |c: Ctx| c.data().kernel.output_length() as i64)?;
    l.func_wrap(MODULE, "error_set", |mut c: Ctx, h: i64| c.data_mut().kernel.error_set(h as u64))?;
    l.func_wrap(MODULE, "error_get", |c: Ctx| c.data().kernel.error_get() as i64)?;
    Ok(())
}

fn define_config_and_vars(l: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    l.func_wrap(MODULE, "config_get", config_get)?;
    l.func_wrap(MODULE, "var_get", var_get)?;
    l.func_wrap(MODULE, "var_set", var_set)?;
    Ok(())
}

fn define_http(l: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    l.func_wrap(MODULE, "http_request", http_request)?;
    l.func_wrap(MODULE, "http_status_code", |c: Ctx| i32::from(c.data().http_status))?;
    l.func_wrap(MODULE, "http_headers", http_headers)?;
    Ok(())
}

fn define_logging(l: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    l.func_wrap(MODULE, "log_trace", |c: Ctx, h: i64| log(c, LogLevel::Trace, "log_trace", h))?;
    l.func_wrap(MODULE, "log_debug", |c: Ctx, h: i64| log(c, LogLevel::Debug, "log_debug", h))?;
    l.func_wrap(MODULE, "log_info", |c: Ctx, h: i64| log(c, LogLevel::Info, "log_info", h))?;
    l.func_wrap(MODULE, "log_warn", |c: Ctx, h: i64| log(c, LogLevel::Warn, "log_warn", h))?;
    l.func_wrap(MODULE, "log_error", |c: Ctx, h: i64| log(c, LogLevel::Error, "log_error", h))?;
    l.func_wrap(MODULE, "get_log_level", |c: Ctx| c.data().shared.log_level.abi_value())?;
    Ok(())
}

/// Reads a text argument and frees its block (the reference host's rule).
fn take_text(state: &mut HostState, function: &str, handle: i64) -> Result<String, HostError> {
    let text = state.read_text(function, handle as u64)?;
    state.kernel.free(handle as u64);
    Ok(text)
}

fn config_get(mut c: Ctx, key: i64) -> HostResult<i64> {
    let state = c.data_mut();
    let key = take_text(state, "config_get", key)?;
    let value = state.shared.config.get(&key).cloned().unwrap_or_default();
    Ok(state.alloc_bytes("config_get", value.as_bytes())? as i64)
}

fn var_get(mut c: Ctx, key: i64) -> HostResult<i64> {
    let state = c.data_mut();
    let key = take_text(state, "var_get", key)?;
    let value = state.vars.get(&key).unwrap_or_default();
    Ok(state.alloc_bytes("var_get", &value)? as i64)
}

fn var_set(mut c: Ctx, key: i64, value: i64) -> HostResult<()> {
    let state = c.data_mut();
    let name = take_text(state, "var_set", key)?;
    let bytes = state.read_block("var_set", value as u64)?;
    state.kernel.free(value as u64);
    let value = (value != 0).then_some(bytes.as_slice());
    let max = state.shared.limits.max_var_bytes;
    match state.vars.set(&name, value, max) {
        Ok(()) => Ok(()),
        Err(VarError::Disabled) => {
            Err(HostError::failed("var_set", "vars are disabled for this function").into())
        }
        Err(VarError::Full) => Err(HostError::MemoryLimit(MemoryLimit::Vars).into()),
    }
}

fn http_request(mut c: Ctx, request: i64, body: i64) -> HostResult<i64> {
    let state = c.data_mut();
    state.http_status = 0;
    state.http_headers = None;
    let json = state.read_block("http_request", request as u64)?;
    let body_bytes = state.read_block("http_request", body as u64)?;
    state.kernel.free(request as u64);
    state.kernel.free(body as u64);
    let req = parse_extism_request(&json, (body != 0).then_some(body_bytes))
        .map_err(|e| HostError::failed("http_request", e))?;
    let response = send(state, "http_request", &req)?;
    state.http_status = response.status;
    if state.shared.http_response_headers {
        state.http_headers = Some(response.headers_joined());
    }
    Ok(state.alloc_bytes("http_request", &response.body)? as i64)
}

/// Sends a plugin's request under its policy and the call's deadline. A
/// denial is logged into the call's logs too, naming the setting to change.
pub(crate) fn send(
    state: &mut HostState,
    function: &str,
    req: &super::outbound::HttpRequest,
) -> Result<super::outbound::HttpResponse, HostError> {
    state.check_deadline()?;
    let shared = state.shared.clone();
    let limit = shared.limits.max_http_response_bytes;
    match shared.http.send(req, &shared.allowed_hosts, state.remaining(), limit) {
        Ok(response) => Ok(response),
        Err(HttpError::Timeout { .. }) if state.check_deadline().is_err() => Err(HostError::Timeout),
        Err(e @ HttpError::Denied { .. }) => {
            state.log(LogLevel::Warn, format!("{function}: {e}"));
            Err(HostError::failed(function, e.to_string()))
        }
        Err(e) => Err(HostError::failed(function, e.to_string())),
    }
}

fn http_headers(mut c: Ctx) -> HostResult<i64> {
    let state = c.data_mut();
    let Some(headers) = state.http_headers.clone() else {
        return Ok(0);
    };
    let json = serde_json::to_vec(&headers).unwrap_or_default();
    Ok(state.alloc_bytes("http_headers", &json)? as i64)
}

fn log(mut c: Ctx, level: LogLevel, function: &str, handle: i64) -> HostResult<()> {
    let state = c.data_mut();
    let threshold = state.shared.log_level;
    if threshold == LogLevel::Off || level < threshold {
        state.kernel.free(handle as u64);
        return Ok(());
    }
    let text = state.read_block(function, handle as u64)?;
    state.kernel.free(handle as u64);
    state.log(level, String::from_utf8_lossy(&text).into_owned());
    Ok(())
}
