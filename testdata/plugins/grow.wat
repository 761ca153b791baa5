;; grow.wat: linear memory that grows on request, for the rules on which
;; instances go back to their pool. Linear memory starts at 1 page; page
;; counts and times come from config values (decimal, absent = 0).
;;   _initialize -> grows memory to config "init_pages" pages (if smaller),
;;                  once per instance
;;   grow        -> grows memory to config "pages" pages (if smaller; a
;;                  failed memory.grow executes unreachable), then sleeps
;;                  config "hold_ms" milliseconds (WASI poll_oneoff) so that
;;                  concurrent calls overlap; outputs the memory size in
;;                  pages, in decimal
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

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

  ;; $config_u64: the config value named by linear memory [ptr, ptr+len),
  ;; read as a decimal number; 0 when absent.
  (func $config_u64 (param $ptr i32) (param $len i32) (result i64)
    (local $h i64) (local $i i64) (local $n i64)
    (local.set $h (call $config_get (call $str (local.get $ptr) (local.get $len))))
    (if (i64.eqz (local.get $h)) (then (return (i64.const 0))))
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (call $length (local.get $h))))
      (local.set $n (i64.add (i64.mul (local.get $n) (i64.const 10))
        (i64.extend_i32_u (i32.sub (call $load_u8 (i64.add (local.get $h) (local.get $i))) (i32.const 48)))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $next)))
    (local.get $n))
  ;; $grow_to: grows memory to `pages` pages if smaller; unreachable when
  ;; memory.grow fails.
  (func $grow_to (param $pages i64)
    (local $more i64)
    (local.set $more (i64.sub (local.get $pages) (i64.extend_i32_u (memory.size))))
    (if (i64.le_s (local.get $more) (i64.const 0)) (then (return)))
    (if (i32.eq (memory.grow (i32.wrap_i64 (local.get $more))) (i32.const -1)) (then unreachable)))
  ;; $sleep: one relative monotonic clock subscription of ms milliseconds.
  (func $sleep (param $ms i64)
    (if (i64.eqz (local.get $ms)) (then (return)))
    (i64.store (i32.const 600) (i64.const 42))
    (i32.store8 (i32.const 608) (i32.const 0))
    (i32.store (i32.const 616) (i32.const 1))
    (i64.store (i32.const 624) (i64.mul (local.get $ms) (i64.const 1000000)))
    (i64.store (i32.const 632) (i64.const 0))
    (i32.store16 (i32.const 640) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 600) (i32.const 700) (i32.const 1) (i32.const 800))))

  (data (i32.const 0) "init_pages")
  (data (i32.const 16) "pages")
  (data (i32.const 24) "hold_ms")
  (func (export "_initialize")
    (call $grow_to (call $config_u64 (i32.const 0) (i32.const 10))))
  (func (export "grow") (result i32)
    (call $grow_to (call $config_u64 (i32.const 16) (i32.const 5)))
    (call $sleep (call $config_u64 (i32.const 24) (i32.const 7)))
    (call $out_u64 (i64.extend_i32_u (memory.size)))
    (i32.const 0))
)
