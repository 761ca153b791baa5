;; nap.wat: calls that take a while without using the CPU (WASI poll_oneoff
;; on one relative clock subscription), for tests of queues and shutdown.
;;   nap_500   -> sleeps 500 ms, outputs "rested"
;;   nap_1000  -> sleeps 1 s, outputs "rested"
;;   nap_2000  -> sleeps 2 s, outputs "rested"
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "rested")

  ;; Sleeps $ms: one clock subscription at 600 (userdata, tag 0 = clock,
  ;; clock id 1 = monotonic, timeout in ns, precision, flags 0 = relative).
  (func $nap (param $ms i64) (result i32)
    (local $h i64) (local $i i32)
    (i64.store (i32.const 600) (i64.const 1))
    (i32.store8 (i32.const 608) (i32.const 0))
    (i32.store (i32.const 616) (i32.const 1))
    (i64.store (i32.const 624) (i64.mul (local.get $ms) (i64.const 1000000)))
    (i64.store (i32.const 632) (i64.const 0))
    (i32.store16 (i32.const 640) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 600) (i32.const 700) (i32.const 1) (i32.const 800)))
    (local.set $h (call $alloc (i64.const 6)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 6)))
      (call $store_u8 (i64.add (local.get $h) (i64.extend_i32_u (local.get $i)))
                      (i32.load8_u (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $output_set (local.get $h) (i64.const 6))
    (i32.const 0))

  (func (export "nap_500") (result i32) (call $nap (i64.const 500)))
  (func (export "nap_1000") (result i32) (call $nap (i64.const 1000)))
  (func (export "nap_2000") (result i32) (call $nap (i64.const 2000)))
)
