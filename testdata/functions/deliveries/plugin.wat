;; counter: counts its invocations in the var "count" (shared by all the
;; function's instances, kept across reloads) and labels the answer with the
;; config value "label" (default "count").
;; Output: {"label":"visits","count":N}
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "count")
  (data (i32.const 8) "label")
  (data (i32.const 16) "{\"label\":\"")
  (data (i32.const 32) "\",\"count\":")
  (data (i32.const 48) "}")

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

  ;; $decimal: writes n in decimal at dst; returns the end.
  (func $decimal (param $dst i32) (param $n i64) (result i32)
    (local $p i32)
    (local.set $p (i32.const 4000))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $n) (i64.const 10)))))
      (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $n) (i64.const 0))))
    (call $copy (local.get $dst) (local.get $p) (i32.sub (i32.const 4000) (local.get $p))))
  ;; $label: copies the config value "label" (at most 500 bytes) to dst;
  ;; "count" when it is not set. Returns the end.
  (func $label (param $dst i32) (result i32)
    (local $h i64) (local $len i32) (local $i i32)
    (local.set $h (call $config_get (call $str (i32.const 8) (i32.const 5))))
    (if (i64.eqz (local.get $h)) (then (return (call $copy (local.get $dst) (i32.const 0) (i32.const 5)))))
    (local.set $len (i32.wrap_i64 (call $length (local.get $h))))
    (if (i32.gt_u (local.get $len) (i32.const 500)) (then (local.set $len (i32.const 500))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (i32.store8 (i32.add (local.get $dst) (local.get $i)) (call $load_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.add (local.get $dst) (local.get $len)))
  (func (export "handle") (result i32)
    (local $h i64) (local $n i64) (local $v i64) (local $o i32)
    (local.set $h (call $var_get (call $str (i32.const 0) (i32.const 5))))
    (if (i64.eq (call $length (local.get $h)) (i64.const 8)) (then (local.set $n (call $load_u64 (local.get $h)))))
    (local.set $n (i64.add (local.get $n) (i64.const 1)))
    (local.set $v (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $v) (local.get $n))
    (call $var_set (call $str (i32.const 0) (i32.const 5)) (local.get $v))
    (local.set $o (call $copy (i32.const 1024) (i32.const 16) (i32.const 10)))
    (local.set $o (call $label (local.get $o)))
    (local.set $o (call $copy (local.get $o) (i32.const 32) (i32.const 10)))
    (local.set $o (call $decimal (local.get $o) (local.get $n)))
    (local.set $o (call $copy (local.get $o) (i32.const 48) (i32.const 1)))
    (call $out (i32.const 1024) (i32.sub (local.get $o) (i32.const 1024)))
    (i32.const 0))
)
