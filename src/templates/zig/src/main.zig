// {{name}}: an alyx function in Zig. It reads the request envelope
// ({"request_id", "function", "input", "context"}), uses a config value,
// logs, and answers JSON: POST {"name": "Ada"} -> {"greeting": "Hello, Ada!"}.
//
// The Extism host functions it needs are declared below; Extism memory is
// the host's: bytes go in and out through a handle (u64).
const std = @import("std");

const host = struct {
    extern "extism:host/env" fn input_length() u64;
    extern "extism:host/env" fn input_load_u8(offset: u64) u8;
    extern "extism:host/env" fn alloc(length: u64) u64;
    extern "extism:host/env" fn length(handle: u64) u64;
    extern "extism:host/env" fn load_u8(address: u64) u8;
    extern "extism:host/env" fn store_u8(address: u64, byte: u8) void;
    extern "extism:host/env" fn output_set(handle: u64, length: u64) void;
    extern "extism:host/env" fn config_get(key: u64) u64;
    extern "extism:host/env" fn log_info(handle: u64) void;
    extern "extism:host/env" fn error_set(handle: u64) void;
};

const allocator = std.heap.wasm_allocator;

/// Copies `bytes` into a new block of Extism memory.
fn toHost(bytes: []const u8) u64 {
    const block = host.alloc(bytes.len);
    for (bytes, 0..) |b, i| host.store_u8(block + i, b);
    return block;
}

/// The block `block` as bytes of our memory.
fn fromHost(block: u64) ![]u8 {
    const bytes = try allocator.alloc(u8, @intCast(host.length(block)));
    for (bytes, 0..) |*b, i| b.* = host.load_u8(block + i);
    return bytes;
}

fn output(bytes: []const u8) void {
    host.output_set(toHost(bytes), bytes.len);
}

fn run() !void {
    const input = try allocator.alloc(u8, @intCast(host.input_length()));
    for (input, 0..) |*b, i| b.* = host.input_load_u8(i);
    const envelope = try std.json.parseFromSlice(std.json.Value, allocator, input, .{});
    var name: []const u8 = "world";
    if (envelope.value.object.get("input")) |given| {
        if (given == .object) if (given.object.get("name")) |n| if (n == .string) {
            name = n.string;
        };
    }
    if (name.len == 0) {
        // A failure with a 4xx status of its own: alyx answers 422.
        return output("{\"success\": false, \"error\": {\"code\": \"BAD_NAME\", \"message\": \"name is empty\", \"status\": 422}}");
    }
    const value = host.config_get(toHost("greeting"));
    const word = if (value != 0) try fromHost(value) else "Hello";
    host.log_info(toHost(try std.fmt.allocPrint(allocator, "greeting {s}", .{name})));
    const greeting = try std.fmt.allocPrint(allocator, "{s}, {s}!", .{ word, name });
    var out: std.ArrayList(u8) = .empty;
    try out.appendSlice(allocator, "{\"greeting\": ");
    try appendJsonString(&out, greeting);
    try out.appendSlice(allocator, "}");
    output(out.items);
}

/// `text` as a JSON string.
fn appendJsonString(out: *std.ArrayList(u8), text: []const u8) !void {
    try out.append(allocator, '"');
    for (text) |c| switch (c) {
        '"', '\\' => try out.appendSlice(allocator, &.{ '\\', c }),
        0...0x1f => try out.appendSlice(allocator, try std.fmt.allocPrint(allocator, "\\u{x:0>4}", .{c})),
        else => try out.append(allocator, c),
    };
    try out.append(allocator, '"');
}

export fn handle() i32 {
    run() catch |err| {
        host.error_set(toHost(@errorName(err)));
        return 1;
    };
    return 0;
}
