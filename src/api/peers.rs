//! Whether a request's client is still there. hyper does not notice a client that hangs up
//! while its request is being answered, so abandoned work would run to the end. The server's
//! acceptor (`Watched`) keeps a duplicate of each accepted socket by remote address; a handler
//! polls it (`hung_up`) with a non-blocking peek, which reads nothing: an end of stream or a
//! reset means the client is gone (a client that half-closes its side while waiting counts as
//! gone, as it does for hyper's own default).

use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Open connections' sockets (duplicated), by remote address.
static PEERS: LazyLock<Mutex<HashMap<String, Arc<OwnedFd>>>> = LazyLock::new(Default::default);

fn peers() -> std::sync::MutexGuard<'static, HashMap<String, Arc<OwnedFd>>> {
    PEERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// An acceptor that registers each connection's socket while the connection lives.
pub struct Watched<A>(pub A);

impl<A> Acceptor for Watched<A>
where
    A: Acceptor,
    A::Io: AsFd,
{
    type Io = WatchedIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, poem::web::RemoteAddr, poem::http::uri::Scheme)> {
        let (io, local, remote, scheme) = self.0.accept().await?;
        let key = remote.to_string();
        let fd = io.as_fd().try_clone_to_owned()?;
        peers().insert(key.clone(), Arc::new(fd));
        Ok((WatchedIo { io, key }, local, remote, scheme))
    }
}

/// A connection's stream; unregisters its socket when the connection ends.
pub struct WatchedIo<T> {
    io: T,
    key: String,
}

impl<T> Drop for WatchedIo<T> {
    fn drop(&mut self) {
        peers().remove(&self.key);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// How often a waiting handler looks at its client.
const EVERY: Duration = Duration::from_millis(200);

/// Resolves once the client at `remote` has hung up; never, for a connection the acceptor did
/// not register (a test client, another listener).
pub async fn hung_up(remote: &RemoteAddr) {
    let key = remote.to_string();
    loop {
        tokio::time::sleep(EVERY).await;
        let Some(fd) = peers().get(&key).cloned() else {
            return std::future::pending().await;
        };
        let mut byte = [0u8; 1];
        match rustix::net::recv(&*fd, &mut byte[..], rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT) {
            Ok((_, 0)) => return,                                     // end of stream
            Ok(_) => {}                                               // a next request waits
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => {} // open, idle
            Err(_) => return,                                         // reset
        }
    }
}
