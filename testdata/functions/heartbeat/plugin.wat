;; heartbeat: a scheduled function. Logs "heartbeat: due at <scheduled_for>"
;; (the input's `input.scheduled_for`, which a schedule sets) and outputs
;; {"beat":"<scheduled_for>"}; called otherwise (over HTTP), it logs
;; "heartbeat: not scheduled" and outputs {"beat":null}.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\"scheduled_for\":\"")   ;; 17 bytes
  (data (i32.const 32) "heartbeat: due at ")    ;; 18 bytes
  (data (i32.const 64) "heartbeat: not scheduled") ;; 24 bytes
  (data (i32.const 96) "{\"beat\":\"")          ;; 9 bytes
  (data (i32.const 112) "\"}")                  ;; 2 bytes
  (data (i32.const 128) "{\"beat\":null}")      ;; 13 bytes

  ;; --- helpers shared by the example plugins ---
  (global $INPUT i32 (i32.const 8192))
  ;; $load_input: copies the input to linear memory at $INPUT (growing the
  ;; memory as needed); returns its length.
  (func $load_input (result i32)
    (local $len i32) (local $i i32) (local $need i32)
    (local.set $len (i32.wrap_i64 (call $input_length)))
    (local.set $need (i32.add (i32.div_u (i32.add (global.get $INPUT) (local.get $len)) (i32.const 65536)) (i32.const 1)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1)) (then unreachable))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (i32.store8 (i32.add (global.get $INPUT) (local.get $i)) (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $len))
  ;; $find: index of [pat, pat+plen) in [from, to), or -1.
  (func $find (param $pat i32) (param $plen i32) (param $from i32) (param $to i32) (result i32)
    (local $i i32) (local $j i32)
    (local.set $i (local.get $from))
    (block $none (loop $at
      (br_if $none (i32.gt_u (i32.add (local.get $i) (local.get $plen)) (local.get $to)))
      (local.set $j (i32.const 0))
      (block $mismatch (loop $cmp
        (if (i32.eq (local.get $j) (local.get $plen)) (then (return (local.get $i))))
        (br_if $mismatch (i32.ne (i32.load8_u (i32.add (local.get $i) (local.get $j)))
                                 (i32.load8_u (i32.add (local.get $pat) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $cmp)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $at)))
    (i32.const -1))
  ;; $string_end: the index of the closing quote of a JSON string starting at
  ;; $from (escaped quotes skipped), or $to.
  (func $string_end (param $from i32) (param $to i32) (result i32)
    (local $i i32)
    (local.set $i (local.get $from))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $to)))
      (br_if $done (i32.eq (i32.load8_u (local.get $i)) (i32.const 34)))
      (if (i32.eq (i32.load8_u (local.get $i)) (i32.const 92)) (then (local.set $i (i32.add (local.get $i) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $i))
  ;; $copy: copies [src, src+len) to dst; returns dst + len.
  (func $copy (param $dst i32) (param $src i32) (param $len i32) (result i32)
    (memory.copy (local.get $dst) (local.get $src) (local.get $len))
    (i32.add (local.get $dst) (local.get $len)))
  ;; $str: copies [ptr, ptr+len) into a new Extism block.
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
  ;; $out: the output is [ptr, ptr+len).
  (func $out (param $ptr i32) (param $len i32)
    (call $output_set (call $str (local.get $ptr) (local.get $len)) (i64.extend_i32_u (local.get $len))))

  (func (export "handle") (result i32)
    (local $end i32) (local $at i32) (local $stop i32) (local $o i32)
    (local.set $end (i32.add (global.get $INPUT) (call $load_input)))
    (local.set $at (call $find (i32.const 0) (i32.const 17) (global.get $INPUT) (local.get $end)))
    (if (i32.lt_s (local.get $at) (i32.const 0))
      (then
        (call $log_info (call $str (i32.const 64) (i32.const 24)))
        (call $out (i32.const 128) (i32.const 13))
        (return (i32.const 0))))
    (local.set $at (i32.add (local.get $at) (i32.const 17)))
    (local.set $stop (call $string_end (local.get $at) (local.get $end)))
    ;; The log line at 1024, the output at 2048 (times are short).
    (local.set $o (call $copy (i32.const 1024) (i32.const 32) (i32.const 18)))
    (local.set $o (call $copy (local.get $o) (local.get $at) (i32.sub (local.get $stop) (local.get $at))))
    (call $log_info (call $str (i32.const 1024) (i32.sub (local.get $o) (i32.const 1024))))
    (local.set $o (call $copy (i32.const 2048) (i32.const 96) (i32.const 9)))
    (local.set $o (call $copy (local.get $o) (local.get $at) (i32.sub (local.get $stop) (local.get $at))))
    (local.set $o (call $copy (local.get $o) (i32.const 112) (i32.const 2)))
    (call $out (i32.const 2048) (i32.sub (local.get $o) (i32.const 2048)))
    (i32.const 0))
)
