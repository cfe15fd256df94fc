//! What a request says: its query and form parameters, and the client's address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::http::HeaderMap;

use super::error::SubsonicError;

/// The query and form parameters of a request; names may repeat (`id=1&id=2`).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(query: Option<&str>, form: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        pairs.extend(form_urlencoded::parse(form).into_owned());
        Self(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, name: &str) -> Result<&str, SubsonicError> {
        self.get(name).ok_or_else(|| SubsonicError::missing(name))
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A number parameter: its default when absent, an error when not a number.
    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, SubsonicError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(text) => text
                .trim()
                .parse()
                .map_err(|_| SubsonicError::invalid(name, "not a number")),
        }
    }

    /// A boolean parameter: its default when absent or empty, else [`boolean`] of it.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        self.maybe_flag(name).unwrap_or(default)
    }

    /// A boolean parameter without a default: `None` when absent or empty.
    pub fn maybe_flag(&self, name: &str) -> Option<bool> {
        self.get(name)
            .filter(|text| !text.trim().is_empty())
            .map(boolean)
    }

    /// Paging: `size` (or the name given) within 0..=max, and `offset`.
    pub fn page(
        &self,
        size: &str,
        offset: &str,
        default: usize,
        max: usize,
    ) -> Result<(usize, usize), SubsonicError> {
        Ok((
            self.number(size, default)?.min(max),
            self.number(offset, 0usize)?,
        ))
    }
}

/// A boolean parameter's value as the reference servers read it: `true`, `on`, `yes` and
/// `1` in any case are true (Subsonic's Spring `getBooleanParameter`; Navidrome takes
/// `true`, `on` and `1`), anything else is false. Every boolean parameter is read through
/// this (by [`Params::flag`] and [`Params::maybe_flag`]).
pub fn boolean(text: &str) -> bool {
    let text = text.trim();
    ["true", "on", "yes", "1"]
        .iter()
        .any(|t| text.eq_ignore_ascii_case(t))
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not a trusted proxy. A proxy appends what it saw, so the
/// entries left of it are whatever the client wrote and are never believed.
pub(super) fn client_address(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let peer = peer.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |p| p.ip());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .map(|hop| hop.parse::<IpAddr>().ok())
        .collect::<Option<Vec<_>>>()
        // A hop that is not an address: believe none of them.
        .unwrap_or_default();
    hops.iter()
        .rev()
        .find(|hop| !is_trusted(hop))
        .or_else(|| hops.first())
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_the_reference_servers_read_them() {
        for text in [
            "true", "True", "TRUE", "1", "on", "ON", "yes", "Yes", " true ",
        ] {
            assert!(boolean(text), "{text:?}");
        }
        for text in [
            "false", "False", "FALSE", "0", "off", "no", "2", "truthy", "t",
        ] {
            assert!(!boolean(text), "{text:?}");
        }
        let params = Params::parse(Some("a=True&b=0&c="), &[]);
        assert!(params.flag("a", false));
        assert!(!params.flag("b", true));
        assert!(params.flag("c", true), "empty: the default");
        assert!(params.flag("d", true), "absent: the default");
        assert_eq!(params.maybe_flag("c"), None);
        assert_eq!(params.maybe_flag("b"), Some(false));
    }
}
