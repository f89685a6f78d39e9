//! The emulator's accept loop: HTTP/1.1 and h2c on each connection (hyper-util's auto builder),
//! TCP_NODELAY, and the limits a server anyone on the network may reach needs.
//!
//! `axum::serve` has no knobs for them, so the router is served here: a client that sends half
//! a request head and stops is cut after [`HEADER_READ_TIMEOUT`] (hyper's header read timeout,
//! which also bounds how long an idle HTTP/1.1 keep-alive connection waits for its next request);
//! a connection with no byte in either direction for [`IDLE_TIMEOUT`] is closed (h2 included);
//! and at most [`MAX_CONNECTIONS`] are open at once — past that the loop stops accepting until
//! one closes (the rest wait in the kernel's backlog), so thousands of idle sockets cannot make
//! it unresponsive. None of these numbers comes from Microsoft: they are the emulator's own,
//! chosen above what mfactl's client does (it drops idle connections after 20 s and keeps at
//! most `--concurrency` of them).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;

/// How long a client may take to send a whole request head (and an idle HTTP/1.1 connection
/// may wait for its next one).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may carry nothing at all before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The most connections open at once.
pub const MAX_CONNECTIONS: usize = 4096;

/// Serves `app` on `listener` until `stopped` fires, then lets the requests in flight finish
/// (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stopped: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    serve_with(listener, app, stopped, Limits::default()).await
}

/// The limits [`serve`] applies (tests shorten them).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// [`serve`] with other limits.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    mut stopped: oneshot::Receiver<()>,
    limits: Limits,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            _ = &mut stopped => break,
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("never closed"),
        };
        let (stream, _) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    tracing::debug!("emulator accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Without TCP_NODELAY, Nagle's algorithm holds small keep-alive responses back ~40 ms.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {error}");
        }
        let last = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let io = TokioIo::new(Watched {
            inner: stream,
            last: Arc::clone(&last),
            started,
        });
        let service = TowerToHyperService::new(app.clone());
        let builder = Arc::clone(&builder);
        let connection = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        tracing::trace!("emulator connection ended: {error}");
                    }
                }
                () = idle(&last, started, limits.idle_timeout) => {
                    tracing::debug!("emulator closed a connection idle for {:?}", limits.idle_timeout);
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Returns once nothing has moved on the connection for `timeout`.
async fn idle(last: &AtomicU64, started: Instant, timeout: Duration) {
    loop {
        let moved = started + Duration::from_millis(last.load(Ordering::Relaxed));
        let deadline = moved + timeout;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// A stream that notes when a byte last went in either direction (milliseconds since
/// `started`).
struct Watched<T> {
    inner: T,
    last: Arc<AtomicU64>,
    started: Instant,
}

impl<T> Watched<T> {
    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::*;

    async fn started(limits: Limits) -> (std::net::SocketAddr, oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(serve_with(listener, app, stopped, limits));
        (addr, stop)
    }

    /// Reads until the server closes the connection (a guard of a minute against a hang).
    async fn read_to_close(stream: &mut TcpStream) -> String {
        let mut text = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut text))
            .await
            .expect("the server closes the connection")
            .ok();
        String::from_utf8_lossy(&text).into_owned()
    }

    #[tokio::test]
    async fn a_half_sent_head_and_an_idle_connection_are_cut() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(300),
            max_connections: 16,
        };
        let (addr, _stop) = started(limits).await;
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        let answer = read_to_close(&mut half).await;
        assert!(!answer.contains("200 OK"), "{answer}");
        let mut idle = TcpStream::connect(addr).await.unwrap();
        read_to_close(&mut idle).await;
    }

    #[tokio::test]
    async fn past_the_cap_a_connection_waits_for_a_slot() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(300),
            max_connections: 2,
        };
        let (addr, _stop) = started(limits).await;
        let mut first = TcpStream::connect(addr).await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut third = TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        // Served once an idle one is closed and frees its slot.
        let answer = read_to_close(&mut third).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        read_to_close(&mut first).await;
        read_to_close(&mut second).await;
    }
}
