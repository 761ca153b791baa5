//! The Extism kernel, written natively: the host-owned byte space ("Extism
//! memory") that plugins reach only through `alloc`, `load_*`, `store_*` and
//! friends, plus the input, output and error of the current call.
//!
//! Design (ABI sections 3.1, 4): one flat arena addressed from [`BASE`], a
//! bump allocator that reuses space only after [`Kernel::reset`] (so a freed
//! handle is never handed out again for another block within one call, which
//! keeps double frees harmless), and the list of blocks for `length`, in
//! handle order: the bump allocator hands handles out in increasing order,
//! so finding one is a binary search, with no hashing on the host calls a
//! PDK makes per 8 bytes.
//! Every accessor is total: out-of-range loads read 0 and out-of-range stores
//! do nothing, so no plugin can make the host panic.

/// Address of the first byte of the arena; handle 0 stays "none".
pub const BASE: u64 = 8;

/// Blocks start on 8-byte boundaries (not required by the ABI, but cheap).
const ALIGN: u64 = 8;

/// Host-owned memory of one plugin instance.
#[derive(Debug)]
pub struct Kernel {
    arena: Vec<u8>,
    /// (handle, length) in handle order; a freed block stays, with length
    /// 0, until the next reset.
    blocks: Vec<(u64, u64)>,
    max_bytes: u64,
    input: (u64, u64),
    output: (u64, u64),
    error: u64,
    limit_hit: bool,
}

impl Kernel {
    /// A kernel whose arena may hold at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Kernel {
        Kernel {
            arena: Vec::new(),
            blocks: Vec::new(),
            max_bytes,
            input: (0, 0),
            output: (0, 0),
            error: 0,
            limit_hit: false,
        }
    }

    /// Drops every block and clears input, output and error (start of a call).
    pub fn reset(&mut self) {
        self.arena.clear();
        self.blocks.clear();
        self.input = (0, 0);
        self.output = (0, 0);
        self.error = 0;
        self.limit_hit = false;
    }

    /// True once an `alloc` was refused because of the size cap (this call).
    pub fn limit_hit(&self) -> bool {
        self.limit_hit
    }

    /// The arena cap in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Bytes currently managed (arena length).
    pub fn memory_bytes(&self) -> u64 {
        self.arena.len() as u64
    }

    /// Bytes the kernel keeps between calls: [`Kernel::reset`] empties the
    /// arena and the block table but keeps their allocations.
    pub fn held_bytes(&self) -> u64 {
        let block = std::mem::size_of::<(u64, u64)>();
        (self.arena.capacity() + self.blocks.capacity() * block) as u64
    }

    /// Allocates `len` zeroed bytes; 0 for `len == 0` or when over the cap.
    pub fn alloc(&mut self, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let start = (self.arena.len() as u64).next_multiple_of(ALIGN);
        let end = match start.checked_add(len) {
            Some(end) if end <= self.max_bytes => end,
            _ => {
                self.limit_hit = true;
                return 0;
            }
        };
        self.arena.resize(end as usize, 0);
        let handle = BASE + start;
        self.blocks.push((handle, len));
        handle
    }

    /// Allocates a block holding `bytes`; 0 for empty bytes or over the cap.
    pub fn alloc_bytes(&mut self, bytes: &[u8]) -> u64 {
        let handle = self.alloc(bytes.len() as u64);
        if handle != 0 {
            let start = (handle - BASE) as usize;
            self.arena[start..start + bytes.len()].copy_from_slice(bytes);
        }
        handle
    }

    /// Frees a block; unknown, interior and already-freed handles are ignored.
    pub fn free(&mut self, handle: u64) {
        let Some(i) = self.find(handle) else { return };
        let was_live = std::mem::take(&mut self.blocks[i].1) != 0;
        if was_live && handle == self.input.0 {
            self.input = (handle, 0);
        }
    }

    /// Length of the live block starting exactly at `handle`, else 0.
    pub fn length(&self, handle: u64) -> u64 {
        self.find(handle).map_or(0, |i| self.blocks[i].1)
    }

    fn find(&self, handle: u64) -> Option<usize> {
        self.blocks.binary_search_by_key(&handle, |block| block.0).ok()
    }

    /// The bytes of a live block, `Some(&[])` for handle 0 (the empty value),
    /// `None` for a non-zero handle that is not a live block.
    pub fn block(&self, handle: u64) -> Option<&[u8]> {
        if handle == 0 {
            return Some(&[]);
        }
        let len = self.length(handle);
        if len == 0 {
            return None;
        }
        self.span(handle, len)
    }

    /// Bytes `[addr, addr+len)` if the whole span lies inside the arena.
    pub fn span(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let start = addr.checked_sub(BASE)?;
        let end = start.checked_add(len)?;
        if end > self.arena.len() as u64 {
            return None;
        }
        Some(&self.arena[start as usize..end as usize])
    }

    fn span_mut(&mut self, addr: u64, len: u64) -> Option<&mut [u8]> {
        let start = addr.checked_sub(BASE)?;
        let end = start.checked_add(len)?;
        if end > self.arena.len() as u64 {
            return None;
        }
        Some(&mut self.arena[start as usize..end as usize])
    }

    pub fn load_u8(&self, addr: u64) -> u8 {
        self.span(addr, 1).map_or(0, |b| b[0])
    }

    pub fn load_u64(&self, addr: u64) -> u64 {
        self.span(addr, 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    pub fn store_u8(&mut self, addr: u64, value: u8) {
        if let Some(b) = self.span_mut(addr, 1) {
            b[0] = value;
        }
    }

    pub fn store_u64(&mut self, addr: u64, value: u64) {
        if let Some(b) = self.span_mut(addr, 8) {
            b.copy_from_slice(&value.to_le_bytes());
        }
    }

    /// Copies `bytes` into a new block and makes it the input; empty input
    /// is `(0, 0)`. Returns false if the arena cap refused it.
    pub fn set_input(&mut self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            self.input = (0, 0);
            return true;
        }
        let handle = self.alloc_bytes(bytes);
        self.input = (handle, if handle == 0 { 0 } else { bytes.len() as u64 });
        handle != 0
    }

    /// Marks an existing span as the input (the `input_set` import).
    pub fn input_set(&mut self, addr: u64, len: u64) {
        if self.span(addr, len).is_some() {
            self.input = (addr, len);
        }
    }

    pub fn input_offset(&self) -> u64 {
        if self.input.1 == 0 { 0 } else { self.input.0 }
    }

    pub fn input_length(&self) -> u64 {
        self.input.1
    }

    /// Input byte `i`, 0 past the end.
    pub fn input_load_u8(&self, i: u64) -> u8 {
        if i >= self.input.1 {
            return 0;
        }
        self.load_u8(self.input.0 + i)
    }

    /// 8 input bytes from `i`, 0 unless all 8 lie inside the input.
    pub fn input_load_u64(&self, i: u64) -> u64 {
        match i.checked_add(8) {
            Some(end) if end <= self.input.1 => self.load_u64(self.input.0 + i),
            _ => 0,
        }
    }

    /// Records the output span; `(0, 0)` clears it, out-of-range is ignored.
    pub fn output_set(&mut self, addr: u64, len: u64) {
        if (addr == 0 && len == 0) || self.span(addr, len).is_some() {
            self.output = (addr, len);
        }
    }

    pub fn output_offset(&self) -> u64 {
        self.output.0
    }

    pub fn output_length(&self) -> u64 {
        self.output.1
    }

    /// The recorded output bytes (empty when never set).
    pub fn output(&self) -> &[u8] {
        self.span(self.output.0, self.output.1).unwrap_or(&[])
    }

    /// Records the error handle; 0 clears it.
    pub fn error_set(&mut self, handle: u64) {
        self.error = handle;
    }

    pub fn error_get(&self) -> u64 {
        self.error
    }

    /// The error message the plugin set, if any (non-empty, live block).
    pub fn error_message(&self) -> Option<String> {
        let bytes = self.block(self.error)?;
        (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> Kernel {
        Kernel::new(1 << 20)
    }

    #[test]
    fn alloc_zero_returns_null_handle() {
        let mut k = kernel();
        assert_eq!(k.alloc(0), 0);
        assert_eq!(k.memory_bytes(), 0);
    }

    #[test]
    fn handles_are_non_zero_and_distinct() {
        let mut k = kernel();
        let a = k.alloc(3);
        let b = k.alloc(3);
        assert!(a >= BASE && b > a);
        assert_eq!(k.length(a), 3);
        assert_eq!(k.length(b), 3);
    }

    #[test]
    fn length_is_zero_for_interior_freed_and_unknown_handles() {
        let mut k = kernel();
        let h = k.alloc(16);
        assert_eq!(k.length(h + 1), 0);
        assert_eq!(k.length(0), 0);
        assert_eq!(k.length(999_999), 0);
        k.free(h);
        assert_eq!(k.length(h), 0);
    }

    #[test]
    fn free_is_idempotent_and_ignores_unknown_handles() {
        let mut k = kernel();
        let h = k.alloc(4);
        k.free(h);
        k.free(h);
        k.free(0);
        k.free(h + 2);
        k.free(u64::MAX);
        assert!(k.alloc(4) > h, "freed space is not reused within a call");
    }

    #[test]
    fn handle_arithmetic_addresses_block_bytes() {
        let mut k = kernel();
        let h = k.alloc_bytes(b"hello world!");
        assert_eq!(k.load_u8(h + 4), b'o');
        assert_eq!(k.load_u64(h), u64::from_le_bytes(*b"hello wo"));
        k.store_u8(h, b'j');
        assert_eq!(k.block(h), Some(&b"jello world!"[..]));
    }

    #[test]
    fn out_of_range_loads_read_zero_and_stores_do_nothing() {
        let mut k = kernel();
        let h = k.alloc_bytes(b"abc");
        assert_eq!(k.load_u64(0xffff_ffff_ffff), 0);
        assert_eq!(k.load_u8(u64::MAX), 0);
        assert_eq!(k.load_u8(0), 0);
        k.store_u8(1_000_000_000, 5);
        k.store_u64(u64::MAX - 3, 5);
        k.store_u64(0, 5);
        assert_eq!(k.block(h), Some(&b"abc"[..]));
    }

    #[test]
    fn input_load_u64_needs_all_eight_bytes_inside_the_input() {
        let mut k = kernel();
        k.set_input(b"abcdefghij");
        assert_eq!(k.input_load_u64(0), u64::from_le_bytes(*b"abcdefgh"));
        assert_eq!(k.input_load_u64(2), u64::from_le_bytes(*b"cdefghij"));
        assert_eq!(k.input_load_u64(3), 0);
        assert_eq!(k.input_load_u64(u64::MAX), 0);
        assert_eq!(k.input_load_u8(9), b'j');
        assert_eq!(k.input_load_u8(10), 0);
    }

    #[test]
    fn empty_input_is_null() {
        let mut k = kernel();
        k.set_input(b"");
        assert_eq!((k.input_offset(), k.input_length()), (0, 0));
    }

    #[test]
    fn input_offset_names_a_block_of_input_length() {
        let mut k = kernel();
        k.set_input(b"12345");
        assert_eq!(k.length(k.input_offset()), k.input_length());
    }

    #[test]
    fn freeing_the_input_block_zeroes_input_length() {
        let mut k = kernel();
        k.set_input(b"12345");
        k.free(k.input_offset());
        assert_eq!(k.input_length(), 0);
    }

    #[test]
    fn output_span_may_be_inside_a_block() {
        let mut k = kernel();
        let h = k.alloc_bytes(b"hello");
        k.output_set(h + 2, 3);
        assert_eq!(k.output(), b"llo");
        k.output_set(h, 1_000);
        assert_eq!(k.output(), b"llo", "out-of-range spans are ignored");
        k.output_set(0, 0);
        assert_eq!(k.output(), b"");
    }

    #[test]
    fn reset_rewinds_the_allocator() {
        let mut k = kernel();
        let first = k.alloc(10);
        k.alloc(10);
        k.error_set(first);
        k.reset();
        assert_eq!(k.alloc(10), first);
        assert_eq!(k.error_get(), 0);
        assert_eq!(k.input_length(), 0);
    }

    #[test]
    fn reset_keeps_what_the_arena_held() {
        let mut k = kernel();
        k.alloc(100_000);
        k.reset();
        assert!(k.held_bytes() >= 100_000, "{}", k.held_bytes());
    }

    #[test]
    fn alloc_past_the_cap_returns_zero_and_records_it() {
        let mut k = Kernel::new(100);
        assert_ne!(k.alloc(64), 0);
        assert_eq!(k.alloc(64), 0);
        assert!(k.limit_hit());
        assert_eq!(k.alloc(u64::MAX), 0);
    }

    #[test]
    fn error_message_needs_a_non_empty_live_block() {
        let mut k = kernel();
        assert_eq!(k.error_message(), None);
        let h = k.alloc_bytes(b"boom");
        k.error_set(h);
        assert_eq!(k.error_message().as_deref(), Some("boom"));
        k.error_set(0);
        assert_eq!(k.error_message(), None);
    }
}
