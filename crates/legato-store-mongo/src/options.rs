//! Connection settings and the URI redaction every log line and `Debug` output goes through.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use legato_store::StoreError;

/// Database used when the URI names none (`mongodb://host:27017/`): the seed's.
pub const DEFAULT_DATABASE: &str = "openfaas";

/// Settings beside the URI. `Default` suits an OpenFaaS function talking to a nearby server.
#[derive(Clone)]
pub struct MongoOptions {
    /// Password spliced into the URI's credentials (the URI then names only the user), for a
    /// password kept in an OpenFaaS secret file. Never shown in `Debug`.
    pub password: Option<String>,
    /// Database to use instead of the one the URI's path names (or [`DEFAULT_DATABASE`]).
    pub database: Option<String>,
    /// Longest wait for one store operation (one round trip or one batch of chunks) before it
    /// fails with [`StoreError::Unavailable`].
    pub operation_timeout: Duration,
    /// Longest wait for a reachable server before an operation fails with
    /// [`StoreError::Unavailable`]; the driver's default is 30 s.
    pub server_selection_timeout: Duration,
    /// TCP connect timeout of each new connection; the driver's default is 10 s.
    pub connect_timeout: Duration,
    /// Connections kept per server (the driver's default is 10).
    pub max_pool_size: Option<u32>,
    /// Chunks younger than this are never collected as garbage: they may belong to an insert
    /// still in progress, whose track document is written last.
    pub gc_grace: Duration,
    /// Run [`MongoStore::collect_garbage`](crate::MongoStore::collect_garbage) once in the
    /// background after connecting.
    pub gc_on_start: bool,
    /// Called with every command the driver sends and its outcome (the driver's command
    /// monitoring): how the query-shape test sees each query.
    pub command_events: Option<mongodb::event::EventHandler<mongodb::event::command::CommandEvent>>,
}

impl Default for MongoOptions {
    fn default() -> Self {
        Self {
            password: None,
            database: None,
            operation_timeout: Duration::from_secs(10),
            server_selection_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            max_pool_size: None,
            gc_grace: Duration::from_secs(3600),
            gc_on_start: true,
            command_events: None,
        }
    }
}

impl MongoOptions {
    /// Reads the password from a file (an OpenFaaS secret), without its trailing newline.
    pub fn with_password_file(mut self, path: &Path) -> Result<Self, StoreError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            StoreError::Invalid(format!(
                "cannot read the MongoDB password file {}: {e}",
                path.display()
            ))
        })?;
        self.password = Some(text.trim_end_matches(['\r', '\n']).to_owned());
        Ok(self)
    }
}

impl fmt::Debug for MongoOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoOptions")
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("operation_timeout", &self.operation_timeout)
            .field("server_selection_timeout", &self.server_selection_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_pool_size", &self.max_pool_size)
            .field("gc_grace", &self.gc_grace)
            .field("gc_on_start", &self.gc_on_start)
            .field("command_events", &self.command_events.is_some())
            .finish()
    }
}

/// The URI with its password replaced by `***`, for logs, `Debug` and `describe()`.
///
/// Also copes with URIs the driver would reject (an unescaped `@`, `/` or `?` in the
/// password), since those are the ones that end up in error messages.
pub fn redact_uri(uri: &str) -> String {
    match password_span(uri) {
        Some((start, end)) => format!("{}***{}", &uri[..start], &uri[end..]),
        None => uri.to_owned(),
    }
}

/// The password written in the URI, if any (as written, percent-encoding included).
pub(crate) fn uri_password(uri: &str) -> Option<&str> {
    password_span(uri).map(|(start, end)| &uri[start..end])
}

/// Byte range of the password in `scheme://user:password@hosts/db?options`.
fn password_span(uri: &str) -> Option<(usize, usize)> {
    let rest_start = uri.find("://")? + 3;
    let rest = &uri[rest_start..];
    // The credentials end at the last '@' of the host part; an '@' in the password only
    // moves that further right, so searching from the right never shows a piece of it.
    let host_part = &rest[..rest.find('?').unwrap_or(rest.len())];
    let at = match host_part.rfind('@') {
        Some(at) => at,
        // No '@' before the options: maybe a '?' in the password hid it (then no '/' of a
        // path comes before that '?').
        None if host_part.contains(':') && !host_part.contains('/') => rest.rfind('@')?,
        None => return None,
    };
    let colon = rest[..at].find(':')?;
    Some((rest_start + colon + 1, rest_start + at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_password_only() {
        for (uri, shown) in [
            (
                "mongodb://admin:admin@db:27017/openfaas",
                "mongodb://admin:***@db:27017/openfaas",
            ),
            (
                "mongodb+srv://u:p%40ss@cluster.example/x?w=majority",
                "mongodb+srv://u:***@cluster.example/x?w=majority",
            ),
            ("mongodb://db:27017/", "mongodb://db:27017/"),
            ("mongodb://user@db/", "mongodb://user@db/"),
            ("mongodb://u:p@ss@db/", "mongodb://u:***@db/"),
            ("mongodb://u:p/s@db/", "mongodb://u:***@db/"),
            ("mongodb://u:p?s@db/", "mongodb://u:***@db/"),
            (
                "mongodb://u:pw@a,b:27018/?appName=x@y",
                "mongodb://u:***@a,b:27018/?appName=x@y",
            ),
            (
                "mongodb://db:27017/?appName=x@y",
                "mongodb://db:27017/?appName=x@y",
            ),
            ("not a uri", "not a uri"),
        ] {
            assert_eq!(redact_uri(uri), shown, "{uri}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let options = MongoOptions {
            password: Some("hunter2".into()),
            ..MongoOptions::default()
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
