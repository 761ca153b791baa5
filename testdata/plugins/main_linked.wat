;; main_linked.wat: the main module of a linking test; needs lib.wat linked
;; under the name "lib".
;;   handle -> lib.capitalize(input): "Benjamin" for "benjamin"
(module
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "lib" "capitalize" (func $capitalize (param i64) (result i64)))
  (func (export "handle") (result i32)
    (local $h i64)
    (local.set $h (call $capitalize (call $input_offset)))
    (call $output_set (local.get $h) (call $length (local.get $h)))
    (i32.const 0))
)
