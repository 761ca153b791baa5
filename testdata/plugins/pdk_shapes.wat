;; The shapes of real PDK plugins (issue 11), for `make bench` and tests:
;; input read 8 bytes per host call (`input_load_u64`, the tail with
;; `input_load_u8`), as the Rust and Go PDKs do; output written into Extism
;; memory 8 bytes per `store_u64`; a guest initialiser that must run first.
;;
;;   _initialize     -> fills the vowel table (count_vowels counts 0 without it)
;;   count_vowels    -> {"count":N} for the vowels of the input
;;   kernel_traffic  -> the input back, through a block written with
;;                      store_u64 and read back with load_u64
;;
;; Linear memory: [0, 256) the vowel table, [256, 320) scratch for the
;; output text, from 64 KiB the input, then its copy read back.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 2)

  (func (export "_initialize")
    (local $p i32)
    (local.set $p (i32.const 0))
    (loop $chars
      (i32.store8 (i32.load8_u offset=1024 (local.get $p)) (i32.const 1))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br_if $chars (i32.lt_u (local.get $p) (i32.const 10)))))
  (data (i32.const 1024) "aeiouAEIOU")

  ;; Makes room for `len` bytes at `at` (pages of 64 KiB).
  (func $reserve (param $at i32) (param $len i32)
    (local $need i32)
    (local.set $need
      (i32.sub
        (i32.shr_u (i32.add (i32.add (local.get $at) (local.get $len)) (i32.const 65535)) (i32.const 16))
        (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (drop (memory.grow (local.get $need))))))

  ;; The input copied to `at`, 8 bytes per host call; returns its length.
  (func $read_input (param $at i32) (result i32)
    (local $len i32) (local $i i32)
    (local.set $len (i32.wrap_i64 (call $input_length)))
    (call $reserve (local.get $at) (local.get $len))
    (block $done
      (loop $words
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $len)))
        (i64.store (i32.add (local.get $at) (local.get $i))
          (call $input_load_u64 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $words)))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8 (i32.add (local.get $at) (local.get $i))
          (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $bytes)))
    (local.get $len))

  ;; A new Extism block holding [at, at+len), written 8 bytes per host call.
  (func $to_block (param $at i32) (param $len i32) (result i64)
    (local $block i64) (local $i i32)
    (local.set $block (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $words
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $len)))
        (call $store_u64 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
          (i64.load (i32.add (local.get $at) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $words)))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $at) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $bytes)))
    (local.get $block))

  ;; Block bytes [0, len) copied to `at`, 8 bytes per host call.
  (func $from_block (param $block i64) (param $len i32) (param $at i32)
    (local $i i32)
    (call $reserve (local.get $at) (local.get $len))
    (block $done
      (loop $words
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $len)))
        (i64.store (i32.add (local.get $at) (local.get $i))
          (call $load_u64 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $words)))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8 (i32.add (local.get $at) (local.get $i))
          (call $load_u8 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $bytes))))

  (func $output (param $at i32) (param $len i32)
    (call $output_set (call $to_block (local.get $at) (local.get $len)) (i64.extend_i32_u (local.get $len))))

  (func (export "count_vowels") (result i32)
    (local $len i32) (local $i i32) (local $count i32) (local $end i32) (local $digits i32)
    (local.set $len (call $read_input (i32.const 65536)))
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $count (i32.add (local.get $count)
          (i32.load8_u (i32.load8_u offset=65536 (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    ;; {"count":N}: `}` at 319, the digits backwards before it, then the prefix.
    (local.set $end (i32.const 319))
    (i32.store8 (local.get $end) (i32.const 125))
    (local.set $digits (local.get $end))
    (loop $digit
      (local.set $digits (i32.sub (local.get $digits) (i32.const 1)))
      (i32.store8 (local.get $digits) (i32.add (i32.const 48) (i32.rem_u (local.get $count) (i32.const 10))))
      (local.set $count (i32.div_u (local.get $count) (i32.const 10)))
      (br_if $digit (local.get $count)))
    (local.set $digits (i32.sub (local.get $digits) (i32.const 9)))
    (i32.store8 (local.get $digits) (i32.const 123)) ;; {
    (i64.store offset=1 (local.get $digits) (i64.const 0x3a22746e756f6322)) ;; "count":
    (call $output (local.get $digits) (i32.sub (i32.add (local.get $end) (i32.const 1)) (local.get $digits)))
    (i32.const 0))

  (func (export "kernel_traffic") (result i32)
    (local $len i32) (local $block i64) (local $copy i32)
    (local.set $len (call $read_input (i32.const 65536)))
    (local.set $block (call $to_block (i32.const 65536) (local.get $len)))
    (local.set $copy (i32.add (i32.const 65536) (local.get $len)))
    (call $from_block (local.get $block) (local.get $len) (local.get $copy))
    (call $output (local.get $copy) (local.get $len))
    (i32.const 0)))
