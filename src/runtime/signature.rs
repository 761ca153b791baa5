//! Function types as the host's signature tables write them, and as
//! messages show them: a compact type string (`i` = i32, `I` = i64) becomes
//! a wasmi `FuncType`, and a `FuncType` becomes `(i64, i32) -> i64`.
//!
//! Why a module of its own: the tables live beside the host functions they
//! describe (`host_env`, `wasi`, `user`), and plugin loading reads them all;
//! with the conversion here, every one of them imports it and none imports
//! another.

use wasmi::{FuncType, ValType};

/// One host function: its name, parameter types and result types.
pub type Signature = (&'static str, &'static str, &'static str);

/// Builds a function type from type strings: `i` = i32, `I` = i64.
pub fn from_spec(params: &str, results: &str) -> FuncType {
    let types = |spec: &str| -> Vec<ValType> {
        spec.chars().map(|c| if c == 'I' { ValType::I64 } else { ValType::I32 }).collect()
    };
    FuncType::new(types(params), types(results))
}

/// The type of `name` in `table`, if the table lists it.
pub fn lookup(table: &[Signature], name: &str) -> Option<FuncType> {
    let (_, params, results) = table.iter().find(|(n, _, _)| *n == name)?;
    Some(from_spec(params, results))
}

/// True for `() -> ()` and `() -> i32`: the only types Extism can call.
pub fn is_callable(ty: &FuncType) -> bool {
    ty.params().is_empty() && matches!(ty.results(), [] | [ValType::I32])
}

/// Formats a function type like `(i64, i32) -> i64`.
pub fn describe(ty: &FuncType) -> String {
    let list = |types: &[ValType]| {
        types.iter().map(|t| format!("{t:?}").to_lowercase()).collect::<Vec<_>>().join(", ")
    };
    match ty.results() {
        [] => format!("({}) -> ()", list(ty.params())),
        [one] => format!("({}) -> {}", list(ty.params()), list(&[*one])),
        many => format!("({}) -> ({})", list(ty.params()), list(many)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_strings_become_function_types() {
        let ty = from_spec("Ii", "I");
        assert_eq!(describe(&ty), "(i64, i32) -> i64");
        assert_eq!(describe(&from_spec("", "")), "() -> ()");
        assert_eq!(lookup(&[("f", "i", "")], "f"), Some(from_spec("i", "")));
        assert_eq!(lookup(&[("f", "i", "")], "g"), None);
    }

    #[test]
    fn only_no_parameters_and_nothing_or_one_i32_is_callable() {
        assert!(is_callable(&from_spec("", "")));
        assert!(is_callable(&from_spec("", "i")));
        assert!(!is_callable(&from_spec("", "I")));
        assert!(!is_callable(&from_spec("i", "")));
    }
}
