//! API keys: writes (and, for a private library, reads) need `Authorization: Bearer <key>`.
//!
//! Several keys may be valid at once so a key can be rotated without downtime: add the new
//! one, move clients over, remove the old one. Keys are compared in constant time and never
//! logged or shown in `Debug` output.

use std::fmt;
use std::path::Path;

use subtle::ConstantTimeEq;

#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<String>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} configured, redacted)", self.keys.len())
    }
}

impl ApiKeys {
    /// Keys one per line; blank lines and lines starting with `#` are ignored.
    pub fn parse(text: &str) -> Self {
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Self { keys }
    }

    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when `candidate` is one of the keys. Every key is compared, in constant time, so
    /// the time taken says nothing about which key or how much of it matched.
    pub fn accepts(&self, candidate: &str) -> bool {
        let mut found = subtle::Choice::from(0);
        for key in &self.keys {
            found |= key.as_bytes().ct_eq(candidate.as_bytes());
        }
        found.into()
    }
}
