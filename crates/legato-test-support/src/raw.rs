//! Raw-socket HTTP: requests exactly as written, for smuggling, slow clients and idle
//! connections that an HTTP client library would never produce.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A connection that sends bytes as told.
pub struct RawConnection {
    pub stream: TcpStream,
}

impl RawConnection {
    pub fn open(addr: SocketAddr) -> Self {
        Self::try_open(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
    }

    pub fn try_open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        Ok(Self { stream })
    }

    /// Sends `bytes`; false when the server has closed the connection.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok() && self.stream.flush().is_ok()
    }

    /// Reads until the server closes or `within` passes; returns what was read.
    pub fn read_to_close(&mut self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// True when the server has closed the connection (a read sees end of file or a reset)
    /// within `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}

/// Sends one request as written and returns the whole answer (the server closes, or
/// `within` passes).
/// An empty answer when the connection cannot be made.
pub fn request(addr: SocketAddr, bytes: &[u8], within: Duration) -> String {
    let Ok(mut conn) = RawConnection::try_open(addr) else {
        return String::new();
    };
    conn.send(bytes);
    conn.read_to_close(within)
}

/// The status code of an HTTP/1.1 answer, or 0.
pub fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A `GET` with `Connection: close`, returning the status (0 when there is no answer).
pub fn get_status(addr: SocketAddr, path: &str, within: Duration) -> u16 {
    let text = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    status_of(&request(addr, text.as_bytes(), within))
}
