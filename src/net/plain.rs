//! A plain socket (TCP or Unix-domain) registered with the runtime for reading only. tokio's
//! own streams ask the kernel for both directions, and the kernel then reports write space
//! each time the peer takes what was sent: with one client that woke the pooler once more
//! every few transactions, and a wake-up is a context switch, most of a lightly loaded
//! pooler's CPU. PgBouncer asks for write space only while a write is blocked, and so does
//! this socket: the first write that would block registers it again for both directions.

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::task::{ready, Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, ReadBuf};

/// The std sockets this wraps: reads and writes through a shared reference, as the kernel
/// allows.
pub trait StdSocket: AsRawFd + AsFd + Sized
where
    for<'a> &'a Self: Read + Write,
{
}

impl StdSocket for std::net::TcpStream {}
impl StdSocket for std::os::unix::net::UnixStream {}

/// A socket read through the runtime's readiness and written directly.
#[derive(Debug)]
pub struct Plain<S: StdSocket>
where
    for<'a> &'a S: Read + Write,
{
    /// None only if registering again for writes failed (the socket is then gone).
    fd: Option<AsyncFd<S>>,
    /// Registered for write space too (after a write would block).
    writes_registered: bool,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")
}

impl<S: StdSocket> Plain<S>
where
    for<'a> &'a S: Read + Write,
{
    /// Registers a non-blocking socket for reading.
    pub fn new(socket: S) -> io::Result<Plain<S>> {
        Ok(Plain {
            fd: Some(register(socket, Interest::READABLE)?),
            writes_registered: false,
        })
    }

    fn fd(&self) -> io::Result<&AsyncFd<S>> {
        self.fd.as_ref().ok_or_else(gone)
    }

    /// The std socket (for addresses and options).
    pub fn get_ref(&self) -> Option<&S> {
        self.fd.as_ref().map(AsyncFd::get_ref)
    }

    /// Gives the socket back, no longer registered (for a TLS upgrade).
    pub fn into_std(mut self) -> io::Result<S> {
        self.fd.take().map(AsyncFd::into_inner).ok_or_else(gone)
    }

    /// Ready when there is something to read (or the peer closed); the waker stays in the
    /// registration.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let fd = self.fd()?;
        // Only looked at: the readiness stays for the read that follows.
        ready!(fd.poll_read_ready(cx))?.retain_ready();
        Poll::Ready(Ok(()))
    }

    /// Reads into `buf` once the socket is readable. A short read marks the socket drained,
    /// so the next wait costs no empty read.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let fd = self.fd()?;
        loop {
            let mut guard = ready!(fd.poll_read_ready(cx))?;
            let room = buf.remaining();
            match guard.try_io(|s| recv_into(s.get_ref(), buf)) {
                Ok(Ok(n)) => {
                    if n > 0 && n < room {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads what is there without waiting (WouldBlock if nothing is).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd()?.try_io(Interest::READABLE, |s| (&*s).read(buf))
    }

    /// Peeks without taking once readable: true if bytes wait, false if the peer closed.
    pub async fn has_bytes(&self) -> io::Result<bool> {
        let mut probe = [MaybeUninit::<u8>::uninit()];
        let n = self
            .once_readable(|s| socket2::SockRef::from(s).peek(&mut probe))
            .await?;
        Ok(n > 0)
    }

    /// Runs `f` on the socket once it is readable, until it does not say WouldBlock.
    async fn once_readable<R>(&self, mut f: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let fd = self.fd()?;
        loop {
            let mut guard = fd.readable().await?;
            if let Ok(r) = guard.try_io(|s| f(s.get_ref())) {
                return r;
            }
        }
    }

    /// Writes what the kernel takes now (WouldBlock if nothing).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.fd()?;
        if self.writes_registered {
            // Through the readiness, so that WouldBlock clears it and the wait is real.
            fd.try_io(Interest::WRITABLE, |s| (&*s).write(buf))
        } else {
            fd.get_ref().write(buf)
        }
    }

    /// Ready when there is room to write; the first call registers the socket for write
    /// space (again: the registration's interest cannot be widened in place).
    pub fn poll_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.writes_registered {
            let socket = self.fd.take().map(AsyncFd::into_inner).ok_or_else(gone)?;
            let both = Interest::READABLE | Interest::WRITABLE;
            self.fd = Some(register(socket, both)?);
            self.writes_registered = true;
        }
        ready!(self.fd()?.poll_write_ready(cx))?.retain_ready();
        Poll::Ready(Ok(()))
    }
}

/// Registers `socket` with the runtime for `interest`.
#[allow(unsafe_code)]
fn register<S: StdSocket>(socket: S, interest: Interest) -> io::Result<AsyncFd<S>>
where
    for<'a> &'a S: Read + Write,
{
    // SAFETY: the AsyncFd owns the std socket, whose descriptor stays open and the same until
    // the AsyncFd drops it or gives it back (`into_inner`).
    Ok(unsafe { AsyncFd::register_with_interest(socket, interest) }?)
}

/// One `recv` into the unfilled part of `buf`, which it then counts as filled.
#[allow(unsafe_code)]
fn recv_into<S: AsFd>(socket: &S, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
    // SAFETY: the slice is only written to, by `recv`, and nothing is de-initialized.
    let unfilled = unsafe { buf.unfilled_mut() };
    let n = socket2::SockRef::from(socket).recv(unfilled)?;
    // SAFETY: `recv` wrote `n` bytes at the start of the unfilled part.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Ok(n)
}

impl Plain<std::net::TcpStream> {
    /// The first byte the peer sent, without taking it (None: it closed).
    pub async fn peek_byte(&self) -> io::Result<Option<u8>> {
        let mut probe = [0u8; 1];
        let n = self.once_readable(|s| s.peek(&mut probe)).await?;
        Ok((n == 1).then_some(probe[0]))
    }
}
