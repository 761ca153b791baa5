//! The file format as pure code: the header, encoding a record, and reading
//! one back with every way it can be damaged.
//!
//! ```text
//! file   = header record*
//! header = "ALYXJRNL" version:u32le            (12 bytes; version 1)
//! record = length:u32le crc:u32le body         (crc: CRC-32 of body)
//! body   = op:u8 id_length:u16le id payload    (op 1 put, 2 remove;
//!                                               id UTF-8; a remove has no payload)
//! ```

use std::fmt;
use std::io::{self, Read};

use super::crc32::crc32;
use super::error::JournalError;

const MAGIC: &[u8; 8] = b"ALYXJRNL";
const VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_LEN: u64 = 12;
/// Bytes of a record's frame: its length and checksum.
const FRAME: usize = 8;
/// Bytes of a body before its id: the op and the id's length.
const BEFORE_ID: usize = 3;
/// Longest id in bytes (its length is a u16).
pub const MAX_ID: usize = u16::MAX as usize;
/// Longest body in bytes (its length is a u32).
pub const MAX_BODY: u64 = u32::MAX as u64;

/// The header every journal file starts with.
pub fn header() -> [u8; HEADER_LEN as usize] {
    let mut header = [0; HEADER_LEN as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&VERSION.to_le_bytes());
    header
}

/// Why `bytes` (the start of a file) is not our header, or `None` when it is.
pub fn header_problem(bytes: &[u8]) -> Option<String> {
    if bytes.len() < HEADER_LEN as usize || &bytes[..8] != MAGIC {
        let start = String::from_utf8_lossy(&bytes[..bytes.len().min(8)]).into_owned();
        return Some(format!("not a journal (it starts with {start:?}, not \"ALYXJRNL\")"));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    (version != VERSION).then(|| format!("journal version {version}; this alyx reads version {VERSION}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put = 1,
    Remove = 2,
}

/// One record: what it does to which id, and all its bytes as written
/// (frame included), which is what the live map keeps for a put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub op: Op,
    pub id: String,
    pub bytes: Vec<u8>,
}

impl Record {
    /// Encodes a record; refuses an id or body too long for its length field.
    pub fn encode(op: Op, id: &str, payload: &[u8]) -> Result<Record, JournalError> {
        if id.len() > MAX_ID {
            return Err(JournalError::IdTooLong { bytes: id.len() });
        }
        let body = body_length(id.len(), payload.len())?;
        let mut bytes = Vec::with_capacity(FRAME + body as usize);
        bytes.extend_from_slice(&body.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes.push(op as u8);
        bytes.extend_from_slice(&(id.len() as u16).to_le_bytes());
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(payload);
        let crc = crc32(&bytes[FRAME..]);
        bytes[4..FRAME].copy_from_slice(&crc.to_le_bytes());
        Ok(Record { op, id: id.to_string(), bytes })
    }

    /// The payload of a record's bytes.
    pub fn payload(bytes: &[u8]) -> &[u8] {
        let id_length = u16::from_le_bytes([bytes[FRAME + 1], bytes[FRAME + 2]]) as usize;
        &bytes[FRAME + BEFORE_ID + id_length..]
    }
}

fn body_length(id: usize, payload: usize) -> Result<u32, JournalError> {
    let bytes = (BEFORE_ID + id) as u64 + payload as u64;
    u32::try_from(bytes).map_err(|_| JournalError::TooLarge { bytes })
}

/// Why reading records stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Fewer bytes left than a record's frame.
    TornFrame {
        left: u64,
    },
    /// A body length below the smallest body.
    ImpossibleLength {
        length: u32,
    },
    /// A body that would run past the end of the file.
    PastEnd {
        length: u32,
        left: u64,
    },
    Checksum {
        stored: u32,
        computed: u32,
    },
    UnknownOp(u8),
    /// An id length that runs past the body.
    IdPastBody {
        id_length: usize,
        body: usize,
    },
    IdNotUtf8,
    RemoveWithPayload,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::TornFrame { left } => {
                write!(f, "torn record: the file ends {left} bytes into its {FRAME}-byte frame")
            }
            Damage::ImpossibleLength { length } => write!(f, "impossible record length {length}"),
            Damage::PastEnd { length, left } => write!(
                f,
                "torn record: its body of {length} bytes runs past the end of the file \
                 ({left} bytes left; or its length is damaged)"
            ),
            Damage::Checksum { stored, computed } => {
                write!(f, "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
            Damage::UnknownOp(op) => write!(f, "unknown record type {op}"),
            Damage::IdPastBody { id_length, body } => {
                write!(f, "an id of {id_length} bytes runs past its body of {body} bytes")
            }
            Damage::IdNotUtf8 => write!(f, "an id that is not UTF-8"),
            Damage::RemoveWithPayload => write!(f, "a remove record with a payload"),
        }
    }
}

/// Reads the record at the reader's position, `left` (> 0) bytes before
/// the end of the file. The outer error is the reader's; the inner one says
/// why the bytes there are not a good record.
pub fn read(reader: &mut impl Read, left: u64) -> io::Result<Result<Record, Damage>> {
    if left < FRAME as u64 {
        return Ok(Err(Damage::TornFrame { left }));
    }
    let mut frame = [0; FRAME];
    reader.read_exact(&mut frame)?;
    let length = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
    if (length as usize) < BEFORE_ID {
        return Ok(Err(Damage::ImpossibleLength { length }));
    }
    if length as u64 > left - FRAME as u64 {
        return Ok(Err(Damage::PastEnd { length, left }));
    }
    let mut bytes = vec![0; FRAME + length as usize];
    bytes[..FRAME].copy_from_slice(&frame);
    reader.read_exact(&mut bytes[FRAME..])?;
    Ok(decode(bytes))
}

/// Checks and decodes a record whose bytes are all there.
fn decode(bytes: Vec<u8>) -> Result<Record, Damage> {
    let stored = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let body = &bytes[FRAME..];
    let computed = crc32(body);
    if stored != computed {
        return Err(Damage::Checksum { stored, computed });
    }
    let op = match body[0] {
        1 => Op::Put,
        2 => Op::Remove,
        other => return Err(Damage::UnknownOp(other)),
    };
    let id_length = u16::from_le_bytes([body[1], body[2]]) as usize;
    let id_end = BEFORE_ID + id_length;
    let id = body.get(BEFORE_ID..id_end).ok_or(Damage::IdPastBody { id_length, body: body.len() })?;
    let id = std::str::from_utf8(id).map_err(|_| Damage::IdNotUtf8)?.to_string();
    if op == Op::Remove && body.len() > id_end {
        return Err(Damage::RemoveWithPayload);
    }
    Ok(Record { op, id, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one record from `bytes`, all of which are left in the file.
    fn read_all(bytes: &[u8]) -> Result<Record, Damage> {
        read(&mut &bytes[..], bytes.len() as u64).expect("reading a slice")
    }

    /// A record of `body` with a correct checksum.
    fn framed(body: &[u8]) -> Vec<u8> {
        let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&crc32(body).to_le_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let put = Record::encode(Op::Put, "id-1", b"payload").unwrap();
        assert_eq!(put.bytes.len(), 8 + 3 + 4 + 7);
        assert_eq!(read_all(&put.bytes), Ok(put.clone()));
        assert_eq!(Record::payload(&put.bytes), b"payload");
        let remove = Record::encode(Op::Remove, "id-1", b"").unwrap();
        assert_eq!(read_all(&remove.bytes), Ok(remove));
    }

    #[test]
    fn the_header_is_checked_by_magic_and_version() {
        assert_eq!(header_problem(&header()), None);
        let problem = header_problem(b"hello world!").unwrap();
        assert!(problem.starts_with("not a journal (it starts with \"hello wo\""), "{problem}");
        assert!(header_problem(b"ALYXJ").unwrap().starts_with("not a journal"));
        let mut later = header();
        later[8] = 2;
        assert_eq!(header_problem(&later).unwrap(), "journal version 2; this alyx reads version 1");
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let good = Record::encode(Op::Put, "a", b"xyz").unwrap().bytes;
        assert_eq!(read_all(&good[..5]), Err(Damage::TornFrame { left: 5 }));
        assert_eq!(read_all(&framed(b"\x01\x00")), Err(Damage::ImpossibleLength { length: 2 }));
        assert_eq!(read_all(&good[..good.len() - 1]), Err(Damage::PastEnd { length: 7, left: 14 }));
        let mut flipped = good.clone();
        flipped[12] ^= 1;
        assert!(matches!(read_all(&flipped), Err(Damage::Checksum { .. })));
        assert_eq!(read_all(&framed(b"\x07\x00\x00")), Err(Damage::UnknownOp(7)));
        let id_past = Err(Damage::IdPastBody { id_length: 9, body: 4 });
        assert_eq!(read_all(&framed(b"\x01\x09\x00a")), id_past);
        assert_eq!(read_all(&framed(b"\x01\x01\x00\xff")), Err(Damage::IdNotUtf8));
        assert_eq!(read_all(&framed(b"\x02\x01\x00ax")), Err(Damage::RemoveWithPayload));
    }

    #[test]
    fn ids_and_bodies_past_their_length_fields_are_refused() {
        let longest = "i".repeat(MAX_ID);
        assert_eq!(read_all(&Record::encode(Op::Put, &longest, b"p").unwrap().bytes).unwrap().id, longest);
        let refused = Record::encode(Op::Put, &"i".repeat(MAX_ID + 1), b"");
        assert!(matches!(refused, Err(JournalError::IdTooLong { bytes: 65536 })), "{refused:?}");
        assert_eq!(body_length(10, 20).unwrap(), 33);
        let too_large = body_length(1, u32::MAX as usize);
        assert!(matches!(too_large, Err(JournalError::TooLarge { bytes: 4_294_967_299 })), "{too_large:?}");
    }
}
