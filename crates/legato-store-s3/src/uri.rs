//! `--blobs s3://bucket/prefix?endpoint=…&region=…`: where the chunk bytes go.

use legato_store::StoreError;

/// An object store location and how to reach it. Credentials are not part of the URI (it
/// is logged and shown); they come from secret files, or the usual `AWS_*` variables.
#[derive(Clone, PartialEq, Eq)]
pub struct BlobsUri {
    pub bucket: String,
    /// Key prefix, empty or ending with `/`.
    pub prefix: String,
    /// An S3-compatible server (SeaweedFS, MinIO, …): path-style requests to it.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for BlobsUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl BlobsUri {
    /// Parses `s3://bucket[/prefix][?endpoint=URL&region=NAME]`; `Invalid` with what is wrong.
    pub fn parse(uri: &str) -> Result<Self, StoreError> {
        let invalid = |why: &str| {
            StoreError::Invalid(format!(
                "{why} in the object store URI '{uri}': use s3://bucket/prefix?endpoint=http://host:8333&region=us-east-1"
            ))
        };
        let rest = uri
            .trim()
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("no s3:// scheme"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(invalid(
                "a bucket name that S3 refuses (3-63 of a-z 0-9 . -)",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..") {
            return Err(invalid("'.' or '..' in the prefix"));
        }
        let mut parsed = Self {
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            endpoint: None,
            region: "us-east-1".to_owned(),
            access_key_id: None,
            secret_access_key: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| invalid("a parameter that is not UTF-8"))?
                .into_owned();
            match key {
                "endpoint" if value.starts_with("http://") || value.starts_with("https://") => {
                    parsed.endpoint = Some(value.trim_end_matches('/').to_owned());
                }
                "endpoint" => return Err(invalid("an endpoint that is not an http(s) URL")),
                "region" if !value.is_empty() => parsed.region = value,
                other => return Err(invalid(&format!("an unknown parameter '{other}'"))),
            }
        }
        Ok(parsed)
    }

    /// Credentials read from two secret files (OpenFaaS secrets, Kubernetes secrets);
    /// surrounding whitespace is dropped.
    pub fn with_credential_files(
        mut self,
        access_key_file: &std::path::Path,
        secret_key_file: &std::path::Path,
    ) -> std::io::Result<Self> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).map(|text| text.trim().to_owned())
        };
        self.access_key_id = Some(read(access_key_file)?);
        self.secret_access_key = Some(read(secret_key_file)?);
        Ok(self)
    }

    /// The URI as given, without credentials.
    pub fn describe(&self) -> String {
        let mut shown = format!("s3://{}/{}", self.bucket, self.prefix);
        if let Some(endpoint) = &self.endpoint {
            shown.push_str(&format!("?endpoint={endpoint}&region={}", self.region));
        }
        shown
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::*;

    #[test]
    fn parses_bucket_prefix_endpoint_and_region() {
        let uri = BlobsUri::parse(
            "s3://music/legato/v1/?endpoint=http%3A%2F%2F127.0.0.1%3A8333&region=eu-west-1",
        )
        .unwrap();
        assert_eq!(uri.bucket, "music");
        assert_eq!(uri.prefix, "legato/v1/");
        assert_eq!(uri.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(uri.region, "eu-west-1");
        let bare = BlobsUri::parse("s3://music").unwrap();
        assert_eq!((bare.prefix.as_str(), bare.endpoint), ("", None));
        assert_eq!(bare.region, "us-east-1");
    }

    #[test]
    fn refuses_what_s3_would_and_says_how_to_write_it() {
        for bad in [
            "music",
            "s3://Music",
            "s3://ab",
            "s3://music/../x",
            "s3://music?endpoint=ftp://x",
            "s3://music?bucket=x",
        ] {
            let err = BlobsUri::parse(bad).unwrap_err().to_string();
            assert!(err.contains("s3://bucket/prefix"), "{bad}: {err}");
        }
    }

    #[test]
    fn credentials_are_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let (a, s) = (dir.path().join("a"), dir.path().join("s"));
        std::fs::write(&a, "AKIDEXAMPLE\n").unwrap();
        std::fs::write(&s, "very-secret\n").unwrap();
        let uri = BlobsUri::parse("s3://music?endpoint=http://h:1")
            .unwrap()
            .with_credential_files(&a, &s)
            .unwrap();
        assert_eq!(uri.access_key_id.as_deref(), Some("AKIDEXAMPLE"));
        assert!(!format!("{uri:?} {}", uri.describe()).contains("very-secret"));
    }
}
