//! Per-thread free lists of I/O buffers. A session takes buffers when a request arrives and
//! gives them back when its transaction ends, so busy sessions do not allocate per
//! transaction and idle ones hold none.

use bytes::BytesMut;
use std::cell::RefCell;

/// Size of a fresh buffer.
pub const DEFAULT_CAPACITY: usize = 16 * 1024;
/// Buffers larger than this (grown for a big message) are freed rather than kept.
const MAX_KEPT_CAPACITY: usize = 256 * 1024;
/// Buffers kept per thread.
const MAX_KEPT: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// A buffer with room for at least `min` more bytes than it holds. `buf` keeps its contents;
/// an empty buffer without capacity is replaced by one from the free list.
pub fn ensure_room(buf: &mut BytesMut, min: usize) {
    if buf.capacity() == 0 {
        *buf = take();
    }
    if buf.capacity() - buf.len() < min {
        buf.reserve(min.max(DEFAULT_CAPACITY));
    }
}

/// A cleared buffer from the free list, or a new one.
pub fn take() -> BytesMut {
    FREE.with(|f| f.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(DEFAULT_CAPACITY))
}

/// Gives an empty buffer back (leaving `buf` without capacity); a buffer that still holds
/// bytes is left alone.
pub fn give_back(buf: &mut BytesMut) {
    if !buf.is_empty() || buf.capacity() == 0 {
        return;
    }
    let mut b = std::mem::take(buf);
    // Space split off earlier is reclaimed when no one else holds it.
    if !b.try_reclaim(DEFAULT_CAPACITY) || b.capacity() > MAX_KEPT_CAPACITY {
        return;
    }
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < MAX_KEPT {
            f.push(b);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_emptied() {
        let mut a = BytesMut::new();
        ensure_room(&mut a, 100);
        assert!(a.capacity() >= DEFAULT_CAPACITY);
        a.extend_from_slice(b"hello");
        give_back(&mut a);
        assert_eq!(&a[..], b"hello", "a buffer with data is kept by its owner");
        a.clear();
        let ptr = a.as_ptr();
        give_back(&mut a);
        assert_eq!(a.capacity(), 0);
        let b = take();
        assert_eq!(b.as_ptr(), ptr);
        assert!(b.is_empty());
    }

    #[test]
    fn split_buffers_come_back_whole_and_huge_ones_are_freed() {
        let mut a = take();
        a.extend_from_slice(&[1u8; 1000]);
        let head = a.split_to(1000);
        give_back(&mut a);
        drop(head);
        // `head` still shared the allocation when `a` came back: that buffer was dropped.
        let mut big = BytesMut::with_capacity(MAX_KEPT_CAPACITY * 2);
        give_back(&mut big);
        let c = take();
        assert!(c.capacity() <= MAX_KEPT_CAPACITY);
    }
}
