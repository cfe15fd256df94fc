//! Sound and pictures: `stream` (a prepared rendition as one progressive MP3 file, with its
//! length known and byte ranges served from the first play), `download` (the original),
//! `hls.m3u8` (our playlists) and `getCoverArt` (resized once, then cached).
//!
//! A rendition's segments are MPEG-TS around MP3 frames; their audio payloads, one after
//! another, are a plain MP3 stream. The first request for a rendition reads each segment
//! once to learn its payload length (kept in [`Rendition`]); a range then reads only the
//! segments it covers.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use futures_util::StreamExt;
use legato_store::{StoreError, Track, TrackId, TrackStatus};

use super::call::{Call, Rendition, Reply};
use super::error::SubsonicError;
use crate::error::ApiError;

/// A part of a `stream` answer: audio cut out of a segment already read (the segment a
/// `timeOffset` falls in), or a stored segment's whole audio, read when it is reached.
enum Piece {
    Held(Bytes),
    Segment(String),
}

/// Largest side of a resized cover.
const MAX_COVER_SIZE: u32 = 2048;

fn track_id(text: &str) -> Result<TrackId, SubsonicError> {
    text.parse().map_err(|_| SubsonicError::not_found("Song"))
}

async fn ready_track(call: &Call<'_>) -> Result<Track, SubsonicError> {
    let id = track_id(call.params.required("id")?)?;
    let track = call.api.state.store.get_track(&id).await?;
    if track.status != TrackStatus::Ready {
        return Err(SubsonicError::not_found(
            "Song (it is still being processed)",
        ));
    }
    Ok(track)
}

fn media_error(error: ApiError) -> Result<Reply, SubsonicError> {
    Ok(Reply::Media(error.into_response()))
}

/// The media playlist of the renditions coded as `codecs` (RFC 6381) to stream: the highest
/// within `max_kbps` (0: no limit), else the lowest; `None` when the track has none of them.
/// A track with one rendition (MP3) has only its playlist.
fn pick_playlist(track: &Track, max_kbps: u32, codecs: &str) -> Option<String> {
    if track.variants.is_empty() {
        return (codecs == MP3_CODECS).then(|| track.playlist.clone());
    }
    let mut variants: Vec<&legato_store::Variant> = track
        .variants
        .iter()
        .filter(|v| v.codecs == codecs)
        .collect();
    variants.sort_by_key(|v| v.bitrate);
    let within = variants
        .iter()
        .rev()
        .find(|v| max_kbps == 0 || v.bitrate <= max_kbps);
    within.or(variants.first()).map(|v| v.playlist.clone())
}

/// The MP3 renditions are what `stream` can serve as one MP3 file.
const MP3_CODECS: &str = legato_media::CODECS_MP3;

/// Segment chunk names of a media playlist, in order, their durations, and the audio bytes
/// of each when the playlist records them (every rendition published since they are written).
type Segments = (Vec<String>, Vec<f64>, Option<Vec<u64>>);

fn segment_names(playlist: &[u8]) -> Result<Segments, SubsonicError> {
    let parsed = m3u8_rs::parse_media_playlist_res(playlist)
        .map_err(|_| SubsonicError::generic("a stored playlist does not parse"))?;
    let lengths = legato_media::playlist::audio_bytes_of(&parsed);
    let durations = parsed
        .segments
        .iter()
        .map(|s| f64::from(s.duration))
        .collect();
    let names = parsed
        .segments
        .into_iter()
        .map(|s| {
            s.uri
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    Ok((names, durations, lengths))
}

/// A segment through the streaming cache (shared with the streaming function's readers).
async fn segment(call: &Call<'_>, id: TrackId, name: &str) -> Result<Bytes, StoreError> {
    let state = &call.api.state;
    Ok(state.segments.read(&state.store, id, name).await?.bytes)
}

fn audio_of(ts: &[u8]) -> Result<Bytes, SubsonicError> {
    let mut audio = Vec::with_capacity(ts.len());
    legato_media::original::ts_audio_payload(ts, &mut audio)
        .map_err(|e| SubsonicError::generic(format!("a stored segment is damaged: {e}")))?;
    Ok(audio.into())
}

async fn rendition(
    call: &Call<'_>,
    track: &Track,
    playlist: &str,
) -> Result<Arc<Rendition>, SubsonicError> {
    let key = (track.id, playlist.to_owned());
    if let Some(known) = call.api.renditions.get(&key).await {
        return Ok(known);
    }
    let (names, durations, lengths) =
        segment_names(&call.api.state.store.get_chunk(&track.id, playlist).await?)?;
    let mut segments = Vec::with_capacity(names.len());
    if let Some(lengths) = lengths {
        for (name, len) in names.into_iter().zip(lengths) {
            segments.push((name, len));
        }
    } else {
        // An older rendition: its lengths are learnt by reading every segment once.
        for name in names {
            let audio = audio_of(&segment(call, track.id, &name).await?)?;
            segments.push((name, audio.len() as u64));
        }
    }
    let rendition = Arc::new(Rendition {
        segments,
        durations,
    });
    call.api.renditions.insert(key, rendition.clone()).await;
    Ok(rendition)
}

/// The parts of a rendition's progressive MP3 from `offset` seconds on, their lengths, and
/// the instant the first part starts at: every segment for 0; else the segment holding the
/// instant, cut at its first frame at or after it (frame-exact: an MP3 rung's segments are
/// MPEG-TS around whole MP3 frames), then the segments after it.
async fn pieces_from(
    call: &Call<'_>,
    track: &Track,
    rendition: &Rendition,
    offset: f64,
) -> Result<(Vec<(Piece, u64)>, f64), SubsonicError> {
    let whole = |from: usize| {
        rendition.segments[from..]
            .iter()
            .map(|(name, len)| (Piece::Segment(name.clone()), *len))
            .collect::<Vec<_>>()
    };
    if offset <= 0.0 {
        return Ok((whole(0), 0.0));
    }
    let mut start = 0.0;
    for (index, duration) in rendition.durations.iter().enumerate() {
        if start + duration > offset {
            let Some((name, _)) = rendition.segments.get(index) else {
                break;
            };
            let audio = audio_of(&segment(call, track.id, name).await?)?;
            let (cut, at) = legato_media::scan::cut_at(&audio, offset - start);
            let mut pieces = vec![];
            if cut < audio.len() {
                let held = audio.slice(cut..);
                let len = held.len() as u64;
                pieces.push((Piece::Held(held), len));
            }
            pieces.extend(whole(index + 1));
            return Ok((pieces, start + at));
        }
        start += duration;
    }
    // At or past the end: nothing to play.
    Ok((Vec::new(), start.max(track.duration)))
}

pub async fn stream(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let track = ready_track(call).await?;
    let max_kbps: u32 = call.params.number("maxBitRate", 0)?;
    let offset: f64 = call.params.number("timeOffset", 0.0)?;
    if !offset.is_finite() || offset < 0.0 {
        return Err(SubsonicError::invalid(
            "timeOffset",
            "seconds from the start, 0 or more",
        ));
    }
    call.note_playing(track.id);
    if call.params.get("format") == Some("raw") && track.source.is_some() {
        return download_track(call, &track);
    }
    let playlist =
        pick_playlist(&track, max_kbps, MP3_CODECS).unwrap_or_else(|| track.playlist.clone());
    let rendition = rendition(call, &track, &playlist).await?;
    let (pieces, from) = pieces_from(call, &track, &rendition, offset).await?;
    let total: u64 = pieces.iter().map(|(_, len)| len).sum();
    // Each offset's answer is a file of its own: ranges of one never apply to another.
    let etag = format!(
        "\"{:016x}\"",
        xxhash_rust::xxh3::xxh3_64(format!("{}/{playlist}@{from:.6}", track.id).as_bytes())
    );
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    let duration = (track.duration - from).max(0.0);
    if let Ok(value) = HeaderValue::from_str(&format!("{duration:.3}")) {
        headers.insert("x-content-duration", value);
    }
    let (status, start, end) =
        match crate::ranges::byte_range(call.headers, total, &etag, &mut headers) {
            Ok(range) => range,
            Err(error) => return media_error(error),
        };
    let body_len = if total == 0 { 0 } else { end - start + 1 };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    if body_len == 0 {
        return Ok(Reply::Media((status, headers).into_response()));
    }
    // From the piece holding `start` on, one segment in memory at a time.
    let mut offset = 0;
    let mut first = 0;
    for (index, (_, len)) in pieces.iter().enumerate() {
        if offset + len > start {
            first = index;
            break;
        }
        offset += len;
    }
    let store = call.api.state.store.clone();
    let cache = call.api.state.segments.clone();
    let id = track.id;
    let blocks = futures_util::stream::iter(pieces.into_iter().skip(first))
        .then(move |(piece, _)| {
            let store = store.clone();
            let cache = cache.clone();
            async move {
                match piece {
                    Piece::Held(audio) => Ok(audio),
                    Piece::Segment(name) => {
                        let ts = cache.read(&store, id, &name).await?.bytes;
                        audio_of(&ts).map_err(|e| ApiError::InvalidParameter(e.message))
                    }
                }
            }
        })
        .boxed();
    let body = crate::ranges::range_body(blocks, offset, start, end);
    Ok(Reply::Media((status, headers, body).into_response()))
}

fn download_track(call: &Call<'_>, track: &Track) -> Result<Reply, SubsonicError> {
    match crate::original::source_response(&call.api.state, track, call.headers) {
        Ok(response) => Ok(Reply::Media(response)),
        Err(ApiError::SourceUnavailable) => Err(SubsonicError::not_found(
            "The original file (this track was stored before originals were kept)",
        )),
        Err(error) => media_error(error),
    }
}

pub async fn download(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let track = ready_track(call).await?;
    download_track(call, &track)
}

/// Our playlists for the track, their URIs made absolute (signed when URLs are signed):
/// the master playlist, or with `bitRate` the media playlist of the nearest rendition.
pub async fn hls(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let track = ready_track(call).await?;
    let config = &call.api.state.config;
    let base = format!("{}/{}/", config.streaming_path, track.id);
    let query = config
        .url_signer
        .as_ref()
        .map(|s| format!("?{}", s.sign(&track.id).query()))
        .unwrap_or_default();
    let wanted: Option<u32> = call
        .params
        .get("bitRate")
        .and_then(|b| b.split(',').next())
        .map(|b| {
            b.trim()
                .parse()
                .map_err(|_| SubsonicError::invalid("bitRate", "not a number"))
        })
        .transpose()?;
    let playlist = match wanted {
        // An app asking for a bitrate gets the AAC rung nearest it (any HLS player of
        // today plays AAC), or the MP3 one for a track without AAC renditions.
        Some(kbps) => pick_playlist(&track, kbps, legato_media::CODECS_AAC_LC)
            .or_else(|| pick_playlist(&track, kbps, MP3_CODECS))
            .unwrap_or_else(|| track.playlist.clone()),
        None => track.playlist.clone(),
    };
    let text = call.api.state.store.get_chunk(&track.id, &playlist).await?;
    let text = String::from_utf8_lossy(&text);
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            out.push_str(line);
        } else {
            let name = line.split(['?', '#']).next().unwrap_or_default();
            out.push_str(&format!("{base}{name}{query}"));
        }
        out.push('\n');
    }
    call.note_playing(track.id);
    Ok(Reply::Media(
        (
            [
                (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            out,
        )
            .into_response(),
    ))
}

/// Which track's cover an id names: a song's own, an album's (its first song with one), an
/// artist's (their first album's).
fn cover_track(library: &super::library::Library, id: &str) -> Option<TrackId> {
    if let Some(album) = library.album(id) {
        return album.cover_song.map(|s| library.songs[s].id);
    }
    if let Some(artist) = library.artist(id) {
        return artist
            .albums
            .iter()
            .find_map(|&a| library.albums[a].cover_song)
            .map(|s| library.songs[s].id);
    }
    id.parse().ok()
}

pub async fn cover_art(call: &Call<'_>) -> Result<Reply, SubsonicError> {
    let id = call.params.required("id")?;
    let size: u32 = call.params.number("size", 0)?;
    let library = call.api.library.get().await?;
    let track_id =
        cover_track(&library, id).ok_or_else(|| SubsonicError::not_found("Cover art"))?;
    let track = call.api.state.store.get_track(&track_id).await?;
    let Some(cover) = track.cover.clone() else {
        return Err(SubsonicError::not_found("Cover art"));
    };
    let original = call.api.state.store.get_chunk(&track.id, &cover).await?;
    let (bytes, mime) = if size == 0 {
        (original.clone(), image_mime(&original))
    } else {
        let size = size.min(MAX_COVER_SIZE);
        let key = (track.id, cover.clone(), size);
        let resized = call
            .api
            .covers
            .try_get_with(key, async move {
                tokio::task::spawn_blocking(move || resize(&original, size))
                    .await
                    .map_err(|e| e.to_string())?
            })
            .await
            .map_err(|e| SubsonicError::generic(format!("the cover cannot be resized: {e}")))?;
        let mime = image_mime(&resized);
        (resized, mime)
    };
    Ok(Reply::Media(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "private, max-age=86400"),
            ],
            bytes,
        )
            .into_response(),
    ))
}

fn image_mime(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        "image/webp"
    } else {
        "image/jpeg"
    }
}

/// The image scaled so its larger side is `size` (never enlarged): a PNG stays a PNG, a JPEG
/// or WebP (a folder's art) becomes a JPEG.
fn resize(original: &[u8], size: u32) -> Result<Bytes, String> {
    let format = image::guess_format(original).map_err(|e| e.to_string())?;
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(original), format);
    // Covers come from uploads: bound what decoding one may allocate.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| e.to_string())?;
    let scaled = if decoded.width().max(decoded.height()) > size {
        decoded.resize(size, size, image::imageops::FilterType::Lanczos3)
    } else {
        decoded
    };
    let mut out = std::io::Cursor::new(Vec::new());
    match format {
        image::ImageFormat::Png => scaled.write_to(&mut out, image::ImageFormat::Png),
        _ => scaled
            .into_rgb8()
            .write_to(&mut out, image::ImageFormat::Jpeg),
    }
    .map_err(|e| e.to_string())?;
    Ok(out.into_inner().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_rendition_within_the_limit_is_picked() {
        let mut track = legato_store::conformance::sample_track("a", "b");
        track.playlist = "master.m3u8".into();
        let variant = |kbps: u32| legato_store::Variant {
            name: format!("{kbps}k"),
            bitrate: kbps,
            bandwidth: u64::from(kbps) * 1000,
            average_bandwidth: u64::from(kbps) * 1000,
            codecs: "mp4a.40.34".into(),
            playlist: format!("{kbps}k.m3u8"),
        };
        let aac = legato_store::Variant {
            name: "aac256k".into(),
            bitrate: 256,
            bandwidth: 260_000,
            average_bandwidth: 258_000,
            codecs: "mp4a.40.2".into(),
            playlist: "aac256k.m3u8".into(),
        };
        track.variants = vec![variant(320), variant(64), aac, variant(128)];
        let mp3 = |kbps| pick_playlist(&track, kbps, MP3_CODECS).expect("an MP3 rendition");
        assert_eq!(mp3(0), "320k.m3u8");
        assert_eq!(mp3(192), "128k.m3u8");
        assert_eq!(mp3(32), "64k.m3u8");
        assert_eq!(
            pick_playlist(&track, 0, "mp4a.40.2").as_deref(),
            Some("aac256k.m3u8")
        );
        assert_eq!(pick_playlist(&track, 0, "fLaC"), None);
        track.variants.clear();
        assert_eq!(
            pick_playlist(&track, 64, MP3_CODECS).as_deref(),
            Some("master.m3u8")
        );
    }

    #[test]
    fn covers_shrink_to_the_size_asked() {
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(300, 200, image::Rgb([200, 10, 10]))
            .write_to(&mut png, image::ImageFormat::Png)
            .expect("png");
        let small = resize(png.get_ref(), 64).expect("resized");
        let decoded = image::load_from_memory(&small).expect("decodes");
        assert_eq!((decoded.width(), decoded.height()), (64, 43));
        assert_eq!(image_mime(&small), "image/png");
        assert!(resize(b"not an image", 64).is_err());
        // A folder's WebP art is resized too, to a JPEG.
        let mut webp = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(300, 300, image::Rgb([10, 200, 10]))
            .write_to(&mut webp, image::ImageFormat::WebP)
            .expect("webp");
        assert_eq!(image_mime(webp.get_ref()), "image/webp");
        let small = resize(webp.get_ref(), 100).expect("resized");
        let decoded = image::load_from_memory(&small).expect("decodes");
        assert_eq!((decoded.width(), decoded.height()), (100, 100));
        assert_eq!(image_mime(&small), "image/jpeg");
    }
}
