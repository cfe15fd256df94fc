//! The MP3 ladder: which rungs to make, at which rate, and what an MP3 source is. The
//! pipeline that makes them (with the fMP4 rungs and the analysis, from one decode) is
//! `renditions`, above this module.

use std::sync::atomic::{AtomicU32, Ordering};

use legato_media::{FrameHeader, MediaError, READ_WINDOW_BYTES, SegmentOptions, package_mp3_read};

use crate::decode::Input;
use crate::encode::{Encoded, LAME_BITRATES};
use crate::{
    LadderOptions, MAX_DURATION_SECONDS, Progress, Rung, SourceFormat, SourceInfo, SpilledRung,
    Stage, TranscodeError,
};

/// The sample rate of every encoded rung.
///
/// An MP3 source keeps its own rate (even MPEG-2/2.5 rates), so that the rungs' frames line
/// up with the original's. Other sources keep 32, 44.1 or 48 kHz, and otherwise go to 48 kHz
/// from a multiple of 8 kHz (8, 16, 24, 96, 192 kHz...) or to 44.1 kHz from anything else
/// (11.025, 22.05, 88.2 kHz, odd rates).
pub(crate) fn output_rate(format: SourceFormat, source_rate: u32) -> u32 {
    match source_rate {
        _ if format == SourceFormat::Mp3 && is_mpeg_rate(source_rate) => source_rate,
        32_000 | 44_100 | 48_000 => source_rate,
        rate if rate % 8_000 == 0 => 48_000,
        _ => 44_100,
    }
}

fn is_mpeg_rate(rate: u32) -> bool {
    matches!(
        rate,
        8_000 | 11_025 | 12_000 | 16_000 | 22_050 | 24_000 | 32_000 | 44_100 | 48_000
    )
}

/// The CBR bitrates LAME allows at an output rate: MPEG-1 (32–48 kHz) 32–320 kbit/s,
/// MPEG-2 (16–24 kHz) 8–160 kbit/s, MPEG-2.5 (8–12 kHz) 8–64 kbit/s (LAME's own table for
/// MPEG-2.5 stops there).
pub(crate) fn bitrate_range(rate: u32) -> (u32, u32) {
    match rate {
        32_000.. => (32, 320),
        16_000.. => (8, 160),
        _ => (8, 64),
    }
}

/// Checks the requested rungs (before any work is done).
pub(crate) fn validate(options: &LadderOptions) -> Result<(), TranscodeError> {
    if options.rungs_kbps.is_empty() {
        return Err(TranscodeError::InvalidOptions(
            "the ladder needs at least one rung".into(),
        ));
    }
    check_bitrates(&options.rungs_kbps)
}

/// Checks that LAME encodes each of these bitrates.
pub(crate) fn check_bitrates(rungs_kbps: &[u32]) -> Result<(), TranscodeError> {
    match rungs_kbps.iter().find(|kbps| !LAME_BITRATES.contains(kbps)) {
        Some(bad) => Err(TranscodeError::InvalidOptions(format!(
            "{bad} kbit/s is not a bitrate LAME encodes; use one of {LAME_BITRATES:?}"
        ))),
        None => Ok(()),
    }
}

/// The bitrates to encode, ascending: the requested ones brought into the range allowed at
/// `rate`, and for an MP3 source only those below its own bitrate (the original is the top
/// rung).
pub(crate) fn plan_bitrates(
    requested: &[u32],
    rate: u32,
    mp3_source_kbps: Option<u32>,
) -> Vec<u32> {
    let (min, max) = bitrate_range(rate);
    let mut bitrates: Vec<u32> = requested
        .iter()
        .map(|&kbps| kbps.clamp(min, max))
        .filter(|&kbps| mp3_source_kbps.is_none_or(|source| kbps < source))
        .collect();
    bitrates.sort_unstable();
    bitrates.dedup();
    bitrates
}

/// An encoded rung, in memory or in a file.
pub(crate) struct EncodedRung {
    name: String,
    bitrate_kbps: u32,
    encoded: Encoded,
}

impl EncodedRung {
    /// A rung as LAME made it, named by the bitrate its first frame says.
    pub fn new(encoded: Encoded) -> Result<Self, TranscodeError> {
        let header = FrameHeader::parse_slice(encoded.head())
            .ok_or_else(|| TranscodeError::Encoder("LAME produced no MP3 frame".into()))?;
        let bitrate_kbps = header.bitrate_kbps();
        Ok(EncodedRung {
            name: format!("{bitrate_kbps}k"),
            bitrate_kbps,
            encoded,
        })
    }

    pub fn bitrate_kbps(&self) -> u32 {
        self.bitrate_kbps
    }

    pub fn into_memory(self) -> Result<Rung, TranscodeError> {
        match self.encoded {
            Encoded::Memory(mp3) => Ok(Rung {
                name: self.name,
                bitrate_kbps: self.bitrate_kbps,
                mp3,
            }),
            Encoded::File { .. } => Err(TranscodeError::Encoder(
                "a rung was written to a file, not kept in memory".into(),
            )),
        }
    }

    pub fn into_file(self) -> Result<SpilledRung, TranscodeError> {
        match self.encoded {
            Encoded::File { file, len, .. } => Ok(SpilledRung {
                name: self.name,
                bitrate_kbps: self.bitrate_kbps,
                file,
                len,
            }),
            Encoded::Memory(_) => Err(TranscodeError::Encoder(
                "a rung was kept in memory, not written to a file".into(),
            )),
        }
    }
}

/// Why an MP3 source could not be scanned: its bytes could not be read, or they are not MP3.
enum ScanError {
    Io(String),
    Media(MediaError),
}

impl From<MediaError> for ScanError {
    fn from(error: MediaError) -> Self {
        ScanError::Media(error)
    }
}

/// An MP3 source as the packager will play it: its frames scanned a window at a time.
pub(crate) fn scan_mp3(input: &Input<'_>) -> Result<SourceInfo, TranscodeError> {
    let len = usize::try_from(input.len())
        .map_err(|_| TranscodeError::Io("the MP3 is too large to scan".into()))?;
    let mut read = |range| {
        input
            .read_range(range)
            .map_err(|e| ScanError::Io(e.to_string()))
    };
    let package = package_mp3_read(
        len,
        READ_WINDOW_BYTES,
        &mut read,
        None,
        &SegmentOptions::default(),
    )
    .map_err(|error| match error {
        ScanError::Io(e) => TranscodeError::Io(e),
        ScanError::Media(error) => match error {
            MediaError::Empty => TranscodeError::Empty,
            MediaError::TooShort => {
                TranscodeError::corrupt(SourceFormat::Mp3, "not one complete audio frame")
            }
            other => TranscodeError::corrupt(SourceFormat::Mp3, other.to_string()),
        },
    })?;
    let info = package.info().clone();
    if info.duration > MAX_DURATION_SECONDS {
        return Err(TranscodeError::TooLong {
            limit_seconds: MAX_DURATION_SECONDS,
        });
    }
    Ok(SourceInfo {
        format: SourceFormat::Mp3,
        codec: "mp3".into(),
        sample_rate: info.sample_rate,
        channels: info.channels,
        bitrate_kbps: Some(info.bitrate_kbps),
        duration: info.duration,
    })
}

/// Calls the progress callback as stages advance, at most once per percent per stage,
/// from whichever thread gets there first.
pub(crate) struct Reporter<'p> {
    callback: &'p (dyn Fn(Progress) + Sync),
    decoded: AtomicU32,
    rungs: Vec<AtomicU32>,
    encoded: AtomicU32,
}

impl<'p> Reporter<'p> {
    pub(crate) fn new(callback: &'p (dyn Fn(Progress) + Sync)) -> Self {
        Reporter {
            callback,
            decoded: AtomicU32::new(0),
            rungs: Vec::new(),
            encoded: AtomicU32::new(0),
        }
    }

    pub(crate) fn with_rungs(self, rungs: usize) -> Self {
        Reporter {
            rungs: (0..rungs).map(|_| AtomicU32::new(0)).collect(),
            ..self
        }
    }

    fn percent(fraction: f32) -> u32 {
        (fraction.clamp(0.0, 1.0) * 100.0) as u32
    }

    fn report(&self, stage: Stage, percent: u32) {
        (self.callback)(Progress {
            stage,
            fraction: percent as f32 / 100.0,
        });
    }

    pub(crate) fn decoded(&self, fraction: f32) {
        let percent = Self::percent(fraction);
        // The first call (0 %) is reported too, as "started".
        let previous = self.decoded.fetch_max(percent + 1, Ordering::Relaxed);
        if percent + 1 > previous {
            self.report(Stage::Decode, percent);
        }
    }

    pub(crate) fn encoded(&self, rung: usize, fraction: f32) {
        if let Some(slot) = self.rungs.get(rung) {
            slot.fetch_max(Self::percent(fraction), Ordering::Relaxed);
        }
        let slowest = self
            .rungs
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .min()
            .unwrap_or(100);
        if slowest > self.encoded.fetch_max(slowest, Ordering::Relaxed) {
            self.report(Stage::Encode, slowest);
        }
    }

    pub(crate) fn encoded_all(&self) {
        if 100 > self.encoded.fetch_max(100, Ordering::Relaxed) {
            self.report(Stage::Encode, 100);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_rates() {
        use SourceFormat::*;
        assert_eq!(output_rate(Wav, 44_100), 44_100);
        assert_eq!(output_rate(Wav, 48_000), 48_000);
        assert_eq!(output_rate(Flac, 32_000), 32_000);
        assert_eq!(output_rate(Wav, 96_000), 48_000);
        assert_eq!(output_rate(Wav, 16_000), 48_000);
        assert_eq!(output_rate(Wav, 8_000), 48_000);
        assert_eq!(output_rate(Wav, 22_050), 44_100);
        assert_eq!(output_rate(Wav, 88_200), 44_100);
        assert_eq!(output_rate(Wav, 37_800), 44_100);
        assert_eq!(output_rate(Mp3, 22_050), 22_050);
        assert_eq!(output_rate(Mp3, 8_000), 8_000);
    }

    #[test]
    fn bitrates_are_capped_and_cut_below_an_mp3_original() {
        let default = [64, 128, 192];
        assert_eq!(plan_bitrates(&default, 44_100, None), vec![64, 128, 192]);
        assert_eq!(plan_bitrates(&[192, 64, 64], 48_000, None), vec![64, 192]);
        assert_eq!(plan_bitrates(&default, 44_100, Some(192)), vec![64, 128]);
        assert_eq!(plan_bitrates(&default, 44_100, Some(128)), vec![64]);
        assert_eq!(plan_bitrates(&default, 44_100, Some(64)), Vec::<u32>::new());
        assert_eq!(plan_bitrates(&default, 22_050, None), vec![64, 128, 160]);
        assert_eq!(plan_bitrates(&default, 22_050, Some(160)), vec![64, 128]);
        assert_eq!(plan_bitrates(&[8, 16], 44_100, None), vec![32]);
        assert_eq!(plan_bitrates(&default, 11_025, None), vec![64]);
        assert_eq!(plan_bitrates(&[32, 64, 128], 8_000, Some(64)), vec![32]);
    }

    #[test]
    fn options_are_checked() {
        let ok = LadderOptions::default();
        assert!(validate(&ok).is_ok());
        let empty = LadderOptions { rungs_kbps: vec![] };
        assert_eq!(
            validate(&empty).map_err(|e| e.code()),
            Err("invalid-options")
        );
        let odd = LadderOptions {
            rungs_kbps: vec![100],
        };
        assert_eq!(validate(&odd).map_err(|e| e.code()), Err("invalid-options"));
    }
}
