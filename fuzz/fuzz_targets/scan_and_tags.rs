//! The tag finders and the frame scanner on any bytes. Beyond "no panic": every tag length is
//! within the data and not zero (`audio_range` loops on them), and a scan's frames lie within
//! the audio range, in increasing order, without overlapping, and together with the skipped
//! bytes and the info frame account for every byte of the audio range.

#![no_main]

use legato_media::MediaError;
use legato_media::mpeg::FrameHeader;
use legato_media::scan::{self, scan_mp3};
use legato_media::tags;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_tags(data);
    check_scan(data);
});

/// A function of `tags` that finds one kind of tag at a fixed place.
type TagFinder = fn(&[u8]) -> Option<usize>;

fn check_tags(data: &[u8]) {
    let finders: [(&str, TagFinder); 6] = [
        ("id3v2_len", tags::id3v2_len),
        ("id3v2_len_at_end", tags::id3v2_len_at_end),
        ("id3v1_len", tags::id3v1_len),
        ("ape_len_at_start", tags::ape_len_at_start),
        ("ape_len_at_end", tags::ape_len_at_end),
        ("lyrics3_len", tags::lyrics3_len),
    ];
    for (name, finder) in finders {
        if let Some(len) = finder(data) {
            assert!(
                len > 0 && len <= data.len(),
                "{name}: {len} of {}",
                data.len()
            );
        }
    }
    for (kind, len) in [tags::leading_tag(data), tags::trailing_tag(data)]
        .into_iter()
        .flatten()
    {
        assert!(
            len > 0 && len <= data.len(),
            "{kind:?}: {len} of {}",
            data.len()
        );
    }
    let range = tags::audio_range(data);
    assert!(
        range.start <= range.end && range.end <= data.len(),
        "{range:?}"
    );
    // The Xing/Info/VBRI probe reads at fixed offsets: any header over any bytes.
    if let Some(header) = FrameHeader::parse_slice(data) {
        let _ = scan::is_info_frame(data, &header);
    }
}

fn check_scan(data: &[u8]) {
    let scan = match scan_mp3(data) {
        Ok(scan) => scan,
        Err(error) => {
            assert!(
                matches!(
                    error,
                    MediaError::Empty | MediaError::TooShort | MediaError::NotMpegAudio
                ),
                "{error:?}"
            );
            assert_eq!(error == MediaError::Empty, data.is_empty());
            return;
        }
    };
    assert_eq!(scan.audio_range, tags::audio_range(data));
    assert!(!scan.frames.is_empty());

    let audio = scan.audio_range.clone();
    let mut covered = scan.skipped_bytes;
    let mut previous_end = audio.start;
    for frame in scan.info_frame.iter().chain(&scan.frames) {
        assert_eq!(frame.len, frame.header.frame_len());
        assert!(
            frame.offset >= previous_end,
            "frame at {} overlaps or precedes the one ending at {previous_end}",
            frame.offset
        );
        let end = frame.range().end;
        assert!(
            end <= audio.end,
            "frame {:?} past the audio {audio:?}",
            frame.range()
        );
        let bytes = frame.bytes(data).expect("a frame lies within the input");
        assert_eq!(FrameHeader::parse_slice(bytes), Some(frame.header));
        previous_end = end;
        covered += frame.len;
    }
    assert_eq!(
        covered,
        audio.len(),
        "frames + skipped bytes != audio range"
    );

    if let Some(info) = scan.info_frame {
        let bytes = info.bytes(data).unwrap_or_default();
        assert!(scan::is_info_frame(bytes, &info.header));
    }
}
