//! The one place that names concrete backends: the store URI picks one at start-up.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use legato_store::{Catalog, DynStore, Store};
use legato_store_sqlite::SqliteStore;

use crate::settings::{BlobsArgs, SettingResult, StoreArgs};

/// The catalog of `--store`, with its chunk bytes in its own rows, or in the object store of
/// `--blobs` (whose sweep of orphaned objects starts here).
pub async fn open(args: &StoreArgs) -> anyhow::Result<DynStore> {
    let local = open_local(args).await?;
    match &args.blobs.blobs {
        Some(uri) if !uri.trim().is_empty() => {
            let store = with_object_store(local.catalog().clone(), &args.blobs, true)?;
            tracing::info!(store = %store.describe(), "segments are kept in the object store");
            Ok(store)
        }
        _ => Ok(local),
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
    let local = open_local(args).await?;
    let store = with_object_store(local.catalog().clone(), &args.blobs, false)?;
    eprintln!("moving the segments of {} ...", store.describe());
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

/// The catalog with its chunk bytes (but playlists) in the object store of `args`; the
/// sweep of objects no row names runs when `sweep`.
fn with_object_store(
    catalog: Arc<dyn Catalog>,
    args: &BlobsArgs,
    sweep: bool,
) -> anyhow::Result<DynStore> {
    use legato_store_s3::{BlobsUri, Bucket, SweepOptions, spawn_sweep};
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
    if sweep {
        let options = SweepOptions {
            grace: Duration::from_secs(args.blobs_gc_grace_seconds),
            every: Some(Duration::from_secs(args.blobs_gc_every_seconds)),
        };
        spawn_sweep(&catalog, bucket.clone(), options);
    }
    Ok(Store::with_objects(catalog, Arc::new(bucket)))
}

async fn open_local(args: &StoreArgs) -> anyhow::Result<DynStore> {
    match args.store.as_deref().map(str::trim) {
        None | Some("") => {
            let store = SqliteStore::open_dir(&args.data)
                .with_context(|| format!("cannot open the store in {}", args.data.display()))
                .setting()?;
            Ok(Store::local(Arc::new(store)))
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
    Ok(Store::local(Arc::new(store)))
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
    Ok(Store::local(Arc::new(store)))
}

#[cfg(not(feature = "mongodb"))]
async fn open_mongodb(_uri: &str, _args: &StoreArgs) -> anyhow::Result<DynStore> {
    anyhow::bail!("this legato was built without the `mongodb` feature")
}
