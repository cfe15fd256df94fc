//! The object store itself: chunk bytes under `<prefix><track id>/<chunk name>`.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use legato_store::{Blobs, Result, StoreError, TrackId};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, PutOptions, PutPayload,
    RetryConfig,
};

use crate::uri::BlobsUri;

/// How long a request to the object store may take before the caller gets `Unavailable`:
/// a player or an upload waits seconds, not the client's default of minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const RETRY_TIMEOUT: Duration = Duration::from_secs(2);

/// Segments never change once written: any cache may keep them for good.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One bucket (and prefix) of an S3-compatible store.
#[derive(Clone, Debug)]
pub struct Bucket {
    s3: Arc<AmazonS3>,
    uri: BlobsUri,
}

/// An object as listed: its track, its chunk name, when it was written.
#[derive(Clone, Debug)]
pub struct Listed {
    pub track: TrackId,
    pub name: String,
    pub modified_ms: i64,
}

impl Bucket {
    /// A client for `uri`; no request is made (an unreachable store is found on first use).
    pub fn new(uri: BlobsUri) -> Result<Self> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&uri.bucket)
            .with_region(&uri.region)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(CONNECT_TIMEOUT)
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_allow_http(true),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_millis(500),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: RETRY_TIMEOUT,
            });
        if let Some(endpoint) = &uri.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let (Some(key), Some(secret)) = (&uri.access_key_id, &uri.secret_access_key) {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        let s3 = builder.build().map_err(|e| {
            StoreError::Invalid(format!(
                "cannot use the object store {}: {e}",
                uri.describe()
            ))
        })?;
        Ok(Self {
            s3: Arc::new(s3),
            uri,
        })
    }

    /// The object key of a chunk, within the bucket.
    fn object_key(&self, id: &TrackId, name: &str) -> String {
        format!("{}{id}/{name}", self.uri.prefix)
    }

    fn path(&self, id: &TrackId, name: &str) -> Path {
        Path::from(self.object_key(id, name))
    }

    /// Every object under the prefix that names a track's chunk (anything else is left
    /// alone: the bucket may hold other things).
    pub async fn list_all(&self) -> Result<Vec<Listed>> {
        let prefix = self.uri.prefix.trim_end_matches('/');
        let prefix = (!prefix.is_empty()).then(|| Path::from(prefix));
        let strip = self.uri.prefix.clone();
        self.s3
            .list(prefix.as_ref())
            .map_err(|e| self.error(e))
            .try_filter_map(|meta| {
                let key = meta.location.as_ref().to_owned();
                let listed = key
                    .strip_prefix(strip.as_str())
                    .and_then(|rest| rest.split_once('/'))
                    .and_then(|(track, name)| {
                        Some(Listed {
                            track: track.parse().ok()?,
                            name: (!name.contains('/')).then(|| name.to_owned())?,
                            modified_ms: meta.last_modified.timestamp_millis(),
                        })
                    });
                std::future::ready(Ok(listed))
            })
            .try_collect()
            .await
    }

    /// A URL that fetches the object under `key` (within the bucket) for `expires`.
    pub async fn presign_key(&self, key: &str, expires: Duration) -> Result<String> {
        self.s3
            .signed_url(http::Method::GET, &Path::from(key), expires)
            .await
            .map(String::from)
            .map_err(|e| self.error(e))
    }

    fn outside(&self, path: &Path, range: &Range<u64>, size: u64) -> StoreError {
        StoreError::Invalid(format!(
            "range {}..{} is outside object {path} ({size} bytes) in {}",
            range.start,
            range.end,
            self.uri.describe()
        ))
    }

    fn error(&self, err: object_store::Error) -> StoreError {
        match err {
            object_store::Error::NotFound { path, .. } => {
                StoreError::NotFound(format!("object {path} in {}", self.uri.describe()))
            }
            other => StoreError::Unavailable(format!(
                "the object store {} failed: {other}",
                self.uri.describe()
            )),
        }
    }
}

#[async_trait]
impl Blobs for Bucket {
    /// Writes a chunk with its media type and an immutable cache policy, so a CDN in front of
    /// the bucket serves it as the streaming function would.
    async fn put(&self, id: &TrackId, name: &str, bytes: Bytes) -> Result<()> {
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            legato_store::content_type(name).into(),
        );
        attributes.insert(Attribute::CacheControl, IMMUTABLE.into());
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        self.s3
            .put_opts(&self.path(id, name), PutPayload::from(bytes), options)
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    async fn get(&self, id: &TrackId, name: &str) -> Result<Bytes> {
        let path = self.path(id, name);
        let result = self.s3.get(&path).await.map_err(|e| self.error(e))?;
        result.bytes().await.map_err(|e| self.error(e))
    }

    async fn get_range(&self, id: &TrackId, name: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(id, name);
        // The size first: a range is clipped to the object's end, as every backend clips it.
        let size = self.s3.head(&path).await.map_err(|e| self.error(e))?.size;
        if range.start > size || range.start > range.end {
            return Err(self.outside(&path, &range, size));
        }
        let end = range.end.min(size);
        if range.start == end {
            return Ok(Bytes::new());
        }
        self.s3
            .get_range(&path, range.start..end)
            .await
            .map_err(|e| self.error(e))
    }

    /// Removes these chunks' objects (an absent one is no error), a thousand per request.
    async fn delete(&self, id: &TrackId, names: &[String]) -> Result<()> {
        let paths = names.iter().map(|name| Ok(self.path(id, name)));
        let mut deleted = self
            .s3
            .delete_stream(futures_util::stream::iter(paths).boxed());
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error(e)),
            }
        }
        Ok(())
    }

    async fn list(&self, id: &TrackId) -> Result<Vec<String>> {
        let prefix = Path::from(format!("{}{id}", self.uri.prefix));
        self.s3
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.filename().unwrap_or_default().to_owned())
            .try_collect()
            .await
            .map_err(|e| self.error(e))
    }

    async fn url(&self, id: &TrackId, name: &str, expires: Duration) -> Result<Option<String>> {
        self.presign_key(&self.object_key(id, name), expires)
            .await
            .map(Some)
    }

    fn key(&self, id: &TrackId, name: &str) -> Option<String> {
        Some(self.object_key(id, name))
    }

    /// A cheap request that fails when the store cannot be reached.
    async fn ping(&self) -> Result<()> {
        let probe = Path::from(format!("{}legato-ping", self.uri.prefix));
        match self.s3.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn describe(&self) -> String {
        self.uri.describe()
    }
}
