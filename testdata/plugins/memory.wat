;; memory.wat: memory limits. Linear memory starts at 1 page.
;;   grow        -> memory.grow(input as decimal N); on -1 executes unreachable
;;                  (as PDK allocators do), else outputs "grown"
;;   alloc_bomb  -> allocates 1 MiB blocks until alloc returns 0, then unreachable
;;   huge_output -> allocates N (decimal input) bytes and outputs them all
;;   alloc_zero  -> "zero" when alloc(0) returns 0
;;   grow_retry       -> memory.grow(1) forever: growth fails from the cap on,
;;                       and only a time limit ends the loop
;;   table_grow_retry -> table.grow(1) forever past the table's maximum of 1
;;   grow_zero_retry  -> memory.grow(0) forever, 0 from a local (wasmi turns
;;                       a constant 0 into memory.size): it always succeeds
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (memory (export "memory") 1)
  (table 1 1 funcref)

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


  (data (i32.const 0) "grown")
  (data (i32.const 8) "zero")
  (func (export "grow") (result i32)
    (if (i32.eq (memory.grow (i32.wrap_i64 (call $input_u64))) (i32.const -1)) (then unreachable))
    (call $out (i32.const 0) (i32.const 5))
    (i32.const 0))
  (func (export "alloc_bomb") (result i32)
    (loop $more
      (br_if $more (i64.ne (call $alloc (i64.const 1048576)) (i64.const 0))))
    unreachable)
  (func (export "huge_output") (result i32)
    (local $n i64) (local $h i64)
    (local.set $n (call $input_u64))
    (local.set $h (call $alloc (local.get $n)))
    (if (i64.eqz (local.get $h)) (then unreachable))
    (call $output_set (local.get $h) (local.get $n))
    (i32.const 0))
  (func (export "alloc_zero") (result i32)
    (if (i64.eqz (call $alloc (i64.const 0))) (then (call $out (i32.const 8) (i32.const 4))))
    (i32.const 0))
  (func (export "grow_retry") (result i32)
    (loop $again (drop (memory.grow (i32.const 1))) (br $again))
    (i32.const 0))
  (func (export "table_grow_retry") (result i32)
    (loop $again (drop (table.grow (ref.null func) (i32.const 1))) (br $again))
    (i32.const 0))
  (func (export "grow_zero_retry") (result i32) (local $zero i32)
    (loop $again (drop (memory.grow (local.get $zero))) (br $again))
    (i32.const 0))
)
