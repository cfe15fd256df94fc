//! HLS media playlists, written with m3u8-rs.
//!
//! Two things m3u8-rs does its own way, and what is done about them:
//!
//! * It leaves `#EXT-X-MEDIA-SEQUENCE` out when the sequence is 0 (which the spec allows:
//!   absent means 0). Some validators and older players want it spelled out, so it is added
//!   as a tag of the first segment, which m3u8-rs writes before that segment's `#EXTINF`, i.e.
//!   still before the first media segment as RFC 8216 §4.3.3.2 requires.
//! * `#EXTINF` durations are `f32`, printed in their shortest round-trip form (e.g.
//!   `9.978776`). For segments under 16 s an `f32` is within 0.5 µs of the exact duration,
//!   well under one 90 kHz tick (11 µs), so nothing is lost that a player could notice and no
//!   rewriting is done. The alternative, `m3u8_rs::WRITE_OPT_FLOAT_PRECISION`, is a
//!   process-wide setting that would change every other playlist written in the process.

use m3u8_rs::{ExtTag, MediaPlaylist, MediaPlaylistType, MediaSegment};

/// The HLS protocol version: 3 allows decimal `#EXTINF` durations.
const HLS_VERSION: usize = 3;
/// The version that allows `#EXT-X-MAP` in a playlist without I-frames only (RFC 8216 §7):
/// what fragmented MP4 segments need.
pub const FMP4_HLS_VERSION: usize = 7;

/// What the playlist needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlaylistEntry {
    /// Exact duration in seconds.
    pub duration: f64,
    /// Whether an `#EXT-X-DISCONTINUITY` goes before the segment.
    pub discontinuity: bool,
    /// The bytes of audio (MP3 frames) the segment carries, for an MPEG-TS rendition: written
    /// as [`AUDIO_BYTES_TAG`] so that a server cutting the rendition into one file (Subsonic
    /// `stream`, ranges) knows every offset from the playlist alone. Players ignore the tag
    /// (RFC 8216 §6.3.1: unknown tags are ignored).
    pub audio_bytes: Option<u64>,
}

/// The tag, before a segment's `#EXTINF`, giving the bytes of audio it carries.
pub const AUDIO_BYTES_TAG: &str = "X-LEGATO-AUDIO-BYTES";

/// The audio bytes of each segment of a media playlist, in order, when every segment has its
/// [`AUDIO_BYTES_TAG`] (playlists written before it have none).
pub fn audio_bytes_of(playlist: &m3u8_rs::MediaPlaylist) -> Option<Vec<u64>> {
    playlist
        .segments
        .iter()
        .map(|segment| {
            segment
                .unknown_tags
                .iter()
                .find(|tag| tag.tag == AUDIO_BYTES_TAG)
                .and_then(|tag| tag.rest.as_deref()?.trim().parse().ok())
        })
        .collect()
}

/// `#EXT-X-TARGETDURATION`: the longest segment, rounded up to whole seconds.
pub fn target_duration(entries: &[PlaylistEntry]) -> u64 {
    let longest = entries
        .iter()
        .map(|entry| entry.duration)
        .filter(|duration| duration.is_finite())
        .fold(0.0, f64::max);
    // Saturating float-to-int conversion; a duration is never near u64::MAX seconds.
    (longest.ceil() as u64).max(1)
}

/// Writes a complete VOD media playlist; `segment_uri(i)` names segment `i`.
pub fn media_playlist(entries: &[PlaylistEntry], segment_uri: &dyn Fn(usize) -> String) -> String {
    write_media_playlist(entries, None, segment_uri)
}

/// Writes a complete VOD media playlist of fragmented MP4 segments: `#EXT-X-VERSION:7`,
/// `#EXT-X-INDEPENDENT-SEGMENTS` (every segment starts with a frame that decodes on its own)
/// and `#EXT-X-MAP` naming the init segment `init_uri` before the first segment.
pub fn fmp4_media_playlist(
    entries: &[PlaylistEntry],
    init_uri: &str,
    segment_uri: &dyn Fn(usize) -> String,
) -> String {
    write_media_playlist(entries, Some(init_uri), segment_uri)
}

fn write_media_playlist(
    entries: &[PlaylistEntry],
    init_uri: Option<&str>,
    segment_uri: &dyn Fn(usize) -> String,
) -> String {
    let segments = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| MediaSegment {
            uri: segment_uri(index),
            duration: entry.duration as f32,
            discontinuity: entry.discontinuity,
            map: init_uri.filter(|_| index == 0).map(|uri| m3u8_rs::Map {
                uri: uri.to_owned(),
                ..m3u8_rs::Map::default()
            }),
            unknown_tags: (index == 0)
                .then(|| ExtTag {
                    tag: "X-MEDIA-SEQUENCE".to_owned(),
                    rest: Some("0".to_owned()),
                })
                .into_iter()
                .chain(entry.audio_bytes.map(|bytes| ExtTag {
                    tag: AUDIO_BYTES_TAG.to_owned(),
                    rest: Some(bytes.to_string()),
                }))
                .collect(),
            ..MediaSegment::default()
        })
        .collect();
    let playlist = MediaPlaylist {
        version: Some(if init_uri.is_some() {
            FMP4_HLS_VERSION
        } else {
            HLS_VERSION
        }),
        independent_segments: init_uri.is_some(),
        target_duration: target_duration(entries),
        media_sequence: 0,
        segments,
        end_list: true,
        playlist_type: Some(MediaPlaylistType::Vod),
        ..MediaPlaylist::default()
    };
    let mut text = Vec::new();
    // Writing into a Vec<u8> cannot fail.
    if playlist.write_to(&mut text).is_err() {
        text.clear();
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Rewrites every URI of a playlist with `map`, leaving everything else as it is: the URI
/// lines (segments, variant playlists) and the `URI="…"` attribute of `#EXT-X-MAP` (an fMP4
/// rendition's init segment), which a player fetches like a segment. Used to carry a signed
/// URL's token on, and to point segments at a CDN.
pub fn map_uris(playlist: &str, map: &dyn Fn(&str) -> String) -> String {
    const MAP_URI: &str = "#EXT-X-MAP:URI=\"";
    let mut out = String::with_capacity(playlist.len() + 64 * playlist.lines().count());
    for line in playlist.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix(MAP_URI)
            && let Some(end) = rest.find('"')
        {
            out.push_str(MAP_URI);
            out.push_str(&map(&rest[..end]));
            out.push_str(&rest[end..]);
        } else if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(line);
        } else {
            out.push_str(&map(trimmed));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "in tests a failed unwrap is a failed test"
    )]

    use super::*;

    #[test]
    fn map_uris_rewrites_segments_variants_and_init_segments_only() {
        let playlist = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"aac128k-init.mp4\"\n\
                        #EXTINF:9.98,\naac128k-000.m4s\n\n#EXT-X-ENDLIST\n";
        let mapped = map_uris(playlist, &|uri| format!("https://cdn.example/{uri}?t=1"));
        assert_eq!(
            mapped,
            "#EXTM3U\n#EXT-X-VERSION:7\n\
             #EXT-X-MAP:URI=\"https://cdn.example/aac128k-init.mp4?t=1\"\n\
             #EXTINF:9.98,\nhttps://cdn.example/aac128k-000.m4s?t=1\n\n#EXT-X-ENDLIST\n"
        );
        let master = master_playlist(&[VariantEntry {
            uri: "mp3-128k.m3u8".into(),
            bandwidth: 130_000,
            average_bandwidth: 128_000,
            codecs: CODECS_MP3.into(),
        }]);
        assert!(map_uris(&master, &|uri| format!("x/{uri}")).contains("\nx/mp3-128k.m3u8\n"));
    }

    fn entries() -> Vec<PlaylistEntry> {
        let frame = 1152.0 / 44_100.0;
        vec![
            PlaylistEntry {
                duration: 382.0 * frame,
                discontinuity: false,
                audio_bytes: Some(159_576),
            },
            PlaylistEntry {
                duration: 432.0 * frame,
                discontinuity: false,
                audio_bytes: Some(180_480),
            },
            PlaylistEntry {
                duration: 100.0 * 0.024,
                discontinuity: true,
                audio_bytes: Some(38_400),
            },
        ]
    }

    #[test]
    fn playlist_text_has_every_required_tag_in_order() {
        let text = media_playlist(&entries(), &|i| format!("seg{i:03}.ts"));
        let expected = "#EXTM3U\n\
            #EXT-X-VERSION:3\n\
            #EXT-X-TARGETDURATION:12\n\
            #EXT-X-PLAYLIST-TYPE:VOD\n\
            #EXT-X-MEDIA-SEQUENCE:0\n\
            #EXT-X-LEGATO-AUDIO-BYTES:159576\n\
            #EXTINF:9.978776,\n\
            seg000.ts\n\
            #EXT-X-LEGATO-AUDIO-BYTES:180480\n\
            #EXTINF:11.284898,\n\
            seg001.ts\n\
            #EXT-X-DISCONTINUITY\n\
            #EXT-X-LEGATO-AUDIO-BYTES:38400\n\
            #EXTINF:2.4,\n\
            seg002.ts\n\
            #EXT-X-ENDLIST\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn playlist_parses_back_with_exact_enough_durations() {
        let entries = entries();
        let text = media_playlist(&entries, &|i| format!("seg{i:03}.ts"));
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.media_sequence, 0);
        assert_eq!(parsed.target_duration, 12);
        assert_eq!(parsed.playlist_type, Some(MediaPlaylistType::Vod));
        assert!(parsed.end_list);
        assert_eq!(parsed.segments.len(), 3);
        for (segment, entry) in parsed.segments.iter().zip(&entries) {
            assert!((f64::from(segment.duration) - entry.duration).abs() < 1e-6);
            assert_eq!(segment.discontinuity, entry.discontinuity);
        }
        assert_eq!(
            audio_bytes_of(&parsed),
            Some(entries.iter().filter_map(|e| e.audio_bytes).collect())
        );
        // A playlist of before the tag (or an fMP4 one) gives none.
        let untagged: Vec<PlaylistEntry> = entries
            .iter()
            .map(|e| PlaylistEntry {
                audio_bytes: None,
                ..*e
            })
            .collect();
        let text = media_playlist(&untagged, &|i| format!("seg{i:03}.ts"));
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(audio_bytes_of(&parsed), None);
    }

    #[test]
    fn fmp4_playlists_have_version_7_a_map_and_independent_segments() {
        // fMP4 segments carry no audio-bytes tag.
        let entries: Vec<PlaylistEntry> = entries()[..2]
            .iter()
            .map(|e| PlaylistEntry {
                audio_bytes: None,
                ..*e
            })
            .collect();
        let text = fmp4_media_playlist(&entries, "init.mp4", &|i| format!("seg{i:03}.m4s"));
        let expected = "#EXTM3U\n\
            #EXT-X-VERSION:7\n\
            #EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-TARGETDURATION:12\n\
            #EXT-X-PLAYLIST-TYPE:VOD\n\
            #EXT-X-MAP:URI=\"init.mp4\"\n\
            #EXT-X-MEDIA-SEQUENCE:0\n\
            #EXTINF:9.978776,\n\
            seg000.m4s\n\
            #EXTINF:11.284898,\n\
            seg001.m4s\n\
            #EXT-X-ENDLIST\n";
        assert_eq!(text, expected);
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.segments[0].map.as_ref().unwrap().uri, "init.mp4");
        assert!(parsed.independent_segments);
    }

    #[test]
    fn a_master_with_fmp4_variants_is_version_7() {
        let variant = |codecs: &str| VariantEntry {
            uri: "x.m3u8".to_owned(),
            bandwidth: 140_000,
            average_bandwidth: 131_000,
            codecs: codecs.to_owned(),
        };
        let mp3_only = master_playlist(&[variant("mp4a.40.34")]);
        assert!(mp3_only.contains("#EXT-X-VERSION:3"));
        for codecs in [CODECS_AAC_LC, CODECS_FLAC] {
            let text = master_playlist(&[variant(codecs), variant("mp4a.40.34")]);
            assert!(text.contains("#EXT-X-VERSION:7"), "{text}");
            assert!(
                text.contains(&format!(
                    "BANDWIDTH=140000,AVERAGE-BANDWIDTH=131000,CODECS=\"{codecs}\""
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn target_duration_is_the_ceiling_of_the_longest() {
        let entry = |duration| PlaylistEntry {
            duration,
            discontinuity: false,
            audio_bytes: None,
        };
        assert_eq!(target_duration(&[entry(9.98), entry(10.0)]), 10);
        assert_eq!(target_duration(&[entry(10.0001)]), 11);
        assert_eq!(target_duration(&[]), 1);
        assert_eq!(target_duration(&[entry(f64::NAN), entry(2.5)]), 3);
    }
}

/// One rendition as the master playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantEntry {
    pub uri: String,
    /// Peak bit/s over any segment, container included.
    pub bandwidth: u64,
    /// Average bit/s, container included.
    pub average_bandwidth: u64,
    /// RFC 6381 codecs: `mp4a.40.34` for MPEG audio, `mp4a.40.2` for AAC-LC, `fLaC` for
    /// FLAC.
    pub codecs: String,
}

/// RFC 6381 `CODECS` of an MP3 rendition (MPEG-1/2 Layer III audio in MPEG-TS).
pub const CODECS_MP3: &str = "mp4a.40.34";
/// RFC 6381 `CODECS` of an AAC-LC rendition.
pub const CODECS_AAC_LC: &str = "mp4a.40.2";
/// `CODECS` of a FLAC rendition (in fragmented MP4), as hls.js and Apple's spec spell it.
pub const CODECS_FLAC: &str = "fLaC";

/// Writes a master playlist over `variants` (lowest bandwidth first, as players expect the
/// first entry to be a safe start).
///
/// The version is the one the media playlists need: 7 as soon as one variant is fMP4 (AAC or
/// FLAC), so that an old client that only knows version 3 stops at the master playlist rather
/// than failing on `#EXT-X-MAP` later.
pub fn master_playlist(variants: &[VariantEntry]) -> String {
    let fmp4 = variants
        .iter()
        .any(|v| v.codecs == CODECS_AAC_LC || v.codecs == CODECS_FLAC);
    let playlist = m3u8_rs::MasterPlaylist {
        version: Some(if fmp4 { FMP4_HLS_VERSION } else { HLS_VERSION }),
        independent_segments: true,
        variants: variants
            .iter()
            .map(|v| m3u8_rs::VariantStream {
                uri: v.uri.clone(),
                bandwidth: v.bandwidth,
                average_bandwidth: Some(v.average_bandwidth),
                codecs: Some(v.codecs.clone()),
                ..m3u8_rs::VariantStream::default()
            })
            .collect(),
        ..m3u8_rs::MasterPlaylist::default()
    };
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = playlist.write_to(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}
