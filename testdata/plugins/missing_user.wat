;; missing_user.wat: imports a user host function nobody defines; must fail at load.
(module
  (import "extism:host/user" "nope" (func))
  (func (export "handle") (result i32) (i32.const 0))
)
