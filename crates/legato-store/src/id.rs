use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A track id: 12 bytes shown as 24 lowercase hex characters, in MongoDB ObjectId form
/// (4 bytes of seconds since the epoch, 5 random bytes, a 3-byte counter) so that ids look
/// the same on every backend and a track written by the seed keeps its id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrackId([u8; 12]);

#[derive(Debug, Error)]
#[error("'{shown}' is not a track id: ids are 24 hexadecimal characters")]
pub struct InvalidTrackId {
    shown: String,
}

impl TrackId {
    /// A new id, unique across processes with overwhelming probability.
    pub fn generate() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        let random: [u8; 5] = rand::random();
        let count = COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(u32::from(random[0]) << 8);
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(&random);
        bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        Self(bytes)
    }

    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> [u8; 12] {
        self.0
    }

    /// Seconds since the epoch encoded in the id (when it was made).
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

impl FromStr for TrackId {
    type Err = InvalidTrackId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidTrackId {
            shown: s.chars().take(40).collect(),
        };
        let raw = s.as_bytes();
        if raw.len() != 24 {
            return Err(invalid());
        }
        let mut bytes = [0u8; 12];
        for (byte, pair) in bytes.iter_mut().zip(raw.chunks_exact(2)) {
            let hi = hex_value(pair[0]).ok_or_else(invalid)?;
            let lo = hex_value(pair[1]).ok_or_else(invalid)?;
            *byte = hi << 4 | lo;
        }
        Ok(Self(bytes))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackId({self})")
    }
}

impl TryFrom<String> for TrackId {
    type Error = InvalidTrackId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TrackId> for String {
    fn from(id: TrackId) -> Self {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_hex() {
        let id = TrackId::generate();
        let text = id.to_string();
        assert_eq!(text.len(), 24);
        assert!(
            text.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(text.parse::<TrackId>().unwrap(), id);
    }

    #[test]
    fn accepts_uppercase_and_rejects_everything_else() {
        assert!("65A1F0C2E4B0A1B2C3D4E5F6".parse::<TrackId>().is_ok());
        for bad in [
            "",
            "11111",
            "65a1f0c2e4b0a1b2c3d4e5f",
            "65a1f0c2e4b0a1b2c3d4e5fg",
            "../../etc/passwd",
            "65a1f0c2e4b0a1b2c3d4e5f6a",
            "é5a1f0c2e4b0a1b2c3d4e5f",
        ] {
            assert!(bad.parse::<TrackId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_distinct() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| TrackId::generate()).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
