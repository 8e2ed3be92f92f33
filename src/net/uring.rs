//! EXPERIMENT (issue 20): plain TCP streams on tokio-uring, behind the `io_uring` switch.
//! Reads and writes are io_uring operations: their submissions are gathered while tasks run
//! and go to the kernel in one `io_uring_enter` when the runtime parks, instead of a `recv`
//! or `send` system call each. A read is one operation kept in flight inside the stream (a
//! `select!` that drops its read future does not cancel it); what it brought is handed out
//! from a staging buffer. Writes copy into a reused owned buffer (tokio-uring owns buffers
//! while the kernel uses them) and wait for their completion.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

/// Set once by `main` when it runs on the io_uring runtime.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Size of each read operation's buffer.
const READ_SIZE: usize = 16 * 1024;

/// Marks the process as running on the tokio-uring runtime: plain TCP streams are moved
/// onto io_uring once their login is over.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

type ReadOp = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)>>>;

/// What was read and not yet handed out, and the read in flight.
#[derive(Default)]
struct ReadState {
    staged: Vec<u8>,
    at: usize,
    eof: bool,
    in_flight: Option<ReadOp>,
}

/// A TCP connection driven through io_uring.
pub struct UringStream {
    sock: Rc<tokio_uring::net::TcpStream>,
    peer: SocketAddr,
    local: SocketAddr,
    read: RefCell<ReadState>,
    /// The owned buffer writes are copied into (None while a write is in flight).
    write_buf: RefCell<Option<Vec<u8>>>,
}

// SAFETY: the `io_uring` switch runs the whole process on tokio-uring's single-threaded
// runtime (`main` forces it), so every task, and every stream a task owns, is created,
// polled and dropped on that one thread: the `Rc`s and `RefCell`s inside are never touched
// from two threads. Streams are only converted when `enabled()` says that runtime runs.
#[allow(unsafe_code)]
unsafe impl Send for UringStream {}
// SAFETY: as above; a shared reference never leaves the runtime's thread either.
#[allow(unsafe_code)]
unsafe impl Sync for UringStream {}

/// A tokio-uring operation's future (it holds the runtime's `Rc`s), made sendable so the
/// tasks that await it stay `Send`.
struct OnRuntimeThread<F>(Pin<Box<F>>);

// SAFETY: as for `UringStream`: created, polled and dropped on the runtime's one thread.
#[allow(unsafe_code)]
unsafe impl<F> Send for OnRuntimeThread<F> {}

impl<F: Future> Future for OnRuntimeThread<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for UringStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UringStream({})", self.peer)
    }
}

impl UringStream {
    /// Moves a connected tokio socket onto io_uring.
    pub fn adopt(socket: tokio::net::TcpStream) -> io::Result<UringStream> {
        let peer = socket.peer_addr()?;
        let local = socket.local_addr()?;
        let std = socket.into_std()?;
        // io_uring waits for socket readiness itself; a non-blocking file would make it
        // hand back EAGAIN instead.
        std.set_nonblocking(false)?;
        Ok(UringStream {
            sock: Rc::new(tokio_uring::net::TcpStream::from_std(std)),
            peer,
            local,
            read: RefCell::default(),
            write_buf: RefCell::new(Some(Vec::with_capacity(READ_SIZE))),
        })
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Ready when bytes are staged, the peer closed, or the read failed (the error is
    /// returned once).
    pub fn poll_fill(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.read.borrow_mut();
        if st.at < st.staged.len() || st.eof {
            return Poll::Ready(Ok(()));
        }
        if st.in_flight.is_none() {
            let mut buf = std::mem::take(&mut st.staged);
            buf.clear();
            buf.reserve(READ_SIZE);
            let sock = self.sock.clone();
            st.in_flight = Some(Box::pin(async move { sock.read(buf).await }));
        }
        let Some(op) = st.in_flight.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let (result, buf) = std::task::ready!(op.as_mut().poll(cx));
        st.in_flight = None;
        st.staged = buf;
        st.at = 0;
        match result {
            Ok(0) => {
                st.eof = true;
                Poll::Ready(Ok(()))
            }
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Copies staged bytes into `out` (none at end of stream).
    pub fn poll_read(
        &self,
        cx: &mut Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_fill(cx))?;
        let mut st = self.read.borrow_mut();
        let n = (st.staged.len() - st.at).min(out.remaining());
        out.put_slice(&st.staged[st.at..st.at + n]);
        st.at += n;
        Poll::Ready(Ok(()))
    }

    /// True when nothing is staged and the read in flight (started here if none) has not
    /// completed. A read only reaches the kernel when the runtime parks, so a connection
    /// the server closed a moment ago can still look quiet here.
    pub fn is_quiet(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.poll_fill(&mut cx).is_pending()
    }

    /// Waits until the peer closed (or the read failed); pending forever once bytes came.
    pub async fn closed(&self) {
        let r = std::future::poll_fn(|cx| self.poll_fill(cx)).await;
        if r.is_ok() && !self.read.borrow().eof {
            std::future::pending::<()>().await
        }
    }

    /// Writes all of `data` and waits for the kernel to have taken it.
    pub async fn send_all(&self, data: &[u8]) -> io::Result<()> {
        let mut buf = self.write_buf.borrow_mut().take().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        let sock = self.sock.clone();
        let (result, buf) =
            OnRuntimeThread(Box::pin(async move { sock.write_all(buf).await })).await;
        *self.write_buf.borrow_mut() = Some(buf);
        result
    }
}
