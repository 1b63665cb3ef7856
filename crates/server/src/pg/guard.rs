//! A guard in front of pgwire: every frontend message's framing is checked before pgwire reads
//! it. pgwire 0.42 trusts a message's length field (a length under 4 underflows in its
//! decoders and panics the connection's task); Postgres closes such a connection, and so does
//! this guard. The client's TCP stream is pumped into one end of a Unix socket pair whose other
//! end pgwire serves; the answers are copied back as they are.
//!
//! Checked: the startup phase's untyped messages (length 8 to 10,000; an SSL or GSS encryption
//! request is answered `N`, as a server without TLS does) up to the startup message or cancel
//! request, then typed messages (a frontend message type, length 4 to 1 GiB). Anything else ends the connection before pgwire sees it.

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};

const SSL_REQUEST: i32 = 80_877_103;
const GSS_REQUEST: i32 = 80_877_104;
const MAX_STARTUP: i32 = 10_000;
const MAX_MESSAGE: i32 = 1 << 30;
/// The frontend message types of protocol 3.0.
const FRONTEND_TYPES: &[u8] = b"QPBEDSHCFXdcfp";

/// Serves `client` through `backend` (pgwire's end) until either side ends. An error names the
/// framing fault that closed the connection.
pub async fn pump(client: TcpStream, backend: UnixStream) -> std::io::Result<()> {
    let (client_read, mut client_write) = client.into_split();
    let (mut backend_read, mut backend_write) = backend.into_split();
    let mut reader = BufReader::new(client_read);
    // Startup: untyped messages until a startup or cancel request has gone through.
    loop {
        let len = reader.read_i32().await?;
        if !(8..=MAX_STARTUP).contains(&len) {
            return Err(fault(format!("a startup message of length {len}")));
        }
        let code = reader.read_i32().await?;
        if len == 8 && (code == SSL_REQUEST || code == GSS_REQUEST) {
            client_write.write_all(b"N").await?;
            continue;
        }
        let mut body = vec![0u8; len as usize - 8];
        reader.read_exact(&mut body).await?;
        startup_well_formed(code, &body).map_err(|what| fault(format!("a startup message {what}")))?;
        backend_write.write_all(&len.to_be_bytes()).await?;
        backend_write.write_all(&code.to_be_bytes()).await?;
        backend_write.write_all(&body).await?;
        // A startup message (or a cancel request, after which pgwire closes) ends the phase.
        break;
    }
    let up = async {
        loop {
            let kind = match reader.read_u8().await {
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            };
            let len = reader.read_i32().await?;
            if !FRONTEND_TYPES.contains(&kind) {
                return Err(fault(format!("a message of unknown type {kind:#04x}")));
            }
            if !(4..=MAX_MESSAGE).contains(&len) {
                return Err(fault(format!("a '{}' message of length {len}", kind as char)));
            }
            if kind == b'd' {
                // COPY data (refused later, as every COPY is): passed on unread.
                backend_write.write_all(&[kind]).await?;
                backend_write.write_all(&len.to_be_bytes()).await?;
                forward(&mut reader, &mut backend_write, len as u64 - 4).await?;
                continue;
            }
            // The whole message is read and checked before pgwire gets any of it.
            let mut message = Vec::with_capacity(len as usize + 1);
            message.push(kind);
            message.extend_from_slice(&len.to_be_bytes());
            message.resize(len as usize + 1, 0);
            reader.read_exact(&mut message[5..]).await?;
            well_formed(kind, &message[5..]).map_err(|what| fault(format!("a '{}' message {what}", kind as char)))?;
            backend_write.write_all(&message).await?;
        }
    };
    let down = tokio::io::copy(&mut backend_read, &mut client_write);
    tokio::select! {
        r = up => r,
        r = down => r.map(|_| ()),
    }
}

/// A cancel request (its process id and secret key) or a protocol 3 startup message (name and
/// value pairs, then an empty name).
fn startup_well_formed(code: i32, body: &[u8]) -> Result<(), &'static str> {
    if code == 80_877_102 {
        return if body.len() >= 8 { Ok(()) } else { Err("(a cancel request) shorter than its contents") };
    }
    if code >> 16 != 3 {
        return Err("of a protocol other than 3");
    }
    let mut b = Body(body);
    loop {
        if b.0.first() == Some(&0) {
            b.take(1)?;
            break;
        }
        b.cstr()?;
        b.cstr()?;
    }
    if b.0.is_empty() {
        Ok(())
    } else {
        Err("longer than its contents")
    }
}

/// Whether a message body holds what its type says, every count and length within the body
/// (pgwire's decoders assume so and panic otherwise).
fn well_formed(kind: u8, body: &[u8]) -> Result<(), &'static str> {
    let mut b = Body(body);
    match kind {
        b'S' | b'H' | b'X' | b'c' => {}
        b'Q' | b'f' | b'p' => {
            b.cstr()?;
        }
        b'D' | b'C' => {
            b.take(1)?;
            b.cstr()?;
        }
        b'E' => {
            b.cstr()?;
            b.i32()?;
        }
        b'P' => {
            b.cstr()?;
            b.cstr()?;
            let n = b.count()?;
            b.take(4 * n)?;
        }
        b'B' => {
            b.cstr()?;
            b.cstr()?;
            let formats = b.count()?;
            b.take(2 * formats)?;
            b.values()?;
            let results = b.count()?;
            b.take(2 * results)?;
        }
        b'F' => {
            b.i32()?;
            let formats = b.count()?;
            b.take(2 * formats)?;
            b.values()?;
            b.take(2)?;
        }
        _ => return Err("of an unknown type"),
    }
    if b.0.is_empty() {
        Ok(())
    } else {
        Err("longer than its contents")
    }
}

/// A reader over a message body that fails, rather than panics, past its end.
struct Body<'a>(&'a [u8]);

impl Body<'_> {
    const SHORT: &'static str = "shorter than its contents";

    fn take(&mut self, n: usize) -> Result<&[u8], &'static str> {
        if self.0.len() < n {
            return Err(Self::SHORT);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    /// A non-negative 16-bit count.
    fn count(&mut self) -> Result<usize, &'static str> {
        let n = i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes"));
        usize::try_from(n).map_err(|_| "with a negative count")
    }

    fn cstr(&mut self) -> Result<(), &'static str> {
        let end = self.0.iter().position(|&b| b == 0).ok_or("with a string that does not end")?;
        std::str::from_utf8(&self.0[..end]).map_err(|_| "with a string that is not UTF-8")?;
        self.0 = &self.0[end + 1..];
        Ok(())
    }

    /// A count of values, each a length (-1: NULL) and that many bytes.
    fn values(&mut self) -> Result<(), &'static str> {
        for _ in 0..self.count()? {
            let len = self.i32()?;
            if len >= 0 {
                self.take(len as usize)?;
            } else if len != -1 {
                return Err("with a negative value length");
            }
        }
        Ok(())
    }
}

fn fault(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what}: not the Postgres protocol; connection closed"))
}

async fn forward<R, W>(reader: &mut R, writer: &mut W, n: u64) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let copied = tokio::io::copy(&mut reader.take(n), writer).await?;
    if copied < n {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the client closed inside a message"));
    }
    Ok(())
}
