//! SeaweedFS, an object store with an S3 gateway, as the tests use it: the shared one that
//! `make test` starts (`LEGATO_TEST_BLOBS` names its bucket and endpoint,
//! `LEGATO_TEST_BLOBS_KEYS` the folder of its `access_key` and `secret_key`), under a key
//! prefix of each test's own, and instances of a test's own, stopped and started again to
//! play an outage. Both through `scripts/seaweedfs.sh`, which installs SeaweedFS into
//! `$LEGATO_TOOLS`.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// The variable naming the shared bucket: `s3://<bucket>?endpoint=http://127.0.0.1:<port>`.
pub const BLOBS_VAR: &str = "LEGATO_TEST_BLOBS";
/// The variable naming the folder of the shared server's `access_key` and `secret_key`.
pub const KEYS_VAR: &str = "LEGATO_TEST_BLOBS_KEYS";

fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{name} is not set: these tests need an S3 server. Start one with \
             `scripts/seaweedfs.sh start /tmp/legato-s3 legato-test` (it prints the endpoint) \
             and export `{BLOBS_VAR}='s3://legato-test?endpoint=http://127.0.0.1:PORT' \
             {KEYS_VAR}=/tmp/legato-s3` (make test does both)"
        ),
    }
}

/// The shared bucket's URI (`LEGATO_TEST_BLOBS`); fails (never skips) when it is unset.
pub fn shared_blobs() -> String {
    var(BLOBS_VAR)
}

/// The folder of the shared server's `access_key` and `secret_key`.
pub fn shared_keys() -> PathBuf {
    PathBuf::from(var(KEYS_VAR))
}

/// A key prefix no other test (or earlier run) uses: `<purpose>-<pid>-<n>-<nanos>`.
pub fn unique_prefix(purpose: &str) -> String {
    crate::scripts::unique(purpose, '-')
}

/// `base` (`s3://bucket[/prefix]?query`) with `prefix` as (the end of) its key prefix.
pub fn with_prefix(base: &str, prefix: &str) -> String {
    let (head, query) = base.split_once('?').unwrap_or((base, ""));
    format!("{}/{prefix}?{query}", head.trim_end_matches('/'))
}

/// The shared bucket under a fresh prefix for `purpose`, as `--blobs` takes it.
pub fn fresh_blobs_uri(purpose: &str) -> String {
    with_prefix(&shared_blobs(), &unique_prefix(purpose))
}

/// A SeaweedFS of the test's own with one bucket, its data and keys in a folder of its own;
/// stopped when dropped, a failing test included.
pub struct SeaweedFs {
    dir: TempDir,
    bucket: String,
    endpoint: String,
}

impl SeaweedFs {
    /// Starts one with `bucket` on free ports and waits until its S3 gateway answers.
    pub fn start_new(bucket: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = crate::scripts::run(
            "seaweedfs.sh",
            &["start", &dir.path().display().to_string(), bucket],
        );
        Self {
            dir,
            bucket: bucket.to_owned(),
            endpoint,
        }
    }

    /// `http://127.0.0.1:<port>`, the same across restarts.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `s3://<bucket>/<prefix>?endpoint=…`, as `--blobs` takes it.
    pub fn blobs_uri(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}?endpoint={}", self.bucket, self.endpoint)
    }

    pub fn access_key_file(&self) -> PathBuf {
        self.dir.path().join("access_key")
    }

    pub fn secret_key_file(&self) -> PathBuf {
        self.dir.path().join("secret_key")
    }

    /// The folder of its keys (and data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops it (SIGTERM, waiting until it is gone).
    pub fn stop(&self) {
        crate::scripts::run(
            "seaweedfs.sh",
            &["stop", &self.dir.path().display().to_string()],
        );
    }

    /// Starts it again on the same ports and data, and waits until its S3 gateway answers.
    pub fn start(&self) {
        let endpoint = crate::scripts::run(
            "seaweedfs.sh",
            &[
                "start",
                &self.dir.path().display().to_string(),
                &self.bucket,
            ],
        );
        assert_eq!(endpoint, self.endpoint);
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        crate::scripts::stop_quietly("seaweedfs.sh", self.dir.path());
    }
}
