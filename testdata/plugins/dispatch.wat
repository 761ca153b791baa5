;; dispatch.wat: the native stack wasmi's dispatch uses must not grow with
;; the number of instructions run. Each export calls the user host function
;; `depth` (which records how deep the native stack is), runs a loop of one
;; kind of instruction 5000 times, and calls `depth` again. Loops stay
;; under one fuel slice, so nothing is unwound between the two records.
;;   calls     -> call / return, with and without values, and an early return
;;   indirect  -> call_indirect through a table
;;   branches  -> br_table, br_if, if/else, select
;;   memory_ops -> loads, stores, memory.copy, memory.fill, memory.size
;;   host      -> a host function (input_length) per iteration
;;   grows     -> memory.grow(0) (0 from a local: wasmi turns a constant 0
;;                into memory.size), and a memory.grow and a table.grow
;;                that fail: fuel slices bound the frames growth keeps
(module
  (import "extism:host/user" "depth" (func $depth (param i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (memory (export "memory") 1)
  (table $t 2 2 funcref)
  (elem (i32.const 0) $empty $add)
  (global $g (mut i32) (i32.const 0))

  (func $empty)
  (func $add (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func $early (param i32) (result i32)
    (block (br_if 0 (local.get 0)) (return (i32.const 7)))
    (i32.const 9))

  (func (export "calls") (result i32)
    (local $i i32)
    (call $depth (i32.const 0))
    (loop $again
      (call $empty)
      (global.set $g (call $add (global.get $g) (call $early (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 5000))))
    (call $depth (i32.const 1))
    (i32.const 0))

  (func (export "indirect") (result i32)
    (local $i i32)
    (call $depth (i32.const 0))
    (loop $again
      (call_indirect (i32.const 0))
      (global.set $g (call_indirect (param i32 i32) (result i32) (local.get $i) (i32.const 1) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 5000))))
    (call $depth (i32.const 1))
    (i32.const 0))

  (func (export "branches") (result i32)
    (local $i i32)
    (call $depth (i32.const 0))
    (loop $again
      (block $a (block $b (block $c
        (br_table $a $b $c (i32.rem_u (local.get $i) (i32.const 3))))
        (global.set $g (i32.const 1)))
        (global.set $g (select (i32.const 2) (i32.const 3) (local.get $i))))
      (if (i32.and (local.get $i) (i32.const 1))
        (then (global.set $g (i32.const 4)))
        (else (global.set $g (i32.const 5))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 5000))))
    (call $depth (i32.const 1))
    (i32.const 0))

  (func (export "memory_ops") (result i32)
    (local $i i32)
    (call $depth (i32.const 0))
    (loop $again
      (i32.store (i32.const 64) (local.get $i))
      (i64.store8 (i32.const 70) (i64.load (i32.const 64)))
      (memory.copy (i32.const 128) (i32.const 64) (i32.const 16))
      (memory.fill (i32.const 256) (i32.const 7) (i32.const 16))
      (global.set $g (i32.add (memory.size) (i32.load8_u (i32.const 128))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 5000))))
    (call $depth (i32.const 1))
    (i32.const 0))

  (func (export "host") (result i32)
    (local $i i32)
    (call $depth (i32.const 0))
    (loop $again
      (drop (call $input_length))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 5000))))
    (call $depth (i32.const 1))
    (i32.const 0))

  (func (export "grows") (result i32)
    (local $i i32) (local $zero i32)
    (call $depth (i32.const 0))
    (loop $again
      (drop (memory.grow (local.get $zero)))
      (drop (memory.grow (i32.const 65536)))
      (drop (table.grow $t (ref.null func) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 5000))))
    (call $depth (i32.const 1))
    (i32.const 0))
)
