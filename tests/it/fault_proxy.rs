//! A loopback HTTP/1.1 stand-in that sits between `mfactl` and the emulator and misbehaves on
//! command: it drops a connection after forwarding a write, never answers, answers by itself
//! (a redirect, say), or resets every connection for a while. The emulator cannot do these
//! things, and a network that does them is what the retry and journal logic must survive.
//!
//! It must not become a general proxy: it connects only to its one upstream, which must be a
//! loopback address, speaks HTTP/1.1 one request at a time per connection (no pipelining, no
//! upgrades), and relays bytes as received rather than re-encoding them.
//!
//! The proxy runs on its own thread with its own current-thread tokio runtime, so sync
//! `#[test]`s can use it next to a `Scenario` (which has another runtime). Dropping it stops
//! the runtime, which drops every connection task and so closes every socket.

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The longest request or response head the proxy accepts.
const MAX_HEAD: usize = 64 * 1024;

/// What the rule sees of a request: its head, and its body (e.g. to tell a `$batch` of writes
/// from one of reads).
#[derive(Clone, Debug)]
pub struct RequestHead {
    /// `GET`, `PATCH`, ... as sent.
    pub method: String,
    /// The request target as sent: path with query, e.g. `/beta/users/x/authentication/requirements`.
    pub path: String,
    /// Header names and values in the order sent (names as sent; compare case-insensitively).
    pub headers: Vec<(String, String)>,
    /// The body as received (empty when there is none).
    pub body: Vec<u8>,
}

impl RequestHead {
    /// Whether the body contains `text` (as bytes).
    pub fn body_contains(&self, text: &str) -> bool {
        self.body
            .windows(text.len().max(1))
            .any(|window| window == text.as_bytes())
    }
}

impl RequestHead {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// What the proxy does with one request. The proxy always reads the whole request (head and
/// body) first, so closing afterwards is an orderly close (FIN), never a reset caused by unread
/// bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the request upstream and relay the whole response.
    Forward,
    /// Send the request upstream, read the whole response (so a write really happened), then
    /// close the client connection without sending a byte of it: "response lost". reqwest sees
    /// `is_request()` with hyper's `IncompleteMessage`, exactly as for `Close`.
    ForwardThenDrop,
    /// Close the client connection without forwarding: the request never reached Graph.
    Close,
    /// Never answer; keep the connection open until the client closes it or the proxy is
    /// dropped. reqwest sees `is_timeout()` once its timeout passes.
    Hang,
    /// Answer directly without contacting the upstream. `Content-Length` is added unless
    /// `headers` has one (or the status has no body: 1xx, 204, 304). The connection stays open.
    /// A client that follows redirects (reqwest does by default) goes to `Location` by itself.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

impl Action {
    /// A redirect answered by the proxy, e.g. `Action::redirect(307, "http://example.invalid/beta/x")`.
    /// The proxy never connects to `location`; only the client may try to follow it.
    pub fn redirect(status: u16, location: &str) -> Action {
        Action::Respond {
            status,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }

    /// An answer in Graph's error envelope, e.g. `Action::graph_error(403,
    /// "Authorization_RequestDenied", "Insufficient privileges")`.
    pub fn graph_error(status: u16, code: &str, message: &str) -> Action {
        Action::Respond {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::json!({ "error": { "code": code, "message": message } })
                .to_string()
                .into_bytes(),
        }
    }
}

/// Counters since the proxy started. Each is incremented before the client can observe the
/// effect, so after a client run ends the counters already include everything it saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// TCP connections accepted, refused ones included.
    pub connections: u64,
    /// Requests handed to the rule (not those refused by `refuse_connections`).
    pub requests: u64,
    /// `Forward`: responses relayed.
    pub forwarded: u64,
    /// `ForwardThenDrop`: upstream answered, client connection closed instead.
    pub dropped_after_forward: u64,
    /// `Close`.
    pub closed: u64,
    /// `Hang`.
    pub hung: u64,
    /// `Respond`.
    pub responded: u64,
    /// Connections reset on accept plus requests closed unanswered while refusing.
    pub refused: u64,
    /// `Forward`/`ForwardThenDrop` whose upstream exchange failed (the client got a 502, or
    /// for `ForwardThenDrop` a close). Zero in a healthy test.
    pub upstream_errors: u64,
}

type Rule = Arc<dyn Fn(&RequestHead, u64) -> Action + Send + Sync>;

/// State shared between the test's handle and the proxy's thread.
struct Shared {
    upstream: SocketAddr,
    rule: Mutex<Rule>,
    refusing: AtomicBool,
    connections: AtomicU64,
    requests: AtomicU64,
    forwarded: AtomicU64,
    dropped_after_forward: AtomicU64,
    closed: AtomicU64,
    hung: AtomicU64,
    responded: AtomicU64,
    refused: AtomicU64,
    upstream_errors: AtomicU64,
}

impl Shared {
    fn count(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::SeqCst)
    }
}

/// A running fault proxy in front of one loopback upstream. See the module doc.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Binds `127.0.0.1:0` and forwards everything to `upstream` until told otherwise.
    /// Panics if `upstream` is not a loopback address.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        assert!(
            upstream.ip().is_loopback(),
            "the fault proxy only talks to loopback, not {upstream}"
        );
        let shared = Arc::new(Shared {
            upstream,
            rule: Mutex::new(Arc::new(|_: &RequestHead, _: u64| Action::Forward)),
            refusing: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            dropped_after_forward: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            hung: AtomicU64::new(0),
            responded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
        });
        // Bind here, not on the thread, so the address is known (and a failure panics in the
        // test) before `start` returns.
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("fault proxy binds");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("bound address");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("fault proxy runtime");
        let (stop, stopped) = oneshot::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    accept_until_stopped(listener, thread_shared, stopped).await;
                });
                // Dropping the runtime drops every connection task, closing their sockets.
                drop(runtime);
            })
            .expect("fault proxy thread");
        FaultProxy {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// In front of an emulator URL such as `Scenario::url()` (`http://127.0.0.1:PORT`).
    pub fn in_front_of(url: &str) -> FaultProxy {
        let authority = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("{url} is not an http:// URL"))
            .trim_end_matches('/');
        let upstream = authority
            .parse()
            .unwrap_or_else(|e| panic!("{url}: not http://IP:PORT ({e})"));
        FaultProxy::start(upstream)
    }

    /// `http://127.0.0.1:PORT`, for `--graph-url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Picks the action for each request from now on; `n` is the 0-based index of the request
    /// among all requests the proxy handed to a rule (across connections and rule changes).
    pub fn set_rule(&self, rule: impl Fn(&RequestHead, u64) -> Action + Send + Sync + 'static) {
        *self.shared.rule.lock().unwrap() = Arc::new(rule);
    }

    /// While on, new connections are reset as soon as they are accepted (SO_LINGER 0; reqwest
    /// usually sees `is_connect()` with ECONNRESET) and a request on an existing keep-alive
    /// connection closes it unanswered (`IncompleteMessage`, as `Close`). Off restores service.
    pub fn refuse_connections(&self, refuse: bool) {
        self.shared.refusing.store(refuse, Ordering::SeqCst);
    }

    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        let load = |c: &AtomicU64| c.load(Ordering::SeqCst);
        ProxyStats {
            connections: load(&s.connections),
            requests: load(&s.requests),
            forwarded: load(&s.forwarded),
            dropped_after_forward: load(&s.dropped_after_forward),
            closed: load(&s.closed),
            hung: load(&s.hung),
            responded: load(&s.responded),
            refused: load(&s.refused),
            upstream_errors: load(&s.upstream_errors),
        }
    }

    /// `mfactl ARGS --graph-url PROXY` with the test token: `Scenario::mfactl` through the proxy.
    pub fn mfactl(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = crate::support::mfactl();
        cmd.args(args)
            .args(["--graph-url", &self.url()])
            .env("MFACTL_ACCESS_TOKEN", "test-token-not-a-secret")
            // A backstop: no test may wait forever on a proxy told to hang.
            .timeout(Duration::from_secs(30));
        cmd
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the proxy thread is not re-raised here: this may run while unwinding.
            let _ = thread.join();
        }
    }
}

async fn accept_until_stopped(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors or a connection aborted before accept: try again shortly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        Shared::count(&shared.connections);
        if shared.refusing.load(Ordering::SeqCst) {
            Shared::count(&shared.refused);
            // Zero linger makes close send RST: the client sees "connection reset", as when a
            // host is there but the service is gone. Zero linger never blocks on drop.
            let _ = stream.set_zero_linger();
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream, shared.clone()));
    }
}

/// One client connection, one request at a time, with a lazily opened upstream connection.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let mut client = Wire::new(stream);
    let mut upstream: Option<Wire> = None;
    loop {
        let Ok(Some(raw_head)) = client.read_head().await else {
            return; // the client closed (or sent garbage): nothing to answer
        };
        let Some(mut head) = parse_request_head(&raw_head) else {
            let _ = client
                .write_all(&simple_response(400, "unparsable request head"))
                .await;
            return;
        };
        let framing = request_framing(&head.headers);
        let Ok(body) = client.read_body(framing).await else {
            return;
        };
        if shared.refusing.load(Ordering::SeqCst) {
            Shared::count(&shared.refused);
            return;
        }
        head.body = body.clone();
        let client_closes = connection_close(&head.headers);
        let n = Shared::count(&shared.requests);
        let rule = shared.rule.lock().unwrap().clone();
        match rule(&head, n) {
            Action::Forward => {
                let mut request = raw_head;
                request.extend_from_slice(&body);
                match exchange(&mut upstream, shared.upstream, &head.method, &request).await {
                    Ok(response) => {
                        Shared::count(&shared.forwarded);
                        if client.write_all(&response.raw).await.is_err() || response.closes {
                            return;
                        }
                    }
                    Err(error) => {
                        Shared::count(&shared.upstream_errors);
                        let message = format!("fault proxy: upstream failed: {error}");
                        let _ = client.write_all(&simple_response(502, &message)).await;
                        return;
                    }
                }
            }
            Action::ForwardThenDrop => {
                let mut request = raw_head;
                request.extend_from_slice(&body);
                match exchange(&mut upstream, shared.upstream, &head.method, &request).await {
                    Ok(_) => Shared::count(&shared.dropped_after_forward),
                    Err(_) => Shared::count(&shared.upstream_errors),
                };
                return;
            }
            Action::Close => {
                Shared::count(&shared.closed);
                return;
            }
            Action::Hang => {
                Shared::count(&shared.hung);
                client.discard_until_closed().await;
                return;
            }
            Action::Respond {
                status,
                headers,
                body,
            } => {
                Shared::count(&shared.responded);
                let raw = build_response(status, &headers, &body);
                if client.write_all(&raw).await.is_err() {
                    return;
                }
            }
        }
        if client_closes {
            return;
        }
    }
}

/// An upstream response, raw as received, interim (1xx) responses included.
struct UpstreamResponse {
    raw: Vec<u8>,
    /// The upstream connection cannot carry another request (and neither can the client's).
    closes: bool,
}

/// Sends `request` upstream and reads the whole response. A reused upstream connection that
/// fails before a single response byte arrives was closed while idle, which means the request
/// was not processed: that, and only that, is tried once more on a fresh connection.
async fn exchange(
    upstream: &mut Option<Wire>,
    addr: SocketAddr,
    method: &str,
    request: &[u8],
) -> io::Result<UpstreamResponse> {
    for _ in 0..2 {
        let reused = upstream.is_some();
        let conn = match upstream {
            Some(conn) => conn,
            None => {
                let stream = TcpStream::connect(addr).await?;
                let _ = stream.set_nodelay(true);
                upstream.insert(Wire::new(stream))
            }
        };
        conn.nothing_read = true;
        let written = conn.write_all(request).await;
        let answered = match written {
            Ok(()) => read_response(conn, method).await,
            Err(error) => Err(error),
        };
        match answered {
            Ok(Some(response)) => {
                if response.closes {
                    *upstream = None;
                }
                return Ok(response);
            }
            Ok(None) if reused => *upstream = None,
            Err(_) if reused && conn.nothing_read => *upstream = None,
            Ok(None) => {
                *upstream = None;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "upstream closed without answering",
                ));
            }
            Err(error) => {
                *upstream = None;
                return Err(error);
            }
        }
    }
    Err(io::Error::other("upstream closed a fresh connection too"))
}

/// Reads one final response (relaying any 1xx before it); `None` if the connection closed
/// before the first byte.
async fn read_response(conn: &mut Wire, method: &str) -> io::Result<Option<UpstreamResponse>> {
    let mut raw = Vec::new();
    loop {
        let Some(head) = conn.read_head().await? else {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(eof("upstream closed after an interim response"))
            };
        };
        let (version, status, headers) = parse_response_head(&head)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad response head"))?;
        raw.extend_from_slice(&head);
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        if status == 101 {
            return Err(io::Error::other("the fault proxy does not relay upgrades"));
        }
        let framing = response_framing(method, status, &headers);
        raw.extend_from_slice(&conn.read_body(framing).await?);
        let closes = framing == Framing::UntilClose
            || connection_close(&headers)
            || (version == "HTTP/1.0" && !keep_alive(&headers));
        return Ok(Some(UpstreamResponse { raw, closes }));
    }
}

/// How a message's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

fn request_framing(headers: &[(String, String)]) -> Framing {
    if is_chunked(headers) {
        Framing::Chunked
    } else {
        content_length(headers).map_or(Framing::Empty, Framing::Length)
    }
}

fn response_framing(method: &str, status: u16, headers: &[(String, String)]) -> Framing {
    if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
        Framing::Empty
    } else if is_chunked(headers) {
        Framing::Chunked
    } else {
        content_length(headers).map_or(Framing::UntilClose, Framing::Length)
    }
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    header_value(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(headers: &[(String, String)]) -> Option<usize> {
    header_value(headers, "content-length").and_then(|v| v.trim().parse().ok())
}

fn connection_close(headers: &[(String, String)]) -> bool {
    header_value(headers, "connection").is_some_and(|v| v.to_ascii_lowercase().contains("close"))
}

fn keep_alive(headers: &[(String, String)]) -> bool {
    header_value(headers, "connection")
        .is_some_and(|v| v.to_ascii_lowercase().contains("keep-alive"))
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Header names and values in the order received.
type Headers = Vec<(String, String)>;

/// Splits a head into its start line and headers (obsolete line folding is not supported).
fn parse_head(raw: &[u8]) -> Option<(String, Headers)> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let start = lines.next()?.to_owned();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((start, headers))
}

fn parse_request_head(raw: &[u8]) -> Option<RequestHead> {
    let (start, headers) = parse_head(raw)?;
    let mut parts = start.split(' ');
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    Some(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: Vec::new(),
    })
}

fn parse_response_head(raw: &[u8]) -> Option<(String, u16, Headers)> {
    let (start, headers) = parse_head(raw)?;
    let mut parts = start.splitn(3, ' ');
    let version = parts.next()?.to_owned();
    let status = parts.next()?.parse().ok()?;
    Some((version, status, headers))
}

fn build_response(status: u16, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut raw = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    let bodyless = (100..200).contains(&status) || status == 204 || status == 304;
    if !bodyless && header_value(headers, "content-length").is_none() {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut raw = raw.into_bytes();
    if !bodyless {
        raw.extend_from_slice(body);
    }
    raw
}

fn simple_response(status: u16, message: &str) -> Vec<u8> {
    let headers = [("Content-Type".to_owned(), "text/plain".to_owned())];
    build_response(status, &headers, message.as_bytes())
}

fn eof(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what.to_owned())
}

/// A TCP stream with a read buffer, read message by message.
struct Wire {
    stream: TcpStream,
    /// Bytes read from the socket and not yet consumed.
    buf: Vec<u8>,
    /// No byte has arrived since the current request was sent (for `exchange`'s one retry).
    nothing_read: bool,
}

impl Wire {
    fn new(stream: TcpStream) -> Wire {
        Wire {
            stream,
            buf: Vec::new(),
            nothing_read: true,
        }
    }

    /// Reads more bytes into the buffer; 0 at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n > 0 {
            self.nothing_read = false;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        self.buf.drain(..n).collect()
    }

    /// A head through its blank line; `None` if the stream ended before its first byte.
    async fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                return Ok(Some(self.take(end + 4)));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(eof("stream ended inside a head"))
                };
            }
        }
    }

    async fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                return Ok(self.take(end + 2));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            if self.fill().await? == 0 {
                return Err(eof("stream ended inside a line"));
            }
        }
    }

    async fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(eof("stream ended inside a body"));
            }
        }
        Ok(self.take(n))
    }

    /// The body's bytes exactly as framed on the wire (chunk sizes and trailers included).
    async fn read_body(&mut self, framing: Framing) -> io::Result<Vec<u8>> {
        match framing {
            Framing::Empty => Ok(Vec::new()),
            Framing::Length(n) => self.read_exact(n).await,
            Framing::UntilClose => {
                while self.fill().await? > 0 {}
                Ok(std::mem::take(&mut self.buf))
            }
            Framing::Chunked => {
                let mut raw = Vec::new();
                loop {
                    let line = self.read_line().await?;
                    let size_text = std::str::from_utf8(&line)
                        .ok()
                        .and_then(|l| l.trim_end().split(';').next())
                        .map(str::trim)
                        .unwrap_or("");
                    let size = usize::from_str_radix(size_text, 16).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    raw.extend_from_slice(&line);
                    if size == 0 {
                        // Trailers, then the blank line that ends the message.
                        loop {
                            let trailer = self.read_line().await?;
                            raw.extend_from_slice(&trailer);
                            if trailer == b"\r\n" {
                                return Ok(raw);
                            }
                        }
                    }
                    raw.extend_from_slice(&self.read_exact(size + 2).await?);
                }
            }
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads and discards until the peer closes (or errors).
    async fn discard_until_closed(&mut self) {
        self.buf.clear();
        while let Ok(n) = self.fill().await {
            if n == 0 {
                return;
            }
            self.buf.clear();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mfactl_emulator::Tenant;
    use serde_json::Value;

    use super::{Action, FaultProxy, RequestHead};
    use crate::support::{
        Scenario, assert_converged, manifest_changing_everyone, manifest_for, stderr, to_yaml,
    };

    /// `plan MANIFEST --format json` through `proxy`: (exit code, stdout as JSON or Null, stderr).
    fn plan_via(proxy: &FaultProxy, manifest: &str, extra: &[&str]) -> (i32, Value, String) {
        let mut args = vec!["plan", manifest, "--format", "json", "--detailed-exitcode"];
        args.extend_from_slice(extra);
        let out = proxy.mfactl(&args).output().expect("mfactl runs");
        let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), doc, stderr(&out))
    }

    #[test]
    fn forwarding_proxy_is_transparent_to_plan() {
        let tenant = Tenant::generate(40, 3);
        let (rows, _) = manifest_for(&tenant, true);
        let scenario = Scenario::new(tenant);
        let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
        let (direct_code, direct) = scenario.plan_json(&yaml);
        assert_eq!(direct["graph"], scenario.url());

        let proxy = FaultProxy::in_front_of(&scenario.url());
        let (code, mut doc, err) = plan_via(&proxy, yaml.to_str().unwrap(), &[]);
        assert_eq!(code, direct_code, "{err}");
        // The one difference: which URL the plan was made against.
        assert_eq!(doc["graph"], proxy.url());
        let mut direct = direct;
        doc["graph"] = Value::Null;
        direct["graph"] = Value::Null;
        let (doc, direct) = (
            crate::support::comparable(doc),
            crate::support::comparable(direct),
        );
        assert!(doc == direct, "the plans differ:\n{doc}\n{direct}");
        let stats = proxy.stats();
        assert!(stats.requests > 0, "{stats:?}");
        assert_eq!(stats.forwarded, stats.requests, "{stats:?}");
        assert_eq!(stats.upstream_errors, 0, "{stats:?}");
    }

    #[test]
    fn writes_whose_responses_are_dropped_still_reach_the_emulator() {
        let tenant = Tenant::generate(12, 5);
        let rows = manifest_changing_everyone(&tenant);
        let scenario = Scenario::new(tenant);
        let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
        let proxy = FaultProxy::in_front_of(&scenario.url());
        // (No asserts inside a rule: a panic there only kills that connection's task.)
        proxy.set_rule(|head: &RequestHead, _| {
            if head.method == "PATCH" && head.header("content-type") == Some("application/json") {
                Action::ForwardThenDrop
            } else {
                Action::Forward
            }
        });
        let out = proxy
            .mfactl(&[
                "apply",
                "--no-batch",
                yaml.to_str().unwrap(),
                "--auto-approve",
                "--write-rate",
                "500",
                "--max-attempts",
                "2",
            ])
            .output()
            .unwrap();
        // How mfactl reports writes whose answer was lost is tested in `hardening`; here only
        // that the proxy let every write through and then dropped its answer.
        let _ = &out;
        assert_converged(&scenario.tenant(), &rows);
        let stats = proxy.stats();
        assert!(
            stats.dropped_after_forward >= 2 * rows.len() as u64,
            "{stats:?}"
        );
        assert_eq!(
            stats.dropped_after_forward,
            scenario.stats().writes,
            "every PATCH the emulator took had its response dropped: {stats:?}"
        );
        assert_eq!(stats.upstream_errors, 0, "{stats:?}");
    }

    #[test]
    fn a_request_that_is_never_answered_ends_the_plan_at_the_timeout() {
        let tenant = Tenant::generate(4, 9);
        let (rows, _) = manifest_for(&tenant, false);
        let scenario = Scenario::new(tenant);
        let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
        let proxy = FaultProxy::in_front_of(&scenario.url());
        proxy.set_rule(|_, _| Action::Hang);
        let (code, _, err) = plan_via(
            &proxy,
            yaml.to_str().unwrap(),
            &["--timeout", "1", "--max-attempts", "1"],
        );
        assert_ne!(code, 0, "{err}");
        assert!(proxy.stats().hung >= 1, "{:?}", proxy.stats());
        assert_eq!(proxy.stats().forwarded, 0);
    }

    #[test]
    fn a_redirect_answered_by_the_proxy_reaches_the_client() {
        let tenant = Tenant::generate(4, 10);
        let (rows, _) = manifest_for(&tenant, false);
        let scenario = Scenario::new(tenant);
        let yaml = scenario.write("desired.yaml", &to_yaml(&rows));
        let proxy = FaultProxy::in_front_of(&scenario.url());
        proxy.set_rule(|head: &RequestHead, _| {
            Action::redirect(307, &format!("http://example.invalid{}", head.path))
        });
        // The timeout bounds a slow resolver; example.invalid never resolves.
        let (code, _, err) = plan_via(
            &proxy,
            yaml.to_str().unwrap(),
            &["--timeout", "2", "--max-attempts", "1"],
        );
        assert_ne!(code, 0, "{err}");
        let stats = proxy.stats();
        assert!(stats.responded >= 1, "{stats:?}");
        assert_eq!(stats.forwarded, 0, "{stats:?}");
    }

    /// Chunked, bodiless and close-delimited responses are relayed intact, in turn, over one
    /// upstream connection (the emulator itself only answers with Content-Length).
    #[test]
    fn every_response_framing_is_relayed() {
        use std::io::{Read, Write};
        let answers: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\nuntil close",
        ];
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = upstream.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            for answer in answers {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    stream.read_exact(&mut byte).unwrap();
                    head.push(byte[0]);
                }
                stream.write_all(answer).unwrap();
            }
        });
        let proxy = FaultProxy::start(upstream_addr);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let bodies: Vec<(u16, String)> = runtime.block_on(async {
            let mut bodies = Vec::new();
            for _ in 0..answers.len() {
                let response = client.get(proxy.url()).send().await.expect("relayed");
                let status = response.status().as_u16();
                bodies.push((status, response.text().await.expect("whole body")));
            }
            bodies
        });
        server
            .join()
            .expect("one upstream connection served every answer");
        let expected = [(200, "hello"), (204, ""), (200, "until close")];
        let expected: Vec<(u16, String)> =
            expected.iter().map(|(s, b)| (*s, b.to_string())).collect();
        assert_eq!(bodies, expected);
        assert_eq!(proxy.stats().forwarded, 3);
        assert_eq!(proxy.stats().upstream_errors, 0);
    }

    /// Every mode as reqwest (the client mfactl uses) sees it, on one pooled connection where
    /// the mode allows, so that keep-alive handling is exercised too.
    #[test]
    fn each_mode_reaches_a_reqwest_client_as_documented() {
        let scenario = Scenario::new(Tenant::generate(2, 11));
        let proxy = FaultProxy::in_front_of(&scenario.url());
        let url = format!("{}/_emulator/stats", proxy.url());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let get = || async {
            let response = client.get(&url).send().await?;
            let status = response.status().as_u16();
            response.bytes().await.map(|body| (status, body))
        };
        scenario.block_on(async {
            let (status, body) = get().await.expect("forwarded");
            assert_eq!(status, 200);
            serde_json::from_slice::<Value>(&body).expect("the emulator's JSON");
            get()
                .await
                .expect("again, usually on the kept-alive connection");
            // reqwest hands a connection back to its pool asynchronously: on a loaded machine
            // the second request may open a second one. Never more.
            assert!(proxy.stats().connections <= 2, "{:?}", proxy.stats());

            proxy.set_rule(|_, _| Action::redirect(307, "http://example.invalid/beta/x"));
            let (status, _) = get().await.expect("answered by the proxy");
            assert_eq!(status, 307);

            proxy.set_rule(|_, _| Action::Respond {
                status: 204,
                headers: vec![],
                body: vec![],
            });
            assert_eq!(get().await.expect("no content").0, 204);

            for (action, what) in [
                (Action::Close, "closed"),
                (Action::ForwardThenDrop, "dropped"),
            ] {
                proxy.set_rule(move |_, _| action.clone());
                let error = get().await.expect_err(what);
                assert!(
                    error.is_request() && !error.is_timeout(),
                    "{what}: {error:?}"
                );
            }

            proxy.set_rule(|_, _| Action::Hang);
            let error = get().await.expect_err("hung");
            assert!(error.is_timeout(), "{error:?}");

            // A pooled connection, then refusal: the request on it is closed, a new one reset.
            proxy.set_rule(|_, _| Action::Forward);
            get().await.expect("service again");
            proxy.refuse_connections(true);
            let error = get().await.expect_err("refused on a kept-alive connection");
            assert!(error.is_request() && !error.is_timeout(), "{error:?}");
            // Usually a connect error (the reset beats the connector); a reset after the send
            // is as good, so only "no answer, not a timeout" is asserted.
            let error = get().await.expect_err("refused on a new connection");
            assert!(!error.is_timeout(), "{error:?}");
            proxy.refuse_connections(false);
            get().await.expect("service restored");
        });
        let stats = proxy.stats();
        // At least the two refused above; under load hyper may retry a reset request once on
        // a fresh connection, which is refused too.
        assert!(stats.refused >= 2, "{stats:?}");
        assert_eq!(
            (stats.forwarded, stats.responded, stats.closed),
            (4, 2, 1),
            "{stats:?}"
        );
        assert_eq!(
            (stats.dropped_after_forward, stats.hung),
            (1, 1),
            "{stats:?}"
        );
        assert_eq!(stats.requests, 9, "{stats:?}");
        // Dropping stops the proxy: its port no longer accepts.
        let addr = proxy.url().trim_start_matches("http://").to_owned();
        drop(proxy);
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}
