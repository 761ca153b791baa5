//! Small edits and reads on the Wasm binary format, done before compiling.
//!
//! Why: wasmi runs a module's start function inside instantiation with a
//! plain, non-resumable call, so a start section that never returns could
//! only be stopped by a fixed fuel budget, not by the call's deadline.
//! [`detach_start`] removes the start section and exports its function under
//! [`START_EXPORT`] instead; the runtime calls it right after instantiation,
//! with the same fuel slices and deadline as every other call. The order of
//! effects is unchanged (data and element segments are applied first).
//!
//! [`function_names`] reads the `name` custom section for trap messages.

use std::collections::HashMap;

/// The export under which a detached start function is reachable.
pub const START_EXPORT: &str = "__alyx_start";

const SECTION_CUSTOM: u8 = 0;
const SECTION_EXPORT: u8 = 7;
const SECTION_START: u8 = 8;
const EXPORT_KIND_FUNC: u8 = 0;

/// One section: id and the byte range of its contents.
struct Section {
    id: u8,
    header_start: usize,
    content: std::ops::Range<usize>,
}

/// If the module has a start section, returns it rewritten so that the start
/// function is exported as [`START_EXPORT`] instead; `None` if it has none.
pub fn detach_start(wasm: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let sections = sections(wasm)?;
    let Some(start) = sections.iter().find(|s| s.id == SECTION_START) else {
        return Ok(None);
    };
    let (func_index, _) = read_leb(wasm, start.content.start)?;
    let export_entry = export_entry(START_EXPORT, func_index);
    let mut out = Vec::with_capacity(wasm.len() + 32);
    out.extend_from_slice(&wasm[..8]);
    let has_exports = sections.iter().any(|s| s.id == SECTION_EXPORT);
    for section in &sections {
        match section.id {
            SECTION_START if !has_exports => {
                push_section(&mut out, SECTION_EXPORT, &[encode_leb(1), export_entry.clone()].concat());
            }
            SECTION_START => {}
            SECTION_EXPORT => {
                let body = &wasm[section.content.clone()];
                let (count, used) = read_leb(body, 0)?;
                let mut content = encode_leb(count + 1);
                content.extend_from_slice(&body[used..]);
                content.extend_from_slice(&export_entry);
                push_section(&mut out, SECTION_EXPORT, &content);
            }
            _ => out.extend_from_slice(&wasm[section.header_start..section.content.end]),
        }
    }
    Ok(Some(out))
}

/// Code alyx refuses because wasmi 2.0.0 would run it unsafely, described
/// (the first found; `None` if none):
///
/// - a `v128.store8_lane` or `v128.store16_lane` on a memory other than the
///   first or with a static offset of 64 KiB or more: wasmi bounds-checks
///   them, when the address is not a constant, only on its fast path
///   (memory 0, a 16-bit offset); on the other path they write outside the
///   linear memory (found by `make fuzz`);
/// - a function with more than `max_grows` `memory.grow` and `table.grow`:
///   with tail-call dispatch each keeps a native stack frame until the call
///   pauses, and fuel, charged per block, pauses a call only between blocks
///   (see `plugin::GROW_FUEL`), so one long block of them could overflow
///   the stack.
///
/// Code that does not parse is left to wasmi to report. Only bodies whose
/// bytes could hold one of these are decoded (a few of thousands).
pub fn refused_code(wasm: &[u8], max_grows: usize) -> Option<String> {
    use wasmparser::{Operator, Payload};
    let bodies = wasmparser::Parser::new(0).parse_all(wasm).filter_map(|payload| match payload {
        Ok(Payload::CodeSectionEntry(body)) => Some(body),
        _ => None,
    });
    for (index, body) in bodies.enumerate() {
        let (lane_store, grows) = candidates(body.as_bytes());
        if !lane_store && grows <= max_grows {
            continue;
        }
        let Ok(mut reader) = body.get_operators_reader() else { continue };
        let mut grows = 0;
        while let Ok(operator) = reader.read() {
            let (name, memarg) = match operator {
                Operator::MemoryGrow { .. } | Operator::TableGrow { .. } => {
                    grows += 1;
                    continue;
                }
                Operator::V128Store8Lane { memarg, .. } => ("v128.store8_lane", memarg),
                Operator::V128Store16Lane { memarg, .. } => ("v128.store16_lane", memarg),
                _ => continue,
            };
            if memarg.memory != 0 || memarg.offset >= 1 << 16 {
                return Some(format!(
                    "{name} on memory {} with offset {}: alyx refuses these lane stores on a memory other \
                     than the first or with an offset of 64 KiB or more (wasmi 2.0.0 does not bounds-check them)",
                    memarg.memory, memarg.offset
                ));
            }
        }
        if grows > max_grows {
            return Some(format!(
                "function body {index} of the code section has {grows} memory.grow and table.grow; alyx \
                 allows at most {max_grows} in one function (in wasmi 2.0.0 each keeps a native stack \
                 frame until the call pauses)"
            ));
        }
    }
    None
}

/// What `code` may hold, from its bytes alone, in one pass: whether it can
/// encode `v128.store8_lane` or `v128.store16_lane` (the prefix 0xFD, then
/// the opcode 88 or 89 as a LEB128, whose first byte is 0x58/0x59, or
/// 0xD8/0xD9 when padded), and at least how many `memory.grow` (0x40) and
/// `table.grow` (0xFC, then 15 as a LEB128) it holds: every byte pair that
/// could start one. A body ends with `end`, so no opcode is in the last byte.
fn candidates(code: &[u8]) -> (bool, usize) {
    let (mut lane_store, mut grows) = (false, 0);
    for pair in code.windows(2) {
        match (pair[0], pair[1] & 0x7F) {
            (0x40, _) | (0xFC, 0x0F) => grows += 1,
            (0xFD, 0x58 | 0x59) => lane_store = true,
            _ => {}
        }
    }
    (lane_store, grows)
}

/// Function index → name from the `name` custom section (empty if absent or
/// malformed: names are a convenience, never a reason to refuse a module).
pub fn function_names(wasm: &[u8]) -> HashMap<u32, String> {
    let Ok(sections) = sections(wasm) else {
        return HashMap::new();
    };
    sections
        .iter()
        .filter(|s| s.id == SECTION_CUSTOM)
        .find_map(|s| {
            let body = &wasm[s.content.clone()];
            let (name, used) = read_name(body, 0).ok()?;
            (name == "name").then(|| parse_function_names(&body[used..]).unwrap_or_default())
        })
        .unwrap_or_default()
}

/// Export name → the name-section name of the function it exports (only
/// where the name section has one).
pub fn export_function_names(wasm: &[u8]) -> HashMap<String, String> {
    let names = function_names(wasm);
    if names.is_empty() {
        return HashMap::new();
    }
    let Ok(sections) = sections(wasm) else {
        return HashMap::new();
    };
    let Some(exports) = sections.iter().find(|s| s.id == SECTION_EXPORT) else {
        return HashMap::new();
    };
    let exports = parse_func_exports(&wasm[exports.content.clone()]).unwrap_or_default();
    exports.into_iter().filter_map(|(export, index)| Some((export, names.get(&index)?.clone()))).collect()
}

fn parse_func_exports(body: &[u8]) -> Result<Vec<(String, u32)>, String> {
    let (count, mut pos) = read_leb(body, 0)?;
    let mut out = Vec::new();
    for _ in 0..count {
        let (name, used) = read_name(body, pos)?;
        let kind = *body.get(pos + used).ok_or("truncated export")?;
        let (index, used2) = read_leb(body, pos + used + 1)?;
        if kind == EXPORT_KIND_FUNC {
            out.push((name, index as u32));
        }
        pos += used + 1 + used2;
    }
    Ok(out)
}

fn parse_function_names(body: &[u8]) -> Result<HashMap<u32, String>, String> {
    let mut pos = 0;
    while pos < body.len() {
        let id = body[pos];
        let (size, used) = read_leb(body, pos + 1)?;
        let start = pos + 1 + used;
        let end = start.checked_add(size as usize).filter(|e| *e <= body.len()).ok_or("truncated")?;
        if id == 1 {
            return parse_name_map(&body[start..end]);
        }
        pos = end;
    }
    Ok(HashMap::new())
}

fn parse_name_map(body: &[u8]) -> Result<HashMap<u32, String>, String> {
    let (count, mut pos) = read_leb(body, 0)?;
    let mut names = HashMap::new();
    for _ in 0..count {
        let (index, used) = read_leb(body, pos)?;
        let (name, used2) = read_name(body, pos + used)?;
        names.insert(index as u32, name);
        pos += used + used2;
    }
    Ok(names)
}

fn sections(wasm: &[u8]) -> Result<Vec<Section>, String> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err("not a Wasm binary (missing \\0asm header)".into());
    }
    let mut pos = 8;
    let mut out = Vec::new();
    while pos < wasm.len() {
        let id = wasm[pos];
        let (size, used) = read_leb(wasm, pos + 1)?;
        let start = pos + 1 + used;
        let end = start
            .checked_add(size as usize)
            .filter(|e| *e <= wasm.len())
            .ok_or_else(|| format!("section {id} at byte {pos} runs past the end"))?;
        out.push(Section { id, header_start: pos, content: start..end });
        pos = end;
    }
    Ok(out)
}

fn push_section(out: &mut Vec<u8>, id: u8, content: &[u8]) {
    out.push(id);
    out.extend_from_slice(&encode_leb(content.len() as u64));
    out.extend_from_slice(content);
}

fn export_entry(name: &str, func_index: u64) -> Vec<u8> {
    let mut entry = encode_leb(name.len() as u64);
    entry.extend_from_slice(name.as_bytes());
    entry.push(EXPORT_KIND_FUNC);
    entry.extend_from_slice(&encode_leb(func_index));
    entry
}

fn read_name(bytes: &[u8], pos: usize) -> Result<(String, usize), String> {
    let (len, used) = read_leb(bytes, pos)?;
    let start = pos + used;
    let end = start.checked_add(len as usize).filter(|e| *e <= bytes.len()).ok_or("truncated name")?;
    Ok((String::from_utf8_lossy(&bytes[start..end]).into_owned(), used + len as usize))
}

/// Reads an unsigned LEB128 at `pos`: (value, bytes used).
fn read_leb(bytes: &[u8], pos: usize) -> Result<(u64, usize), String> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *bytes.get(pos + i).ok_or("truncated LEB128")?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err("LEB128 too long".into())
}

fn encode_leb(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(text: &str) -> Vec<u8> {
        wat::parse_str(text).expect("valid wat")
    }

    fn exports(bytes: &[u8]) -> Vec<String> {
        let engine = wasmi::Engine::default();
        let module = wasmi::Module::new(&engine, bytes).expect("still valid");
        let mut names: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn lane_stores_are_found_behind_the_byte_filter() {
        let store = |args: &str| {
            let text = format!(
                "(module (memory 1) (func (param i32 v128) (v128.store8_lane {args} (local.get 0) (local.get 1))))"
            );
            refused_code(&wasm(&text), 10)
        };
        let refused = store("offset=65536 0").expect("refused");
        assert!(refused.starts_with("v128.store8_lane on memory 0 with offset 65536: "), "{refused}");
        assert_eq!(store("offset=8 0"), None);
        assert!(candidates(&[0x0B, 0xFD, 0xD8, 0x00]).0, "an opcode padded to two bytes");
        assert!(!candidates(&[0xFD, 0x0B, 0x58, 0xFD]).0);
    }

    #[test]
    fn a_function_with_more_grows_than_allowed_is_found() {
        let module = |memory: usize, table: usize| {
            let body = "(drop (memory.grow (local.get 0)))".repeat(memory)
                + &"(drop (table.grow (ref.null func) (local.get 0)))".repeat(table);
            wasm(&format!("(module (memory 1) (table 1 funcref) (func) (func (param i32) {body}))"))
        };
        assert_eq!(refused_code(&module(2, 1), 3), None);
        let refused = refused_code(&module(2, 2), 3).expect("4 > 3");
        assert!(refused.starts_with("function body 1 of the code section has 4 memory.grow and table.grow"));
        assert_eq!(candidates(&[0xFC, 0x8F, 0x00, 0x40, 0x00, 0x0B]).1, 2, "table.grow padded, memory.grow");
    }

    #[test]
    fn module_without_start_is_left_alone() {
        assert_eq!(detach_start(&wasm("(module (func (export \"f\")))")), Ok(None));
    }

    #[test]
    fn start_becomes_an_export_beside_existing_ones() {
        let src = "(module (func $s) (func (export \"f\")) (start $s))";
        let out = detach_start(&wasm(src)).unwrap().unwrap();
        assert_eq!(exports(&out), [START_EXPORT, "f"]);
    }

    #[test]
    fn start_becomes_the_only_export_when_there_were_none() {
        let out = detach_start(&wasm("(module (func $s) (start $s))")).unwrap().unwrap();
        assert_eq!(exports(&out), [START_EXPORT]);
    }

    #[test]
    fn names_come_from_the_name_section() {
        let names = function_names(&wasm("(module (func $alpha) (func $beta))"));
        assert_eq!(names.get(&1).map(String::as_str), Some("beta"));
    }

    #[test]
    fn exports_map_to_their_internal_names() {
        let names = export_function_names(&wasm("(module (func $inner (export \"outer\")))"));
        assert_eq!(names.get("outer").map(String::as_str), Some("inner"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(detach_start(b"nope").is_err());
        assert!(detach_start(b"\0asm\x01\0\0\0\x08\xff").is_err());
        assert!(function_names(b"\0asm\x01\0\0\0\0\x05").is_empty());
    }

    #[test]
    fn leb_round_trips() {
        for v in [0, 1, 127, 128, 624_485, u32::MAX as u64] {
            assert_eq!(read_leb(&encode_leb(v), 0), Ok((v, encode_leb(v).len())));
        }
    }
}
