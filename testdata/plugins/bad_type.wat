;; bad_type.wat: imports alloc with the wrong type; must fail at load.
(module
  (import "extism:host/env" "alloc" (func (param i32) (result i32)))
  (func (export "handle") (result i32) (i32.const 0))
)
