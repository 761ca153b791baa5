;; respond.wat: answers what its configuration says, for route tests.
;;   respond -> outputs the config value "response" as it is (an empty
;;              output when the key is missing)
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "response")

  (func (export "respond") (result i32)
    (local $key i64) (local $value i64) (local $i i32)
    ;; The key "response" as an Extism block.
    (local.set $key (call $alloc (i64.const 8)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 8)))
      (call $store_u8 (i64.add (local.get $key) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.set $value (call $config_get (local.get $key)))
    (if (i64.ne (local.get $value) (i64.const 0))
      (then (call $output_set (local.get $value) (call $length (local.get $value)))))
    (i32.const 0))
)
