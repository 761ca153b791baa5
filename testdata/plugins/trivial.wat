;; trivial.wat: the smallest callable export, for benchmarks.
;;   noop -> returns 0, no output
(module
  (func (export "noop") (result i32) (i32.const 0))
)
