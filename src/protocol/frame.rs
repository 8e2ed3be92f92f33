//! Frame boundaries of the v3 protocol: a type byte, a 4-byte big-endian length that counts
//! itself, then the body. Framing never allocates and never trusts a length beyond the cap.

use thiserror::Error;

/// Size of a regular message header: type byte plus length.
pub const HEADER_LEN: usize = 5;

/// The type byte and total size (header included) of a frame at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub tag: u8,
    /// Whole frame length in bytes: 1 (tag) + the length field's value.
    pub total_len: usize,
}

impl FrameHeader {
    /// Length of the body after the 5-byte header.
    pub fn body_len(&self) -> usize {
        self.total_len - HEADER_LEN
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("invalid message length {0}")]
    BadLength(u32),
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
}

/// Reads the header at the front of `buf`, if the 5 header bytes are there.
/// Checks the declared length against `max_len` (the whole frame) before anything is buffered.
pub fn peek_header(buf: &[u8], max_len: usize) -> Result<Option<FrameHeader>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let declared = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if declared < 4 {
        return Err(FrameError::BadLength(declared));
    }
    let total_len = declared as usize + 1;
    if total_len > max_len {
        return Err(FrameError::TooLarge {
            len: total_len,
            max: max_len,
        });
    }
    Ok(Some(FrameHeader {
        tag: buf[0],
        total_len,
    }))
}

/// Returns the header of the first frame if the whole frame is in `buf`.
pub fn complete_frame(buf: &[u8], max_len: usize) -> Result<Option<FrameHeader>, FrameError> {
    match peek_header(buf, max_len)? {
        Some(h) if buf.len() >= h.total_len => Ok(Some(h)),
        _ => Ok(None),
    }
}

/// Walks the complete frames at the front of a buffer without copying.
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
    max_len: usize,
}

impl<'a> Frames<'a> {
    pub fn new(buf: &'a [u8], max_len: usize) -> Self {
        Frames {
            buf,
            pos: 0,
            max_len,
        }
    }

    /// Bytes consumed by the complete frames returned so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(FrameHeader, &'a [u8]), FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.buf[self.pos..];
        match complete_frame(rest, self.max_len) {
            Ok(Some(h)) => {
                let frame = &rest[..h.total_len];
                self.pos += h.total_len;
                Some(Ok((h, frame)))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Reads a NUL-terminated string at the front of `buf`, returning it and the rest.
pub fn read_cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = memchr::memchr(0, buf)?;
    Some((&buf[..nul], &buf[nul + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn splits_frames_and_keeps_the_partial_tail() {
        let mut buf = frame(b'Q', b"select 1\0");
        buf.extend(frame(b'S', b""));
        let full = buf.len();
        buf.extend_from_slice(&frame(b'X', b"")[..3]);
        let mut it = Frames::new(&buf, 1024);
        let (h, f) = it.next().unwrap().unwrap();
        assert_eq!((h.tag, h.total_len, f.len()), (b'Q', 14, 14));
        let (h, _) = it.next().unwrap().unwrap();
        assert_eq!(h.tag, b'S');
        assert!(it.next().is_none());
        assert_eq!(it.consumed(), full);
    }

    #[test]
    fn rejects_short_and_oversized_lengths() {
        assert_eq!(
            peek_header(&[b'Q', 0, 0, 0, 3], 100),
            Err(FrameError::BadLength(3))
        );
        assert_eq!(
            peek_header(&[b'Q', 0x7f, 0xff, 0xff, 0xff], 100),
            Err(FrameError::TooLarge {
                len: 0x8000_0000,
                max: 100
            })
        );
        assert_eq!(peek_header(&[b'Q', 0, 0], 100), Ok(None));
    }

    #[test]
    fn cstr() {
        assert_eq!(read_cstr(b"ab\0cd"), Some((&b"ab"[..], &b"cd"[..])));
        assert_eq!(read_cstr(b"ab"), None);
    }
}
