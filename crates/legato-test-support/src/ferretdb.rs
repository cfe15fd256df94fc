//! FerretDB, a MongoDB-protocol server on SQLite, as the tests use it: the shared one that
//! `make test` starts and names in `LEGATO_TEST_MONGODB_URI` (a fresh database in it per
//! test), and instances of a test's own, stopped and started again to play an outage.
//! Both through `scripts/ferretdb.sh`, which installs FerretDB into `$LEGATO_TOOLS`.

use tempfile::TempDir;

/// The variable naming the shared server.
pub const URI_VAR: &str = "LEGATO_TEST_MONGODB_URI";

/// The shared server's URI; fails (never skips) with how to start one when it is unset.
pub fn shared_uri() -> String {
    match std::env::var(URI_VAR) {
        Ok(uri) if !uri.trim().is_empty() => uri,
        _ => panic!(
            "{URI_VAR} is not set: these tests need a MongoDB-protocol server. Start one with \
             `scripts/ferretdb.sh start 27017 /tmp/legato-ferretdb` (it prints the URI) and \
             export `{URI_VAR}=mongodb://127.0.0.1:27017/` (make test does both)"
        ),
    }
}

/// A database name no other test (or earlier run) uses: `<prefix>_<pid>_<n>_<nanos>`.
pub fn unique_database(prefix: &str) -> String {
    crate::scripts::unique(prefix, '_')
}

/// `uri` with `database` in its path, before any query.
pub fn with_database(uri: &str, database: &str) -> String {
    let base = uri.trim_end_matches('/');
    match base.split_once('?') {
        Some((hosts, query)) => format!("{}/{database}?{query}", hosts.trim_end_matches('/')),
        None => format!("{base}/{database}"),
    }
}

/// A fresh database on the shared server, as a URI with the database in its path (what
/// `--store` and `LEGATO_STORE` take).
pub fn fresh_database_uri(prefix: &str) -> String {
    with_database(&shared_uri(), &unique_database(prefix))
}

/// A FerretDB of the test's own, on its own port and data folder; stopped when dropped,
/// a failing test included.
pub struct FerretDb {
    port: u16,
    dir: TempDir,
    uri: String,
}

impl FerretDb {
    /// Starts one on a free port and waits until it accepts connections.
    pub fn start_new() -> Self {
        let port: u16 = crate::scripts::run("ferretdb.sh", &["free-port"])
            .parse()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let uri = crate::scripts::run(
            "ferretdb.sh",
            &[
                "start",
                &port.to_string(),
                &dir.path().display().to_string(),
            ],
        );
        Self { port, dir, uri }
    }

    /// `mongodb://127.0.0.1:<port>/`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Its URI with `database` in the path.
    pub fn database_uri(&self, database: &str) -> String {
        with_database(&self.uri, database)
    }

    /// Stops it (SIGTERM, waiting until it is gone).
    pub fn stop(&self) {
        crate::scripts::run(
            "ferretdb.sh",
            &["stop", &self.dir.path().display().to_string()],
        );
    }

    /// Starts it again on the same port and data folder, and waits until it accepts
    /// connections.
    pub fn start(&self) {
        let uri = crate::scripts::run(
            "ferretdb.sh",
            &[
                "start",
                &self.port.to_string(),
                &self.dir.path().display().to_string(),
            ],
        );
        assert_eq!(uri, self.uri);
    }
}

impl Drop for FerretDb {
    fn drop(&mut self) {
        crate::scripts::stop_quietly("ferretdb.sh", self.dir.path());
    }
}
