//! Integration tests of legato-transcode, one binary: inputs are made with ffmpeg at test
//! time (a few seconds each) and every rung is decoded by ffmpeg, independently of the
//! decoder we use, and cut by the packager.

// Every module is `#[cfg(test)]` so that clippy's `allow-unwrap-in-tests` (clippy.toml)
// covers the helpers of this crate too, not only its `#[test]` functions.
#[cfg(test)]
mod analysis;
#[cfg(test)]
mod errors;
#[cfg(test)]
mod fmp4;
#[cfg(test)]
mod formats;
#[cfg(test)]
mod from_file;
#[cfg(test)]
mod hostile;
#[cfg(test)]
mod mp3_sources;
#[cfg(test)]
mod opus;
#[cfg(test)]
mod progress;
#[cfg(test)]
mod renditions;
#[cfg(test)]
mod tags;
#[cfg(test)]
mod util;
