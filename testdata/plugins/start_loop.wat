;; start_loop.wat: a start section that never returns; the timeout must
;; stop instantiation.
;;   handle -> returns 0 (never reached)
(module
  (func $forever (loop $again (br $again)))
  (start $forever)
  (func (export "handle") (result i32) (i32.const 0))
)
