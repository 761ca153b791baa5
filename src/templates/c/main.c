// {{name}}: an alyx function in C, without libc. It reads the request
// envelope ({"request_id", "function", "input", "context"}), uses a config
// value, logs, and answers JSON:
// POST {"name": "Ada"} -> {"greeting": "Hello, Ada!"}.
//
// The Extism host functions it needs are declared below by hand (the
// Extism C PDK, extism-pdk.h, declares them all if you prefer it). Extism
// memory is the host's: bytes go in and out through a handle (u64).
#include <stdint.h>

#define IMPORT(name) __attribute__((import_module("extism:host/env"), import_name(name)))

IMPORT("input_length") uint64_t input_length(void);
IMPORT("input_load_u8") uint8_t input_load_u8(uint64_t offset);
IMPORT("alloc") uint64_t alloc(uint64_t length);
IMPORT("length") uint64_t length(uint64_t handle);
IMPORT("load_u8") uint8_t load_u8(uint64_t address);
IMPORT("store_u8") void store_u8(uint64_t address, uint8_t byte);
IMPORT("output_set") void output_set(uint64_t handle, uint64_t length);
IMPORT("config_get") uint64_t config_get(uint64_t key);
IMPORT("log_info") void log_info(uint64_t handle);

#define MAX_INPUT 65536
static char input[MAX_INPUT];
static char out[1024];

// Copies `n` bytes into a new block of Extism memory.
static uint64_t to_host(const char *bytes, uint64_t n) {
  uint64_t handle = alloc(n);
  for (uint64_t i = 0; i < n; i++) store_u8(handle + i, (uint8_t)bytes[i]);
  return handle;
}

static uint64_t text_length(const char *s) {
  uint64_t n = 0;
  while (s[n]) n++;
  return n;
}

// Appends `s` (n bytes) at out[*at], escaped for a JSON string when `escape`.
static void append(uint64_t *at, const char *s, uint64_t n, int escape) {
  for (uint64_t i = 0; i < n && *at + 2 < sizeof out; i++) {
    char c = s[i];
    if (escape && (c == '"' || c == '\\')) out[(*at)++] = '\\';
    if (escape && (unsigned char)c < 0x20) c = ' ';
    out[(*at)++] = c;
  }
}

// The string value of "name" inside "input", as written (no unescaping):
// a small scanner for a template, not a JSON parser. Returns its length, or
// -1 when there is none.
static int64_t input_name(uint64_t n, const char **start) {
  const char *key = "\"input\":";
  for (uint64_t i = 0; i + 8 < n; i++) {
    uint64_t k = 0;
    while (k < 8 && input[i + k] == key[k]) k++;
    if (k < 8) continue;
    for (uint64_t j = i + 8; j + 8 < n; j++) {
      const char *name = "\"name\":\"";
      uint64_t m = 0;
      while (m < 8 && input[j + m] == name[m]) m++;
      if (m < 8) continue;
      uint64_t end = j + 8;
      while (end < n && input[end] != '"') end += input[end] == '\\' ? 2 : 1;
      *start = input + j + 8;
      return (int64_t)(end - (j + 8));
    }
  }
  return -1;
}

__attribute__((export_name("handle"))) int32_t handle(void) {
  uint64_t n = input_length();
  if (n > MAX_INPUT) n = MAX_INPUT;
  for (uint64_t i = 0; i < n; i++) input[i] = (char)input_load_u8(i);

  const char *name = "world";
  int64_t name_length = input_name(n, &name);
  if (name_length < 0) name_length = 5;
  if (name_length == 0) {
    // A failure with a 4xx status of its own: alyx answers 422.
    const char *failed = "{\"success\": false, \"error\": {\"code\": \"BAD_NAME\", "
                         "\"message\": \"name is empty\", \"status\": 422}}";
    output_set(to_host(failed, text_length(failed)), text_length(failed));
    return 0;
  }

  char word[64] = "Hello";
  uint64_t word_length = 5;
  uint64_t value = config_get(to_host("greeting", 8));
  if (value) {
    word_length = length(value) < sizeof word ? length(value) : sizeof word;
    for (uint64_t i = 0; i < word_length; i++) word[i] = (char)load_u8(value + i);
  }

  uint64_t at = 0;
  append(&at, "greeting ", 9, 0);
  append(&at, name, (uint64_t)name_length, 0);
  log_info(to_host(out, at));

  at = 0;
  append(&at, "{\"greeting\": \"", 14, 0);
  append(&at, word, word_length, 1);
  append(&at, ", ", 2, 0);
  append(&at, name, (uint64_t)name_length, 0);
  append(&at, "!\"}", 3, 0);
  output_set(to_host(out, at), at);
  return 0;
}
