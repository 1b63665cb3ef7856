//! The server's TCP connections: a streamed response can abort its connection, and a handler
//! can tell that its client hung up.
//!
//! hyper does not notice a client that hangs up while its request is being answered, so
//! abandoned work would run to the end. Each accepted connection keeps a duplicate of its
//! socket; `hung_up` polls it with a non-blocking peek, which reads nothing: an end of stream or
//! a reset means the client is gone (a client that half-closes its side while waiting counts as
//! gone, as it does for hyper's own default).
//!
//! Once a streamed body's headers are sent (`200`, chunked), a failure can only be told to the
//! client by ending the transfer without its end: no terminating zero-length chunk, the
//! connection closed. hyper does that when a body yields an error, but poem polls the finished
//! connection once more (for its graceful shutdown), and that poll writes the terminating
//! chunk, so a failed download looked complete. Connections accepted here carry a flag a
//! response sets when its body fails (`Abort`); from then on writes to the connection fail,
//! so nothing more (no terminating chunk) reaches the client and the connection is closed.
//!
//! The flag is found from a request by its connection's local and remote addresses; HTTP/2
//! streams are not aborted this way (hyper resets the one stream instead).

use poem::listener::{Acceptor, Listener};
use poem::web::{LocalAddr, RemoteAddr};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

type Key = (SocketAddr, SocketAddr);

/// What is kept of an open connection.
struct Conn {
    aborted: AtomicBool,
    /// A duplicate of its socket, to peek at.
    socket: Option<OwnedFd>,
}

/// The open connections, by (local, remote) address.
static OPEN: LazyLock<Mutex<HashMap<Key, Arc<Conn>>>> = LazyLock::new(Default::default);

fn open() -> std::sync::MutexGuard<'static, HashMap<Key, Arc<Conn>>> {
    OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A TCP listener whose connections can be aborted by a response (see the module).
pub fn bind(addr: SocketAddr) -> AbortableListener<poem::listener::TcpListener<SocketAddr>> {
    AbortableListener(poem::listener::TcpListener::bind(addr))
}

/// A listener whose connections can be aborted.
pub struct AbortableListener<L>(pub L);

impl<L: Listener> Listener for AbortableListener<L>
where
    <L::Acceptor as Acceptor>::Io: AsFd,
{
    type Acceptor = AbortableAcceptor<L::Acceptor>;

    async fn into_acceptor(self) -> io::Result<Self::Acceptor> {
        Ok(AbortableAcceptor(self.0.into_acceptor().await?))
    }
}

/// The acceptor of an `AbortableListener`.
pub struct AbortableAcceptor<A>(pub A);

impl<A: Acceptor> Acceptor for AbortableAcceptor<A>
where
    A::Io: AsFd,
{
    type Io = AbortableIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (io, local, remote, scheme) = self.0.accept().await?;
        let conn = Arc::new(Conn { aborted: AtomicBool::new(false), socket: io.as_fd().try_clone_to_owned().ok() });
        let key = local.as_socket_addr().zip(remote.as_socket_addr()).map(|(l, r)| (*l, *r));
        if let Some(key) = key {
            open().insert(key, conn.clone());
        }
        Ok((AbortableIo { io, conn, key }, local, remote, scheme))
    }
}

/// A connection that refuses every write once aborted.
pub struct AbortableIo<T> {
    io: T,
    conn: Arc<Conn>,
    key: Option<Key>,
}

impl<T> AbortableIo<T> {
    fn refused(&self) -> Option<io::Error> {
        self.conn
            .aborted
            .load(Ordering::Acquire)
            .then(|| io::Error::new(io::ErrorKind::ConnectionAborted, "the response failed after its headers were sent: connection aborted"))
    }
}

impl<T> Drop for AbortableIo<T> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut open = open();
            // The same addresses may belong to a newer connection by now.
            if open.get(&key).is_some_and(|conn| Arc::ptr_eq(conn, &self.conn)) {
                open.remove(&key);
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for AbortableIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for AbortableIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What aborts the connection a request came on (nothing for HTTP/2, for connections not
/// accepted by an `AbortableListener`, and in-process tests).
#[derive(Clone, Default)]
pub struct Abort(Option<Arc<Conn>>);

impl Abort {
    pub fn of(req: &poem::Request) -> Abort {
        if req.version() > poem::http::Version::HTTP_11 {
            return Abort(None);
        }
        Abort(conn_of(req))
    }

    /// Refuses every later write to the connection: the client sees the transfer cut short.
    pub fn abort(&self) {
        if let Some(conn) = &self.0 {
            conn.aborted.store(true, Ordering::Release);
        }
    }

    /// `body` that aborts the connection when it yields an error. The error is held back for
    /// `FLUSH_GRACE` first, so the bytes before it (the rows sent, a CSV error line) leave
    /// hyper's buffer and reach a client that keeps reading (not guaranteed under back-pressure:
    /// the abort is what tells the client; those bytes are a courtesy).
    pub fn on_error<S>(self, body: S) -> impl futures::Stream<Item = io::Result<bytes::Bytes>> + Send + 'static
    where
        S: futures::Stream<Item = io::Result<bytes::Bytes>> + Send + Unpin + 'static,
    {
        let mut body = body;
        let mut held: Option<(io::Error, Pin<Box<tokio::time::Sleep>>)> = None;
        futures::stream::poll_fn(move |cx| {
            if let Some((_, grace)) = &mut held {
                futures::ready!(grace.as_mut().poll(cx));
                let (e, _) = held.take().expect("held");
                self.abort();
                return Poll::Ready(Some(Err(e)));
            }
            match futures::ready!(Pin::new(&mut body).poll_next(cx)) {
                Some(Err(e)) => {
                    let mut grace = Box::pin(tokio::time::sleep(FLUSH_GRACE));
                    // Registers the wake-up; a zero grace would be ready at once.
                    if grace.as_mut().poll(cx).is_ready() {
                        self.abort();
                        return Poll::Ready(Some(Err(e)));
                    }
                    held = Some((e, grace));
                    Poll::Pending
                }
                other => Poll::Ready(other),
            }
        })
    }
}

/// How long a failed body waits before the abort, for the bytes before the error to leave.
const FLUSH_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

/// The open connection a request came on, if the server accepted it.
fn conn_of(req: &poem::Request) -> Option<Arc<Conn>> {
    let key = req.local_addr().as_socket_addr().zip(req.remote_addr().as_socket_addr()).map(|(l, r)| (*l, *r));
    key.and_then(|k| open().get(&k).cloned())
}

/// How often a waiting handler looks at its client.
const HANG_UP_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// Resolves once the client of `req` has hung up; never for a connection this module did not
/// accept (in-process tests) or over HTTP/2 (hyper resets the stream itself).
pub async fn hung_up(req: &poem::Request) {
    let Some(socket) = (req.version() <= poem::http::Version::HTTP_11).then(|| conn_of(req)).flatten().filter(|c| c.socket.is_some()) else {
        return std::future::pending().await;
    };
    let fd = socket.socket.as_ref().expect("checked above");
    loop {
        tokio::time::sleep(HANG_UP_CHECK).await;
        let mut byte = [0u8; 1];
        match rustix::net::recv(fd, &mut byte[..], rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT) {
            Ok((_, 0)) => return,                                                         // end of stream
            Ok(_) => {}                                                                   // a next request waits
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => {} // open, idle
            Err(_) => return,                                                             // reset
        }
    }
}
