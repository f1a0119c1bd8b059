//! A tokio TCP server driving the Sans-IO [`Server`] (feature `runtime-tokio`).
//!
//! One task owns the [`Server`]; each connection has a reader task and a writer task. The
//! driver makes no protocol decisions:
//!
//! - **Accept**: admission ([`Server::handle_connect`]) is checked right after `accept`, before
//!   any per-connection allocation beyond the socket; a refused socket is dropped at once. With
//!   PROXY protocol v1 the header (at most 107 bytes) is read first, by at most
//!   [`Options::max_pending_proxy`] tasks at a time, each under a timeout.
//! - **Reads**: fixed-size chunks go to the core, whose framer enforces the line cap.
//! - **Writes**: bytes in flight per connection are counted; a connection whose unwritten
//!   bytes would exceed [`Config::max_output_bytes`](crate::Config::max_output_bytes) is closed
//!   (slow reader), and each write has a timeout.
//! - **Timers**: the driver sleeps until [`Server::poll_timeout`].
//! - **Host**: requests ([`ServerEvent::Authorize`], [`ServerEvent::Submit`]) and ban notices
//!   arrive on a bounded channel; answers go back through [`Handle::respond`]. When the host
//!   falls behind, events wait in the core, whose bounded queue answers new requests "busy".
//! - **Shutdown**: [`Handle::shutdown`] stops accepting, flushes and closes every connection.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ::tokio::io::{AsyncReadExt, AsyncWriteExt};
use ::tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use ::tokio::net::{TcpListener, TcpStream};
use ::tokio::sync::{Semaphore, mpsc, oneshot};
use ::tokio::task::JoinHandle;
use ::tokio::time::Instant;
use btq_core::time::Timestamp;
use thiserror::Error;

use crate::job::{Job, JobError};
use crate::server::{RequestToken, Server, ServerEvent, Stats, Verdict};
use crate::types::SessionId;

/// Driver options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Expect a PROXY protocol v1 header on every connection. Default false.
    pub proxy_protocol: bool,
    /// Most connections reading a PROXY header at once. Default 256.
    pub max_pending_proxy: usize,
    /// Timeout for the PROXY header. Default 5 s.
    pub proxy_timeout: Duration,
    /// Read chunk size per connection. Default 4096.
    pub read_buffer: usize,
    /// Capacity of the host event channel. Default 1024.
    pub event_capacity: usize,
    /// Capacity of the channel from connection readers to the driver. Default 1024.
    pub input_capacity: usize,
    /// Timeout of one socket write. Default 10 s.
    pub write_timeout: Duration,
    /// How long shutdown waits for writers to flush. Default 2 s.
    pub shutdown_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            proxy_protocol: false,
            max_pending_proxy: 256,
            proxy_timeout: Duration::from_secs(5),
            read_buffer: 4096,
            event_capacity: 1024,
            input_capacity: 1024,
            write_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// The driver task has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the stratum runtime has stopped")]
pub struct RuntimeClosedError;

enum Command {
    Respond(RequestToken, Verdict),
    Broadcast(Box<Job>, oneshot::Sender<Result<(), JobError>>),
    Stats(oneshot::Sender<(Stats, usize)>),
    Shutdown,
}

/// A cloneable handle to the running server.
#[derive(Debug, Clone)]
pub struct Handle {
    cmd: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Handle {
    /// Passes the host's verdict on a request back to the server.
    ///
    /// # Errors
    /// [`RuntimeClosedError`] if the driver stopped.
    pub async fn respond(
        &self,
        token: RequestToken,
        verdict: Verdict,
    ) -> Result<(), RuntimeClosedError> {
        self.cmd
            .send(Command::Respond(token, verdict))
            .await
            .map_err(|_| RuntimeClosedError)
    }

    /// Broadcasts a job to every authorized session.
    ///
    /// # Errors
    /// [`RuntimeClosedError`] if the driver stopped; the inner result is the core's.
    pub async fn broadcast_job(
        &self,
        job: Job,
    ) -> Result<Result<(), JobError>, RuntimeClosedError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::Broadcast(Box::new(job), tx))
            .await
            .map_err(|_| RuntimeClosedError)?;
        rx.await.map_err(|_| RuntimeClosedError)
    }

    /// Returns the core's [`Stats`] and the driver's number of open connections.
    ///
    /// # Errors
    /// [`RuntimeClosedError`] if the driver stopped.
    pub async fn stats(&self) -> Result<(Stats, usize), RuntimeClosedError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::Stats(tx))
            .await
            .map_err(|_| RuntimeClosedError)?;
        rx.await.map_err(|_| RuntimeClosedError)
    }

    /// Starts a graceful shutdown (no effect if already stopped).
    pub async fn shutdown(&self) {
        let _ = self.cmd.send(Command::Shutdown).await;
    }
}

enum Input {
    Data(SessionId, Vec<u8>),
    Closed(SessionId),
    Proxied(TcpStream, IpAddr),
}

struct Conn {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    inflight: Arc<AtomicUsize>,
    reader: JoinHandle<()>,
    writer_task: JoinHandle<()>,
}

/// Starts serving `listener` with `server`. Returns the handle, the host's event receiver and
/// the driver task (which ends after shutdown).
pub fn spawn(
    listener: TcpListener,
    server: Server,
    options: Options,
) -> (Handle, mpsc::Receiver<ServerEvent>, JoinHandle<()>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    let (ev_tx, ev_rx) = mpsc::channel(options.event_capacity.max(1));
    let (in_tx, in_rx) = mpsc::channel(options.input_capacity.max(1));
    let driver = Driver {
        server,
        conns: HashMap::new(),
        start: Instant::now(),
        proxy_slots: Arc::new(Semaphore::new(options.max_pending_proxy)),
        options,
        ev_tx,
        in_tx,
        buf: Vec::new(),
    };
    let task = ::tokio::spawn(driver.run(listener, cmd_rx, in_rx));
    (Handle { cmd: cmd_tx }, ev_rx, task)
}

struct Driver {
    server: Server,
    conns: HashMap<SessionId, Conn>,
    start: Instant,
    options: Options,
    proxy_slots: Arc<Semaphore>,
    ev_tx: mpsc::Sender<ServerEvent>,
    in_tx: mpsc::Sender<Input>,
    buf: Vec<u8>,
}

impl Driver {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    async fn run(
        mut self,
        listener: TcpListener,
        mut cmd_rx: mpsc::Receiver<Command>,
        mut in_rx: mpsc::Receiver<Input>,
    ) {
        loop {
            let deadline = self
                .server
                .poll_timeout()
                .map(|t| self.start + Duration::from_millis(t.as_millis()));
            let sleep_until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            ::tokio::select! {
                biased;
                cmd = cmd_rx.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(Command::Respond(token, verdict)) => {
                        let now = self.now();
                        let _ = self.server.respond(now, token, verdict);
                    }
                    Some(Command::Broadcast(job, tx)) => {
                        let _ = tx.send(self.server.broadcast_job(&job));
                    }
                    Some(Command::Stats(tx)) => {
                        let _ = tx.send((self.server.stats(), self.conns.len()));
                    }
                },
                input = in_rx.recv() => match input {
                    Some(Input::Data(id, bytes)) => {
                        let now = self.now();
                        if self.server.handle_bytes(now, id, &bytes).is_err() {
                            self.close(id);
                        }
                    }
                    Some(Input::Closed(id)) => self.close(id),
                    Some(Input::Proxied(stream, ip)) => self.admit(stream, ip),
                    None => {}
                },
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => self.accepted(stream, addr),
                    Err(_) => {
                        // Out of descriptors and the like: back off briefly.
                        ::tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                () = ::tokio::time::sleep_until(sleep_until) => {
                    let now = self.now();
                    self.server.handle_timeout(now);
                }
            }
            self.flush();
        }
        drop(listener);
        self.shutdown().await;
    }

    fn accepted(&mut self, stream: TcpStream, addr: SocketAddr) {
        if !self.options.proxy_protocol {
            self.admit(stream, addr.ip());
            return;
        }
        let Ok(permit) = Arc::clone(&self.proxy_slots).try_acquire_owned() else {
            return; // Too many headers being read: drop the socket.
        };
        let tx = self.in_tx.clone();
        let timeout = self.options.proxy_timeout;
        ::tokio::spawn(async move {
            let _permit = permit;
            let mut stream = stream;
            let header = ::tokio::time::timeout(timeout, read_proxy_header(&mut stream)).await;
            if let Ok(Ok(source)) = header {
                let ip = source.unwrap_or(addr.ip());
                let _ = tx.send(Input::Proxied(stream, ip)).await;
            }
        });
    }

    fn admit(&mut self, stream: TcpStream, ip: IpAddr) {
        let now = self.now();
        let Ok(id) = self.server.handle_connect(now, ip) else {
            drop(stream);
            return;
        };
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let (wtx, wrx) = mpsc::unbounded_channel();
        let inflight = Arc::new(AtomicUsize::new(0));
        let reader = ::tokio::spawn(read_loop(
            rd,
            id,
            self.in_tx.clone(),
            self.options.read_buffer,
        ));
        let writer_task = ::tokio::spawn(write_loop(
            wr,
            wrx,
            Arc::clone(&inflight),
            self.options.write_timeout,
        ));
        self.conns.insert(
            id,
            Conn {
                writer: wtx,
                inflight,
                reader,
                writer_task,
            },
        );
    }

    /// Forgets a connection: stops its reader, lets its writer flush and close.
    fn close(&mut self, id: SessionId) {
        if let Some(conn) = self.conns.remove(&id) {
            conn.reader.abort();
            drop(conn.writer);
        }
        let now = self.now();
        self.server.handle_close(now, id);
    }

    fn flush(&mut self) {
        let ev_tx = self.ev_tx.clone();
        loop {
            let permit = match ev_tx.try_reserve() {
                Ok(p) => Some(p),
                Err(mpsc::error::TrySendError::Full(())) => None,
                Err(mpsc::error::TrySendError::Closed(())) => None,
            };
            let Some(permit) = permit else {
                // The host is behind: deliver only disconnects now.
                self.flush_transmits();
                return;
            };
            match self.server.poll_event() {
                None => break,
                Some(ServerEvent::Disconnect { session, .. }) => {
                    drop(permit);
                    self.buf.clear();
                    self.server.take_transmit(session, &mut self.buf);
                    if let Some(conn) = self.conns.get(&session) {
                        let _ = conn.writer.send(std::mem::take(&mut self.buf));
                    }
                    self.close(session);
                }
                Some(ev) => permit.send(ev),
            }
        }
        self.flush_transmits();
    }

    fn flush_transmits(&mut self) {
        let cap = self.server.config().max_output_bytes;
        let mut buf = std::mem::take(&mut self.buf);
        let mut slow = Vec::new();
        loop {
            buf.clear();
            let Some(id) = self.server.poll_transmit(&mut buf) else {
                break;
            };
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            let queued = conn.inflight.load(Ordering::Acquire);
            if queued.saturating_add(buf.len()) > cap {
                slow.push(id);
                continue;
            }
            conn.inflight.fetch_add(buf.len(), Ordering::AcqRel);
            if conn.writer.send(buf.clone()).is_err() {
                slow.push(id);
            }
        }
        self.buf = buf;
        for id in slow {
            self.close(id);
        }
    }

    async fn shutdown(mut self) {
        self.flush_transmits();
        let ids: Vec<SessionId> = self.conns.keys().copied().collect();
        let mut writers = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(conn) = self.conns.remove(&id) {
                conn.reader.abort();
                drop(conn.writer);
                writers.push(conn.writer_task);
            }
            let now = self.now();
            self.server.handle_close(now, id);
        }
        let grace = self.options.shutdown_grace;
        let _ = ::tokio::time::timeout(grace, async {
            for w in writers {
                let _ = w.await;
            }
        })
        .await;
    }
}

async fn read_loop(mut rd: OwnedReadHalf, id: SessionId, tx: mpsc::Sender<Input>, size: usize) {
    let mut buf = vec![0u8; size.max(64)];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = buf.get(..n).unwrap_or(&[]).to_vec();
                if tx.send(Input::Data(id, chunk)).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send(Input::Closed(id)).await;
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    inflight: Arc<AtomicUsize>,
    timeout: Duration,
) {
    while let Some(bytes) = rx.recv().await {
        match ::tokio::time::timeout(timeout, wr.write_all(&bytes)).await {
            Ok(Ok(())) => {
                inflight.fetch_sub(
                    bytes.len().min(inflight.load(Ordering::Acquire)),
                    Ordering::AcqRel,
                );
            }
            _ => return,
        }
    }
    let _ = wr.shutdown().await;
}

/// Longest PROXY protocol v1 header, including `\r\n`.
pub const MAX_PROXY_HEADER: usize = 107;

async fn read_proxy_header(stream: &mut TcpStream) -> io::Result<Option<IpAddr>> {
    let mut header = [0u8; MAX_PROXY_HEADER];
    let mut len = 0;
    loop {
        let Some(slot) = header.get_mut(len..=len) else {
            return Err(io::ErrorKind::InvalidData.into());
        };
        if stream.read(slot).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        len += 1;
        if header.get(..len).is_some_and(|h| h.ends_with(b"\r\n")) {
            break;
        }
    }
    parse_proxy_v1(header.get(..len).unwrap_or(&[]))
        .ok_or_else(|| io::ErrorKind::InvalidData.into())
}

/// Parses a PROXY protocol v1 header line (with its `\r\n`). Returns the source address, or
/// `Some(None)` for `PROXY UNKNOWN`, or `None` if the header is invalid.
pub fn parse_proxy_v1(line: &[u8]) -> Option<Option<IpAddr>> {
    let line = line.strip_suffix(b"\r\n")?;
    if line.len() > MAX_PROXY_HEADER - 2 {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split(' ');
    if parts.next()? != "PROXY" {
        return None;
    }
    match parts.next()? {
        "UNKNOWN" => Some(None),
        proto @ ("TCP4" | "TCP6") => {
            let src: IpAddr = parts.next()?.parse().ok()?;
            let dst: IpAddr = parts.next()?.parse().ok()?;
            let _sport: u16 = parts.next()?.parse().ok()?;
            let _dport: u16 = parts.next()?.parse().ok()?;
            if parts.next().is_some()
                || src.is_ipv4() != (proto == "TCP4")
                || src.is_ipv4() != dst.is_ipv4()
            {
                return None;
            }
            Some(Some(src))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_v1() {
        assert_eq!(
            parse_proxy_v1(b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 3333\r\n"),
            Some(Some("192.0.2.1".parse().unwrap()))
        );
        assert_eq!(
            parse_proxy_v1(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"),
            Some(Some("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(parse_proxy_v1(b"PROXY UNKNOWN\r\n"), Some(None));
        assert_eq!(
            parse_proxy_v1(b"PROXY TCP4 2001:db8::1 1.2.3.4 1 2\r\n"),
            None
        );
        assert_eq!(parse_proxy_v1(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(parse_proxy_v1(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2"), None);
    }
}
