;; audit: an async event hook that logs "audited an event" and answers
;; {"audited": true}.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "audited an event")
  (data (i32.const 32) "{\"audited\": true}")

  ;; A new Extism block holding linear memory [ptr, ptr+len).
  (func $block (param $ptr i32) (param $len i32) (result i64)
    (local $h i64) (local $i i32)
    (local.set $h (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $h))

  (func (export "handle") (result i32)
    (call $log_info (call $block (i32.const 0) (i32.const 16)))
    (call $output_set (call $block (i32.const 32) (i32.const 17)) (i64.const 17))
    (i32.const 0))
)
