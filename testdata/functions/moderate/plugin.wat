;; moderate: a sync event hook. The input is the envelope
;; {"input": {"trigger": "event", "event": {..., "data": ...}}, ...}.
;; If the envelope holds the bytes "spam" anywhere, answers
;; {"reject": true, "reason": "looks like spam"}; otherwise replaces the
;; event's data with {"moderated": true, "by": "moderate"}.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "spam")
  (data (i32.const 16) "{\"reject\": true, \"reason\": \"looks like spam\"}")
  (data (i32.const 128) "{\"data\": {\"moderated\": true, \"by\": \"moderate\"}}")

  ;; Sets the output to linear memory [ptr, ptr+len).
  (func $out (param $ptr i32) (param $len i32)
    (local $h i64) (local $i i32)
    (local.set $h (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $output_set (local.get $h) (i64.extend_i32_u (local.get $len))))

  ;; 1 if the input holds "spam" at byte $at.
  (func $spam_at (param $at i64) (result i32)
    (local $k i32)
    (block $no (loop $next
      (br_if $no (i32.ne (call $input_load_u8 (i64.add (local.get $at) (i64.extend_i32_u (local.get $k))))
                         (i32.load8_u (local.get $k))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $k) (i32.const 4)))
      (return (i32.const 1))))
    (i32.const 0))

  (func (export "handle") (result i32)
    (local $at i64) (local $last i64)
    (local.set $last (i64.sub (call $input_length) (i64.const 4)))
    (block $clean (loop $next
      (br_if $clean (i64.gt_s (local.get $at) (local.get $last)))
      (if (call $spam_at (local.get $at))
        (then (call $out (i32.const 16) (i32.const 45)) (return (i32.const 0))))
      (local.set $at (i64.add (local.get $at) (i64.const 1)))
      (br $next)))
    (call $out (i32.const 128) (i32.const 47))
    (i32.const 0))
)
