;; hook.wat: event hooks' answers.
;;   answer -> the config value "answer" as it is (e.g. {"reject":true,...}
;;             or {"data":...}); no output when the key is absent
;;   wrap   -> {"data":INPUT}: replaces the event's data with the whole
;;             envelope it was given, so a chain of wraps shows who saw what
;;   fail   -> error "hook failed", rc 1
;;   report -> sends its input (the envelope) with http_request, as the
;;             config value "request" (Extism request JSON) says; fails
;;             with "report refused" unless the answer is 200
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "extism:host/env" "http_status_code" (func $http_status_code (result i32)))
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
  ;; $fail: sets the error to linear memory [ptr, ptr+len) and returns 1.
  (func $fail (param $ptr i32) (param $len i32) (result i32)
    (call $error_set (call $str (local.get $ptr) (local.get $len)))
    (i32.const 1))
  ;; $decimal: writes n as decimal ending at 60000; returns the start.
  (func $decimal (param $n i64) (result i32)
    (local $p i32)
    (local.set $p (i32.const 60000))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $n) (i64.const 10)))))
      (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $n) (i64.const 0))))
    (local.get $p))
  ;; $out_u64: sets the output to n in decimal.
  (func $out_u64 (param $n i64)
    (local $p i32)
    (local.set $p (call $decimal (local.get $n)))
    (call $out (local.get $p) (i32.sub (i32.const 60000) (local.get $p))))
  ;; $input_u64: the input read as a decimal number.
  (func $input_u64 (result i64)
    (local $i i64) (local $n i64)
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (call $input_length)))
      (local.set $n (i64.add (i64.mul (local.get $n) (i64.const 10))
        (i64.extend_i32_u (i32.sub (call $input_load_u8 (local.get $i)) (i32.const 48)))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $next)))
    (local.get $n))


  (data (i32.const 0) "answer")
  (data (i32.const 8) "{\"data\":")
  (data (i32.const 16) "}")
  (data (i32.const 24) "hook failed")
  (func (export "answer") (result i32)
    (local $value i64)
    (local.set $value (call $config_get (call $str (i32.const 0) (i32.const 6))))
    (if (i64.ne (local.get $value) (i64.const 0))
      (then (call $output_set (local.get $value) (call $length (local.get $value)))))
    (i32.const 0))
  (func (export "wrap") (result i32)
    (local $len i64) (local $h i64) (local $i i64)
    (local.set $len (call $input_length))
    (local.set $h (call $alloc (i64.add (local.get $len) (i64.const 9))))
    (block $done (loop $prefix
      (br_if $done (i64.ge_u (local.get $i) (i64.const 8)))
      (call $store_u8 (i64.add (local.get $h) (local.get $i))
                      (i32.load8_u (i32.add (i32.const 8) (i32.wrap_i64 (local.get $i)))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $prefix)))
    (local.set $i (i64.const 0))
    (block $done (loop $byte
      (br_if $done (i64.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $h) (i64.add (local.get $i) (i64.const 8)))
                      (call $input_load_u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $byte)))
    (call $store_u8 (i64.add (local.get $h) (i64.add (local.get $len) (i64.const 8))) (i32.const 125))
    (call $output_set (local.get $h) (i64.add (local.get $len) (i64.const 9)))
    (i32.const 0))
  (func (export "fail") (result i32)
    (call $fail (i32.const 24) (i32.const 11)))
  (data (i32.const 40) "request")
  (data (i32.const 48) "report refused")
  (func (export "report") (result i32)
    (drop (call $http_request (call $config_get (call $str (i32.const 40) (i32.const 7)))
                              (call $input_offset)))
    (if (result i32) (i32.eq (call $http_status_code) (i32.const 200))
      (then (i32.const 0))
      (else (call $fail (i32.const 48) (i32.const 14)))))
)
