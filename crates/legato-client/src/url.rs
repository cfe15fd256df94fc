//! Where the server is: a gateway root or the crud function's own URL.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;

use crate::error::ClientError;

/// Used when no URL is given (`legato serve`'s default address).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Where a gateway (or `legato serve`) mounts the crud function under its root.
pub const CRUD_PATH: &str = "/function/crud";

/// A Legato server's address, resolved into the gateway root and the crud function's URL.
///
/// Accepts the gateway root (`http://gw:8080`, or under a path prefix `http://host/legato`)
/// or the crud function's URL (`http://gw:8080/function/crud`); a missing scheme means
/// `http://`. Playlist paths the server hands out (`/function/streaming/...`) are joined to
/// the root.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// The root without a trailing slash, as shown in messages.
    root: String,
    crud: Url,
}

impl ServerUrl {
    /// Parses a gateway root or a crud function URL.
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("http://{trimmed}")
        };
        let url = Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
        match url.scheme() {
            "http" => {}
            // reqwest is built without a TLS backend (see the crate docs); say so up front
            // rather than failing every request with a confusing connection error.
            "https" => {
                return Err(invalid(
                    "https is not supported by this build (no TLS); use http:// or a plain-HTTP gateway",
                ));
            }
            other => return Err(invalid(&format!("the scheme must be http, not {other}"))),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not have a query or a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "credentials do not belong in the URL; use the API key instead",
            ));
        }
        let full = url.as_str().trim_end_matches('/');
        let root = full.strip_suffix(CRUD_PATH).unwrap_or(full).to_owned();
        let crud =
            Url::parse(&format!("{root}{CRUD_PATH}")).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self { root, crud })
    }

    /// The gateway root, without a trailing slash: `http://127.0.0.1:8080`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The crud function's URL: `http://127.0.0.1:8080/function/crud`.
    pub fn crud(&self) -> &Url {
        &self.crud
    }

    /// The URL of one track in the crud function; the id is percent-encoded as one path
    /// segment, so no id can reach another path. An empty id, `.` and `..` have no URL (a
    /// URL would name the list, or a parent path, instead of a track).
    pub fn track(&self, id: &str) -> Option<Url> {
        if matches!(id, "" | "." | "..") {
            return None;
        }
        let mut url = self.crud.clone();
        url.path_segments_mut().ok()?.pop_if_empty().push(id);
        Some(url)
    }

    /// `path` (absolute, as the server hands out playlist paths) joined to the root; an
    /// absolute URL is returned as it is.
    pub fn join(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_owned();
        }
        format!("{}/{}", self.root, path.trim_start_matches('/'))
    }
}

impl FromStr for ServerUrl {
    type Err = ClientError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.root)
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerUrl({})", self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_crud_urls_resolve_to_the_same_server() {
        for given in [
            "http://gw:8080",
            "http://gw:8080/",
            "http://gw:8080/function/crud",
            "http://gw:8080/function/crud/",
            "gw:8080",
            "  http://gw:8080  ",
        ] {
            let url = ServerUrl::parse(given).unwrap();
            assert_eq!(url.root(), "http://gw:8080", "{given}");
            assert_eq!(
                url.crud().as_str(),
                "http://gw:8080/function/crud",
                "{given}"
            );
        }
    }

    #[test]
    fn a_path_prefix_is_kept() {
        let url = ServerUrl::parse("http://host/legato/function/crud").unwrap();
        assert_eq!(url.root(), "http://host/legato");
        assert_eq!(
            url.join("/function/streaming/a/index.m3u8"),
            "http://host/legato/function/streaming/a/index.m3u8"
        );
        assert_eq!(
            url.track("abc").unwrap().as_str(),
            "http://host/legato/function/crud/abc"
        );
    }

    #[test]
    fn ids_are_one_encoded_path_segment() {
        let url = ServerUrl::parse("http://h").unwrap();
        assert_eq!(
            url.track("../x?y#z").unwrap().as_str(),
            "http://h/function/crud/..%2Fx%3Fy%23z"
        );
        for no_track in ["", ".", ".."] {
            assert!(url.track(no_track).is_none());
        }
    }

    #[test]
    fn absolute_playlist_urls_are_kept() {
        let url = ServerUrl::parse("http://h").unwrap();
        assert_eq!(url.join("http://cdn/x.m3u8"), "http://cdn/x.m3u8");
    }

    #[test]
    fn unusable_urls_are_refused_with_a_reason() {
        for (given, reason) in [
            ("", "empty"),
            ("https://h", "no TLS"),
            ("ftp://h", "scheme"),
            ("http://h/?q=1", "query"),
            ("http://u:p@h", "credentials"),
            ("http://", "empty host"),
        ] {
            let err = ServerUrl::parse(given).unwrap_err().to_string();
            assert!(err.contains(reason), "{given}: {err}");
        }
    }
}
