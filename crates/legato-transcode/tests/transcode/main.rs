//! Integration tests of legato-transcode, one binary: inputs are made with ffmpeg at test
//! time (a few seconds each) and every rung is decoded by ffmpeg, independently of the
//! decoder we use, and cut by the packager.
#![allow(
    clippy::unwrap_used,
    reason = "in tests a failed unwrap is a failed test"
)]

mod analysis;
mod errors;
mod fmp4;
mod formats;
mod from_file;
mod hostile;
mod mp3_sources;
mod progress;
mod tags;
mod util;
