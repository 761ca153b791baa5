;; bad_import.wat: imports a name extism:host/env does not have; must fail at load.
(module
  (import "extism:host/env" "not_a_function" (func (param i64) (result i64)))
  (func (export "handle") (result i32) (i32.const 0))
)
