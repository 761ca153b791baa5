;; lib.wat: a library module for linking tests (imported as "lib").
;;   capitalize(i64) -> i64: a new block with the first byte of the given block
;;                         upper-cased (ASCII a-z)
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (func (export "capitalize") (param $src i64) (result i64)
    (local $len i64) (local $dst i64) (local $i i64) (local $c i32)
    (local.set $len (call $length (local.get $src)))
    (local.set $dst (call $alloc (local.get $len)))
    (block $done (loop $byte
      (br_if $done (i64.ge_u (local.get $i) (local.get $len)))
      (local.set $c (call $load_u8 (i64.add (local.get $src) (local.get $i))))
      (if (i32.and (i64.eqz (local.get $i))
                   (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122))))
        (then (local.set $c (i32.sub (local.get $c) (i32.const 32)))))
      (call $store_u8 (i64.add (local.get $dst) (local.get $i)) (local.get $c))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $byte)))
    (local.get $dst))
)
