;; output.wat: outputs that are not JSON text (the HTTP envelope must carry
;; them without blowing up). Both ignore their input.
;;   zeros    -> 3 MiB of NUL bytes: valid UTF-8, but six bytes each as JSON
;;   not_utf8 -> the bytes ff fe 00 41: not UTF-8 at all
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)

  ;; --- helpers (same in every test plugin) ---
  ;; $str: copies linear memory [ptr, ptr+len) into a new Extism block.
  (func $str (param $ptr i32) (param $len i32) (result i64)
    (local $h i64) (local $i i32)
    (local.set $h (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $h))
  ;; $out: sets the output to linear memory [ptr, ptr+len).
  (func $out (param $ptr i32) (param $len i32)
    (call $output_set (call $str (local.get $ptr) (local.get $len)) (i64.extend_i32_u (local.get $len))))

  (data (i32.const 0) "\ff\fe\00A")

  ;; alloc hands out zeroed blocks, so a fresh one is the output as it is.
  (func (export "zeros") (result i32)
    (call $output_set (call $alloc (i64.const 3145728)) (i64.const 3145728))
    (i32.const 0))
  (func (export "not_utf8") (result i32)
    (call $out (i32.const 0) (i32.const 4))
    (i32.const 0))
)
