//! Per-thread free lists of I/O buffer sets. A session takes a set (client input and output,
//! server input, rewritten requests) when a request arrives and gives it back when its
//! transaction ends: busy sessions do not allocate per transaction, and an idle one holds a
//! null pointer instead of four empty buffers.

use bytes::BytesMut;
use std::cell::RefCell;

/// Size of a fresh buffer.
pub const DEFAULT_CAPACITY: usize = 16 * 1024;
/// Buffers larger than this (grown for a big message) are freed rather than kept.
const MAX_KEPT_CAPACITY: usize = 256 * 1024;
/// Sets kept per thread.
const MAX_KEPT: usize = 64;

/// The buffers of one session's request. Each is allocated when first needed.
#[derive(Default)]
pub struct Buffers {
    /// Bytes read from the client and not yet handled.
    pub cin: BytesMut,
    /// Messages Switchyard writes to the client itself.
    pub cout: BytesMut,
    /// Bytes read from the server.
    pub sin: BytesMut,
    /// Client frames rewritten for the server: scratch space, cleared when the set is given
    /// back.
    pub sout: BytesMut,
}

impl Buffers {
    fn is_empty(&self) -> bool {
        self.cin.is_empty() && self.cout.is_empty() && self.sin.is_empty() && self.sout.is_empty()
    }

    /// Makes the empty buffers whole again for the next user; a buffer whose space is still
    /// shared (split off and held elsewhere) or grown too large is freed instead.
    fn recycle(&mut self) {
        for b in [&mut self.cin, &mut self.cout, &mut self.sin, &mut self.sout] {
            if b.capacity() > 0
                && (!b.try_reclaim(DEFAULT_CAPACITY) || b.capacity() > MAX_KEPT_CAPACITY)
            {
                *b = BytesMut::new();
            }
        }
    }
}

thread_local! {
    // Boxed sets, so that taking one and giving it back moves a pointer, not 128 bytes,
    // and allocates nothing.
    #[allow(clippy::vec_box)]
    static FREE: RefCell<Vec<Box<Buffers>>> = const { RefCell::new(Vec::new()) };
}

fn take_set() -> Box<Buffers> {
    FREE.try_with(|f| f.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// A session's buffers while it has work; none while it is idle.
#[derive(Default)]
pub struct BufferSet {
    set: Option<Box<Buffers>>,
}

impl BufferSet {
    /// The buffers, taken from this thread's free list if none are held.
    #[inline]
    pub fn get(&mut self) -> &mut Buffers {
        self.set.get_or_insert_with(take_set)
    }

    /// The client bytes not yet handled (empty when no buffers are held).
    pub fn client_input(&self) -> &[u8] {
        self.set.as_ref().map_or(&[], |b| &b.cin[..])
    }

    /// Whether server bytes are waiting to be handled.
    pub fn holds_server_input(&self) -> bool {
        self.set.as_ref().is_some_and(|b| !b.sin.is_empty())
    }

    /// Gives the buffers back to this thread's free list, unless one still holds bytes.
    pub fn give_back(&mut self) {
        let Some(set) = self.set.as_mut() else {
            return;
        };
        set.sout.clear();
        if !set.is_empty() {
            return;
        }
        let Some(mut set) = self.set.take() else {
            return;
        };
        set.recycle();
        // Not reachable while the thread's locals are torn down: the set is then freed.
        let _ = FREE.try_with(|f| {
            let mut f = f.borrow_mut();
            if f.len() < MAX_KEPT {
                f.push(set);
            }
        });
    }
}

impl Drop for BufferSet {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Makes room for at least `min` more bytes than `buf` holds (a fresh buffer gets
/// [`DEFAULT_CAPACITY`]).
pub fn ensure_room(buf: &mut BytesMut, min: usize) {
    if buf.capacity() - buf.len() < min {
        buf.reserve(min.max(DEFAULT_CAPACITY));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_reused_and_kept_while_they_hold_bytes() {
        let mut a = BufferSet::default();
        assert!(a.client_input().is_empty() && !a.holds_server_input());
        ensure_room(&mut a.get().sin, 100);
        assert!(a.get().sin.capacity() >= DEFAULT_CAPACITY);
        a.get().cin.extend_from_slice(b"hello");
        a.give_back();
        assert_eq!(
            a.client_input(),
            b"hello",
            "a set with data is kept by its owner"
        );
        a.get().cin.clear();
        let ptr = a.get().sin.as_ptr();
        a.give_back();
        assert!(a.set.is_none());
        let mut b = BufferSet::default();
        assert_eq!(
            b.get().sin.as_ptr(),
            ptr,
            "the next session takes the same set"
        );
        assert!(b.get().is_empty());
    }

    #[test]
    fn split_buffers_come_back_whole_and_huge_ones_are_freed() {
        let mut a = BufferSet::default();
        let cin = &mut a.get().cin;
        ensure_room(cin, 1000);
        cin.extend_from_slice(&[1u8; 1000]);
        let head = cin.split_to(1000);
        a.give_back();
        drop(head);
        // `head` still shared the allocation when the set came back: that buffer was freed.
        let mut b = BufferSet::default();
        assert_eq!(b.get().cin.capacity(), 0);
        b.get().sin = BytesMut::with_capacity(MAX_KEPT_CAPACITY * 2);
        b.give_back();
        let mut c = BufferSet::default();
        assert!(c.get().sin.capacity() <= MAX_KEPT_CAPACITY);
    }
}
