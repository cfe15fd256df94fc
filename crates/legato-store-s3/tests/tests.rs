//! The object store against a real SeaweedFS (S3 gateway), beside real SQLite and a real
//! MongoDB-protocol server (FerretDB). `scripts/test.sh` starts both and sets
//! `LEGATO_TEST_BLOBS`, `LEGATO_TEST_BLOBS_KEYS` and `LEGATO_TEST_MONGODB_URI`.
#![allow(clippy::unwrap_used)]

mod behaviour;
mod conformance;
mod fault;
mod util;
