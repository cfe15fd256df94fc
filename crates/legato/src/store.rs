//! The one place that names concrete backends: the store URI picks one at start-up.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use legato_store::DynStore;
use legato_store_sqlite::SqliteStore;

use crate::settings::{BlobsArgs, SettingResult, StoreArgs};

pub async fn open(args: &StoreArgs) -> anyhow::Result<DynStore> {
    let metadata = open_metadata(args).await?;
    match &args.blobs.blobs {
        Some(uri) if !uri.trim().is_empty() => with_object_store(metadata, &args.blobs),
        _ => Ok(metadata),
    }
}

/// `legato migrate`: the store's chunk bytes into the object store of `--blobs`.
pub async fn migrate(args: &StoreArgs) -> anyhow::Result<std::process::ExitCode> {
    if args
        .blobs
        .blobs
        .as_deref()
        .is_none_or(|b| b.trim().is_empty())
    {
        return Err(anyhow::anyhow!(
            "legato migrate needs --blobs s3://bucket/prefix?endpoint=… (LEGATO_BLOBS): where to move the segments"
        ))
        .setting();
    }
    let metadata = open_metadata(args).await?;
    let store = object_chunks(metadata, &args.blobs)?;
    eprintln!(
        "moving the segments of {} ...",
        legato_store::Store::describe(&*store)
    );
    let moved = store
        .migrate(|m| {
            if m.tracks % 100 == 0 {
                eprintln!(
                    "  {} tracks, {} chunks moved ({} MB)",
                    m.tracks,
                    m.chunks,
                    m.bytes >> 20
                );
            }
        })
        .await?;
    println!(
        "migrated: {} tracks, {} chunks moved ({} MB), {} already in the object store",
        moved.tracks,
        moved.chunks,
        moved.bytes >> 20,
        moved.already
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// The metadata store with its chunk bytes (but playlists) in an object store.
fn with_object_store(metadata: DynStore, args: &BlobsArgs) -> anyhow::Result<DynStore> {
    let store: DynStore = object_chunks(metadata, args)?;
    tracing::info!(store = %store.describe(), "segments are kept in the object store");
    Ok(store)
}

fn object_chunks(
    metadata: DynStore,
    args: &BlobsArgs,
) -> anyhow::Result<Arc<legato_store_s3::ObjectChunks>> {
    use legato_store_s3::{BlobsUri, Bucket, ObjectChunks, ObjectOptions};
    let uri = args.blobs.as_deref().unwrap_or_default();
    let mut parsed = BlobsUri::parse(uri)
        .map_err(anyhow::Error::from)
        .setting()?;
    if let (Some(access), Some(secret)) = (&args.blobs_access_key_file, &args.blobs_secret_key_file)
    {
        parsed = parsed
            .with_credential_files(access, secret)
            .context("cannot read the object store's credentials")
            .setting()?;
    }
    let bucket = Bucket::new(parsed)?;
    let options = ObjectOptions {
        gc_grace: Duration::from_secs(args.blobs_gc_grace_seconds),
        gc_every: Some(Duration::from_secs(args.blobs_gc_every_seconds)),
    };
    Ok(ObjectChunks::new(metadata, bucket, options))
}

async fn open_metadata(args: &StoreArgs) -> anyhow::Result<DynStore> {
    match args.store.as_deref().map(str::trim) {
        None | Some("") => {
            let store = SqliteStore::open_dir(&args.data)
                .with_context(|| format!("cannot open the store in {}", args.data.display()))
                .setting()?;
            Ok(Arc::new(store))
        }
        Some(uri) if uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://") => {
            open_mongodb(uri, args).await
        }
        Some(uri) => open_sqlite(uri),
    }
}

fn open_sqlite(uri: &str) -> anyhow::Result<DynStore> {
    let path = uri
        .strip_prefix("sqlite://")
        .or_else(|| uri.strip_prefix("sqlite:"))
        .unwrap_or(uri);
    if path.contains("://") {
        let scheme = path.split("://").next().unwrap_or_default();
        return Err(anyhow::anyhow!(
            "unsupported store scheme '{scheme}': use mongodb://…, a SQLite path or sqlite:PATH"
        ))
        .setting();
    }
    let store = SqliteStore::open_file(Path::new(path))
        .with_context(|| format!("cannot open the SQLite store {path}"))
        .setting()?;
    Ok(Arc::new(store))
}

#[cfg(feature = "mongodb")]
async fn open_mongodb(uri: &str, args: &StoreArgs) -> anyhow::Result<DynStore> {
    use legato_store_mongo::{MongoOptions, MongoStore, redact_uri};
    let mut options = MongoOptions::default();
    if let Some(file) = &args.store_password_file {
        options = options
            .with_password_file(file)
            .with_context(|| format!("cannot read the store password from {}", file.display()))
            .setting()?;
    }
    let store = MongoStore::connect(uri, options)
        .await
        .with_context(|| format!("cannot open the MongoDB store {}", redact_uri(uri)))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "mongodb"))]
async fn open_mongodb(_uri: &str, _args: &StoreArgs) -> anyhow::Result<DynStore> {
    anyhow::bail!("this legato was built without the `mongodb` feature")
}
