//! MP3 to HLS, without re-encoding: the MPEG audio frames of an upload are cut into
//! MPEG-TS segments bit for bit, and a VOD media playlist lists them.
//!
//! ```text
//! bytes ──scan──▶ frames ──plan──▶ segments ──mux (lazily, one at a time)──▶ .ts files
//!                                       └────────playlist────────▶ .m3u8
//! ```
//!
//! [`package_mp3`] scans and plans; the [`Package`] it returns holds positions, not bytes,
//! and muxes on demand ([`Package::into_segments`], [`Package::segment_ts`]). Everything
//! here is pure: no I/O, no async, no threads, no panics on any input, and no allocation
//! sized by a field read from the file.
//!
//! # Design choices
//!
//! * **Several frames per PES.** Each PES costs a 14-byte header, an 8-byte PCR adaptation
//!   field and, on average, half a TS packet of stuffing at its end. One 417-byte frame (128
//!   kbit/s) per PES would take three packets, 564 bytes: 35 % overhead. About a second of
//!   audio per PES (at most 32 KiB, never across a segment) leaves little more than the
//!   4-byte header of each 188-byte packet: about 3.3 % in all at 128 kbit/s. HLS players
//!   fetch and demux whole segments, so a large PES is no buffering problem in practice.
//! * **Timestamps from sample counts.** A PTS is computed from the number of samples since
//!   the start of the run of frames, converted to the 90 kHz clock in one division, never by
//!   adding up rounded per-frame durations. Timestamps are therefore exact to a tick, with no
//!   drift, and continue seamlessly from one segment to the next; playlist durations are
//!   likewise whole sample counts over the sample rate.
//! * **Continuity counters continue across segments.** Players append segments to one
//!   demuxer; a counter restarting at 0 in each segment looks like lost packets to a strict
//!   one. The muxer therefore keeps its PAT, PMT and audio counters over the whole track, and
//!   [`Package::segment_ts`] recomputes them (cheaply, without muxing) when a single segment
//!   is made on its own.
//! * **Each segment starts with a PAT and a PMT** and a PES carrying a PCR and the random
//!   access indicator, so every segment can be decoded on its own (seeking).
//! * **Format changes are discontinuities.** If the sample rate, channel count, MPEG version
//!   or layer changes, a new segment starts with `#EXT-X-DISCONTINUITY`; the timeline stays
//!   continuous.
//!
//! The lower-level modules are public for tests, fuzzing and other producers of segments:
//! [`mpeg`] (frame headers), [`tags`] (ID3/APE/Lyrics3), [`scan`] (frames of a file),
//! [`segment`] (the planner), [`ts`] (the MPEG-TS muxer) and [`playlist`].

pub mod cmaf_plan;
mod error;
pub mod flac;
pub mod fmp4;
pub mod mpeg;
pub mod original;
mod package;
pub mod playlist;
pub mod scan;
pub mod segment;
pub mod tags;
pub mod ts;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;

pub use error::MediaError;
pub use mpeg::{ChannelMode, FrameHeader, Layer, MpegVersion};
pub use package::{
    FIRST_PTS, Package, READ_WINDOW_BYTES, ReadSegments, SegmentOptions, Segments, StreamInfo,
    package_mp3, package_mp3_like, package_mp3_read,
};
pub use playlist::{CODECS_AAC_LC, CODECS_FLAC, CODECS_MP3, VariantEntry, master_playlist};

/// The file name of segment `index`: "seg000.ts", "seg001.ts", … ("seg1000.ts" past 999).
pub fn segment_name(index: usize) -> String {
    format!("seg{index:03}.ts")
}
