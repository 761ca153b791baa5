//! A minimal `wasi_snapshot_preview1`: every name is defined (so any PDK's
//! imports link), with real behaviour for what plugins call on the happy path
//! (ABI section 8): clocks, random, stdio captured as log lines, fdstat, the
//! preopen scan's end, bounded sleeps and `proc_exit`. Everything else, the
//! file system included, answers `ENOSYS`.
//!
//! WASI functions read and write the plugin's own exported `memory`.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmi::{Caller, Extern, Linker, Val};

use super::error::HostError;
use super::signature::{self, Signature};
use super::state::{HostState, Stream};

pub const MODULE: &str = "wasi_snapshot_preview1";

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;

const FILETYPE_CHARACTER_DEVICE: u8 = 2;

type Ctx<'a> = Caller<'a, HostState>;

/// Every preview1 function with its signature (`i` = i32, `I` = i64).
pub const SIGNATURES: &[Signature] = &[
    ("args_get", "ii", "i"),
    ("args_sizes_get", "ii", "i"),
    ("environ_get", "ii", "i"),
    ("environ_sizes_get", "ii", "i"),
    ("clock_res_get", "ii", "i"),
    ("clock_time_get", "iIi", "i"),
    ("fd_advise", "iIIi", "i"),
    ("fd_allocate", "iII", "i"),
    ("fd_close", "i", "i"),
    ("fd_datasync", "i", "i"),
    ("fd_fdstat_get", "ii", "i"),
    ("fd_fdstat_set_flags", "ii", "i"),
    ("fd_fdstat_set_rights", "iII", "i"),
    ("fd_filestat_get", "ii", "i"),
    ("fd_filestat_set_size", "iI", "i"),
    ("fd_filestat_set_times", "iIIi", "i"),
    ("fd_pread", "iiiIi", "i"),
    ("fd_prestat_get", "ii", "i"),
    ("fd_prestat_dir_name", "iii", "i"),
    ("fd_pwrite", "iiiIi", "i"),
    ("fd_read", "iiii", "i"),
    ("fd_readdir", "iiiIi", "i"),
    ("fd_renumber", "ii", "i"),
    ("fd_seek", "iIii", "i"),
    ("fd_sync", "i", "i"),
    ("fd_tell", "ii", "i"),
    ("fd_write", "iiii", "i"),
    ("path_create_directory", "iii", "i"),
    ("path_filestat_get", "iiiii", "i"),
    ("path_filestat_set_times", "iiiiIIi", "i"),
    ("path_link", "iiiiiii", "i"),
    ("path_open", "iiiiiIIii", "i"),
    ("path_readlink", "iiiiii", "i"),
    ("path_remove_directory", "iii", "i"),
    ("path_rename", "iiiiii", "i"),
    ("path_symlink", "iiiii", "i"),
    ("path_unlink_file", "iii", "i"),
    ("poll_oneoff", "iiii", "i"),
    ("proc_exit", "i", ""),
    ("proc_raise", "i", "i"),
    ("random_get", "ii", "i"),
    ("sched_yield", "", "i"),
    ("sock_accept", "iii", "i"),
    ("sock_recv", "iiiiii", "i"),
    ("sock_send", "iiiii", "i"),
    ("sock_shutdown", "ii", "i"),
];

/// Defines all of preview1: real functions first, `ENOSYS` stubs for the rest.
pub fn define(l: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    l.func_wrap(MODULE, "args_sizes_get", |c: Ctx, a: i32, b: i32| write_pair(c, a, b))?;
    l.func_wrap(MODULE, "environ_sizes_get", |c: Ctx, a: i32, b: i32| write_pair(c, a, b))?;
    l.func_wrap(MODULE, "args_get", |_: Ctx, _: i32, _: i32| SUCCESS)?;
    l.func_wrap(MODULE, "environ_get", |_: Ctx, _: i32, _: i32| SUCCESS)?;
    l.func_wrap(MODULE, "clock_res_get", clock_res_get)?;
    l.func_wrap(MODULE, "clock_time_get", clock_time_get)?;
    l.func_wrap(MODULE, "random_get", random_get)?;
    l.func_wrap(MODULE, "fd_write", fd_write)?;
    l.func_wrap(MODULE, "fd_read", fd_read)?;
    l.func_wrap(MODULE, "fd_close", |_: Ctx, fd: i32| stdio_or(fd, SUCCESS))?;
    l.func_wrap(MODULE, "fd_fdstat_get", fd_fdstat_get)?;
    l.func_wrap(MODULE, "fd_fdstat_set_flags", |_: Ctx, fd: i32, _: i32| stdio_or(fd, SUCCESS))?;
    l.func_wrap(MODULE, "fd_filestat_get", fd_filestat_get)?;
    l.func_wrap(MODULE, "fd_prestat_get", |_: Ctx, _: i32, _: i32| EBADF)?;
    l.func_wrap(MODULE, "fd_prestat_dir_name", |_: Ctx, _: i32, _: i32, _: i32| EBADF)?;
    l.func_wrap(MODULE, "fd_seek", |_: Ctx, fd: i32, _: i64, _: i32, _: i32| stdio_or(fd, ESPIPE))?;
    l.func_wrap(MODULE, "fd_tell", |_: Ctx, fd: i32, _: i32| stdio_or(fd, ESPIPE))?;
    l.func_wrap(MODULE, "poll_oneoff", poll_oneoff)?;
    l.func_wrap(MODULE, "proc_exit", |_: Ctx, code: i32| -> Result<(), wasmi::Error> {
        Err(HostError::Exit(code as u32).into())
    })?;
    l.func_wrap(MODULE, "sched_yield", |_: Ctx| SUCCESS)?;
    define_stubs(l)
}

/// `ENOSYS` for every name not defined above.
fn define_stubs(l: &mut Linker<HostState>) -> Result<(), wasmi::Error> {
    for (name, params, results) in SIGNATURES {
        if DEFINED.contains(name) {
            continue;
        }
        let ty = signature::from_spec(params, results);
        let fill_enosys = |_: Ctx, _: &[Val], out: &mut [Val]| {
            if let Some(slot) = out.first_mut() {
                *slot = Val::I32(ENOSYS);
            }
            Ok(())
        };
        l.func_new(MODULE, name, ty, fill_enosys)?;
    }
    Ok(())
}

/// The names [`define`] implements for real.
const DEFINED: &[&str] = &[
    "args_sizes_get",
    "environ_sizes_get",
    "args_get",
    "environ_get",
    "clock_res_get",
    "clock_time_get",
    "random_get",
    "fd_write",
    "fd_read",
    "fd_close",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_filestat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_seek",
    "fd_tell",
    "poll_oneoff",
    "proc_exit",
    "sched_yield",
];

fn is_stdio(fd: i32) -> bool {
    (0..=2).contains(&fd)
}

fn stdio_or(fd: i32, answer: i32) -> i32 {
    if is_stdio(fd) { answer } else { EBADF }
}

/// The plugin's exported linear memory and the host state, together.
fn memory<'a>(c: &'a mut Ctx) -> Option<(&'a mut [u8], &'a mut HostState)> {
    let memory = c.get_export("memory").and_then(Extern::into_memory)?;
    Some(memory.data_and_store_mut(c))
}

fn write_bytes(mem: &mut [u8], ptr: i32, bytes: &[u8]) -> Result<(), i32> {
    let start = ptr as u32 as usize;
    let dst = mem.get_mut(start..start + bytes.len()).ok_or(EFAULT)?;
    dst.copy_from_slice(bytes);
    Ok(())
}

fn read_u32(mem: &[u8], ptr: usize) -> Result<u32, i32> {
    let bytes = mem.get(ptr..ptr + 4).ok_or(EFAULT)?;
    Ok(u32::from_le_bytes(bytes.try_into().map_err(|_| EFAULT)?))
}

fn read_u64(mem: &[u8], ptr: usize) -> Result<u64, i32> {
    let bytes = mem.get(ptr..ptr + 8).ok_or(EFAULT)?;
    Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| EFAULT)?))
}

fn errno(result: Result<(), i32>) -> i32 {
    result.err().unwrap_or(SUCCESS)
}

/// Writes two zero u32s: no arguments, no environment.
fn write_pair(mut c: Ctx, count_ptr: i32, size_ptr: i32) -> i32 {
    let Some((mem, _)) = memory(&mut c) else {
        return EFAULT;
    };
    errno(write_bytes(mem, count_ptr, &[0; 4]).and_then(|()| write_bytes(mem, size_ptr, &[0; 4])))
}

fn clock_res_get(mut c: Ctx, id: i32, ptr: i32) -> i32 {
    let Some((mem, _)) = memory(&mut c) else {
        return EFAULT;
    };
    if !(0..=3).contains(&id) {
        return EINVAL;
    }
    errno(write_bytes(mem, ptr, &1000u64.to_le_bytes()))
}

fn clock_time_get(mut c: Ctx, id: i32, _precision: i64, ptr: i32) -> i32 {
    let Some((mem, _)) = memory(&mut c) else {
        return EFAULT;
    };
    let now = match id {
        0 => SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64,
        1..=3 => monotonic_nanos(),
        _ => return EINVAL,
    };
    errno(write_bytes(mem, ptr, &now.to_le_bytes()))
}

/// Nanoseconds on a monotonic clock that starts above zero.
fn monotonic_nanos() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = ORIGIN.get_or_init(Instant::now);
    origin.elapsed().as_nanos() as u64 + 1
}

fn random_get(mut c: Ctx, ptr: i32, len: i32) -> i32 {
    let Some((mem, _)) = memory(&mut c) else {
        return EFAULT;
    };
    let start = ptr as u32 as usize;
    let Some(buf) = mem.get_mut(start..start + len as u32 as usize) else {
        return EFAULT;
    };
    crate::random::fill(buf);
    SUCCESS
}

/// Gathers the bytes of `iovs_len` iovecs at `iovs`.
fn gather(mem: &[u8], iovs: i32, iovs_len: i32) -> Result<Vec<u8>, i32> {
    let mut out = Vec::new();
    for i in 0..iovs_len as u32 as usize {
        let at = iovs as u32 as usize + i * 8;
        let ptr = read_u32(mem, at)? as usize;
        let len = read_u32(mem, at + 4)? as usize;
        out.extend_from_slice(mem.get(ptr..ptr + len).ok_or(EFAULT)?);
    }
    Ok(out)
}

fn fd_write(mut c: Ctx, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32 {
    let Some((mem, state)) = memory(&mut c) else {
        return EFAULT;
    };
    if fd != 1 && fd != 2 {
        return EBADF;
    }
    let bytes = match gather(mem, iovs, iovs_len) {
        Ok(bytes) => bytes,
        Err(e) => return e,
    };
    let max = state.shared.limits.max_log_bytes;
    let stream = if fd == 1 { Stream::Stdout } else { Stream::Stderr };
    if stream.level() >= state.shared.log_level {
        state.logs.write_stream(stream, &bytes, max);
    }
    errno(write_bytes(mem, nwritten, &(bytes.len() as u32).to_le_bytes()))
}

/// stdin is empty: reads return end of file.
fn fd_read(mut c: Ctx, fd: i32, _iovs: i32, _iovs_len: i32, nread: i32) -> i32 {
    let Some((mem, _)) = memory(&mut c) else {
        return EFAULT;
    };
    if fd != 0 {
        return EBADF;
    }
    errno(write_bytes(mem, nread, &[0; 4]))
}

fn fd_fdstat_get(mut c: Ctx, fd: i32, ptr: i32) -> i32 {
    let Some((mem, _)) = memory(&mut c) else {
        return EFAULT;
    };
    if !is_stdio(fd) {
        return EBADF;
    }
    let mut stat = [0u8; 24];
    stat[0] = FILETYPE_CHARACTER_DEVICE;
    stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    stat[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    errno(write_bytes(mem, ptr, &stat))
}

fn fd_filestat_get(mut c: Ctx, fd: i32, ptr: i32) -> i32 {
    let Some((mem, _)) = memory(&mut c) else {
        return EFAULT;
    };
    if !is_stdio(fd) {
        return EBADF;
    }
    let mut stat = [0u8; 64];
    stat[16] = FILETYPE_CHARACTER_DEVICE;
    errno(write_bytes(mem, ptr, &stat))
}

/// Subscriptions are 48 bytes, events 32 (preview1 layout).
const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
const EVENTTYPE_CLOCK: u8 = 0;

/// Sleeps until the earliest clock subscription (never past the call's
/// deadline); fd subscriptions on stdio are ready at once.
fn poll_oneoff(mut c: Ctx, subs: i32, events: i32, nsubs: i32, nevents: i32) -> Result<i32, wasmi::Error> {
    let Some((mem, state)) = memory(&mut c) else {
        return Ok(EFAULT);
    };
    let plan = match read_subscriptions(mem, subs as u32 as usize, nsubs as u32 as usize) {
        Ok(plan) => plan,
        Err(e) => return Ok(e),
    };
    let Some((userdata, event_type, wait)) = plan else {
        return Ok(EINVAL);
    };
    if !wait.is_zero() {
        sleep_within_deadline(state, wait)?;
    }
    let mut event = [0u8; EVENT_SIZE];
    event[0..8].copy_from_slice(&userdata.to_le_bytes());
    event[10] = event_type;
    let result =
        write_bytes(mem, events, &event).and_then(|()| write_bytes(mem, nevents, &1u32.to_le_bytes()));
    Ok(errno(result))
}

/// The subscription to answer: (userdata, event type, how long to wait).
fn read_subscriptions(mem: &[u8], at: usize, n: usize) -> Result<Option<(u64, u8, Duration)>, i32> {
    let mut best: Option<(u64, u8, Duration)> = None;
    for i in 0..n {
        let base = at + i * SUBSCRIPTION_SIZE;
        let userdata = read_u64(mem, base)?;
        let tag = *mem.get(base + 8).ok_or(EFAULT)?;
        let wait = if tag == EVENTTYPE_CLOCK { clock_wait(mem, base)? } else { Duration::ZERO };
        if best.is_none_or(|(_, _, w)| wait < w) {
            best = Some((userdata, tag, wait));
        }
    }
    Ok(best)
}

fn clock_wait(mem: &[u8], base: usize) -> Result<Duration, i32> {
    let clock_id = read_u32(mem, base + 16)?;
    let timeout = read_u64(mem, base + 24)?;
    let flags = u16::from_le_bytes([*mem.get(base + 40).ok_or(EFAULT)?, *mem.get(base + 41).ok_or(EFAULT)?]);
    if flags & 1 == 0 {
        return Ok(Duration::from_nanos(timeout));
    }
    let now = match clock_id {
        0 => SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64,
        _ => monotonic_nanos(),
    };
    Ok(Duration::from_nanos(timeout.saturating_sub(now)))
}

fn sleep_within_deadline(state: &HostState, wait: Duration) -> Result<(), HostError> {
    match state.remaining() {
        Some(left) if left <= wait => {
            std::thread::sleep(left);
            Err(HostError::Timeout)
        }
        _ => {
            std::thread::sleep(wait);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_real_function_has_a_signature_entry() {
        for name in DEFINED {
            assert!(SIGNATURES.iter().any(|(n, _, _)| n == name), "{name}");
        }
    }

    #[test]
    fn relative_clock_subscription_waits_its_timeout() {
        let mut mem = vec![0u8; 96];
        mem[0..8].copy_from_slice(&7u64.to_le_bytes());
        mem[24..32].copy_from_slice(&5_000_000u64.to_le_bytes());
        mem[48 + 8] = 1; // an fd_read subscription: ready at once
        mem[48..56].copy_from_slice(&9u64.to_le_bytes());
        let plan = read_subscriptions(&mem, 0, 2).unwrap().unwrap();
        assert_eq!(plan, (9, 1, Duration::ZERO));
        let plan = read_subscriptions(&mem, 0, 1).unwrap().unwrap();
        assert_eq!(plan, (7, EVENTTYPE_CLOCK, Duration::from_millis(5)));
    }

    #[test]
    fn subscriptions_outside_memory_are_a_fault() {
        assert_eq!(read_subscriptions(&[0; 10], 0, 1), Err(EFAULT));
    }
}
