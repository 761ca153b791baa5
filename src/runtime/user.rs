//! User host functions: functions the embedder offers plugins beyond the
//! Extism ABI, in `extism:host/user` or any other namespace, and alyx's own
//! built-in `alyx_http_request` from the reference design.
//!
//! Embedders describe functions with this module's own value types, so no
//! code outside the runtime needs to know wasmi.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wasmi::{Caller, FuncType, Linker, Val, ValType};

use super::error::HostError;
use super::outbound::{alyx_response_json, parse_alyx_request};
use super::signature::from_spec;
use super::state::{HostState, LogLevel};

/// The default namespace of user host functions.
pub const USER_MODULE: &str = "extism:host/user";

/// A Wasm value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    I32,
    I64,
    F32,
    F64,
}

/// A Wasm value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
}

/// What a host function may do with the calling instance: read and write
/// Extism memory blocks, log, see the time left.
pub struct HostCall<'a> {
    state: &'a mut HostState,
}

impl HostCall<'_> {
    /// The bytes of a block the plugin passed (handle 0 is empty).
    pub fn read(&self, handle: u64) -> Option<Vec<u8>> {
        self.state.kernel.block(handle).map(<[u8]>::to_vec)
    }

    /// Copies bytes into a new block for the plugin; 0 for empty bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<u64, String> {
        self.state.alloc_bytes("host function", bytes).map_err(|e| e.to_string())
    }

    /// Frees a block the plugin passed.
    pub fn free(&mut self, handle: u64) {
        self.state.kernel.free(handle);
    }

    /// Adds a line to the call's logs.
    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.state.log(level, message.into());
    }

    /// Time left before the call's deadline (`None` = no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.state.remaining()
    }
}

type Callback = dyn Fn(&mut HostCall<'_>, &[Value]) -> Result<Vec<Value>, String> + Send + Sync;

/// A host function offered to plugins.
#[derive(Clone)]
pub struct HostFunction {
    pub namespace: String,
    pub name: String,
    pub params: Vec<ValueType>,
    pub results: Vec<ValueType>,
    callback: Arc<Callback>,
}

impl fmt::Debug for HostFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostFunction({}::{} {:?} -> {:?})", self.namespace, self.name, self.params, self.results)
    }
}

impl HostFunction {
    /// A function in `extism:host/user`. An `Err` from the callback fails
    /// the call with that message, naming the function.
    pub fn new(
        name: &str,
        params: &[ValueType],
        results: &[ValueType],
        callback: impl Fn(&mut HostCall<'_>, &[Value]) -> Result<Vec<Value>, String> + Send + Sync + 'static,
    ) -> HostFunction {
        HostFunction {
            namespace: USER_MODULE.to_string(),
            name: name.to_string(),
            params: params.to_vec(),
            results: results.to_vec(),
            callback: Arc::new(callback),
        }
    }

    /// The same function in another namespace.
    pub fn in_namespace(mut self, namespace: &str) -> HostFunction {
        self.namespace = namespace.to_string();
        self
    }
}

/// Defines the built-in and the given user functions in the linker.
pub fn define(linker: &mut Linker<HostState>, functions: &[HostFunction]) -> Result<(), wasmi::Error> {
    linker.func_wrap(USER_MODULE, "alyx_http_request", alyx_http_request)?;
    for function in functions {
        define_one(linker, function.clone())?;
    }
    Ok(())
}

/// The type of a user function (or the built-in), if one is defined.
pub fn signature(module: &str, name: &str, functions: &[HostFunction]) -> Option<FuncType> {
    if module == USER_MODULE && name == "alyx_http_request" {
        return Some(from_spec("II", "I"));
    }
    let f = functions.iter().find(|f| f.namespace == module && f.name == name)?;
    Some(func_type(f))
}

fn func_type(function: &HostFunction) -> FuncType {
    FuncType::new(
        function.params.iter().map(|t| wasm_type(*t)),
        function.results.iter().map(|t| wasm_type(*t)),
    )
}

fn define_one(linker: &mut Linker<HostState>, function: HostFunction) -> Result<(), wasmi::Error> {
    let ty = func_type(&function);
    let (namespace, name) = (function.namespace.clone(), function.name.clone());
    linker.func_new(&namespace, &name, ty, move |mut caller: Caller<'_, HostState>, args, out| {
        let args: Vec<Value> = args.iter().map(to_value).collect();
        let mut call = HostCall { state: caller.data_mut() };
        let results = (function.callback)(&mut call, &args)
            .map_err(|message| HostError::failed(&function.name, message))?;
        if results.len() != out.len() {
            let message = format!("returned {} values, its type says {}", results.len(), out.len());
            return Err(HostError::failed(&function.name, message).into());
        }
        for (slot, value) in out.iter_mut().zip(results) {
            *slot = from_value(value);
        }
        Ok(())
    })?;
    Ok(())
}

/// `alyx_http_request(request_json, unused) -> response_json` (reference
/// design): 0 on any failure, with the reason in the call's logs.
fn alyx_http_request(
    mut caller: Caller<'_, HostState>,
    request: i64,
    _unused: i64,
) -> Result<i64, wasmi::Error> {
    const NAME: &str = "alyx_http_request";
    let state = caller.data_mut();
    let json = state.read_block(NAME, request as u64)?;
    let req = match parse_alyx_request(&json) {
        Ok(req) => req,
        Err(e) => {
            state.log(LogLevel::Warn, format!("{NAME}: {e}"));
            return Ok(0);
        }
    };
    match super::host_env::send(state, NAME, &req) {
        Ok(response) => Ok(state.alloc_bytes(NAME, &alyx_response_json(&response))? as i64),
        Err(HostError::Failed { message, .. }) => {
            state.log(LogLevel::Warn, format!("{NAME}: {message}"));
            Ok(0)
        }
        Err(fatal) => Err(fatal.into()),
    }
}

fn wasm_type(t: ValueType) -> ValType {
    match t {
        ValueType::I32 => ValType::I32,
        ValueType::I64 => ValType::I64,
        ValueType::F32 => ValType::F32,
        ValueType::F64 => ValType::F64,
    }
}

fn to_value(v: &Val) -> Value {
    match v {
        Val::I32(x) => Value::I32(*x),
        Val::I64(x) => Value::I64(*x),
        Val::F32(x) => Value::F32(f32::from(*x)),
        Val::F64(x) => Value::F64(f64::from(*x)),
        // Only numeric types can be declared by `ValueType`.
        _ => Value::I64(0),
    }
}

fn from_value(v: Value) -> Val {
    match v {
        Value::I32(x) => Val::I32(x),
        Value::I64(x) => Val::I64(x),
        Value::F32(x) => Val::F32(x.into()),
        Value::F64(x) => Val::F64(x.into()),
    }
}
