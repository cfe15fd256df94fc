//! The documents of the seed's schema, and how tracks map onto them.
//!
//! `musics`: `{_id: ObjectId, name, author}` as the seed writes it, plus our fields
//! (`duration`, `segments`, `playlist`, `codec`, `bitrate`, `sample_rate`, `channels`, `size`,
//! `created_at`, the tags `album`, `year`, `album_artist`, `genre`, `track_number`,
//! `disc_number`, …), which the seed ignores. A document without them (one the seed wrote) still
//! reads as a track: see [`track_from_doc`].
//!
//! `chunks`: `{_id: ObjectId, music_id: "<24 hex>", chunk_name, chunk_bytes: Binary}`, exactly
//! the seed's shape, so each side streams the other's tracks. The chunk's `_id` is made when
//! the chunk is written, and its time is what garbage collection's grace period is measured
//! against.

use mongodb::bson::{Binary, Bson, Document, doc, oid::ObjectId, spec::BinarySubtype};

use legato_store::{Analysis, Chunk, Track, TrackId, TrackStatus, keys};

pub const MUSICS: &str = "musics";
pub const CHUNKS: &str = "chunks";
/// Durable ingest jobs, one document per track (`_id`: the track id's hex).
pub const JOBS: &str = "jobs";
/// One document per claim (`<track>/claim/<n>`) and per publication (`<track>/publish`) of a
/// job: the unique `_id` is what makes each happen once, and the documents are the job log.
pub const JOB_LOG: &str = "job_log";
/// Legato's own bookkeeping: [`LIBRARY_VERSION`], counting changes of `musics`, and
/// [`SCHEMA`], the version of the layout the database was upgraded to.
pub const META: &str = "legato_meta";
/// `_id` in [`META`] of `{version}`: the last layout upgrade applied ([`CURRENT_SCHEMA`]).
pub const SCHEMA: &str = "schema";
/// 1: the keys (`name_key`, `author_key`, `words`) on every document; 2: waveforms in
/// [`PEAKS`], not in `musics`, and pending retirements in [`RETIREMENTS`].
pub const CURRENT_SCHEMA: i64 = 2;
/// Waveforms, one document per track: `{_id: <the track's ObjectId>, peaks: BinData}` (the
/// values as little-endian `f32`s). Apart from `musics`, where they were 86 % of a document's
/// bytes: a server reads a whole document even when a projection drops a field.
pub const PEAKS: &str = "track_peaks";
/// The renditions reprocessings replaced, waiting to be removed: `{_id: "<track hex>", after:
/// ms, generation}`, one per track. A small collection the retirement sweep reads instead of
/// `musics`; the track document's `retire_after` stays the truth it is checked against.
pub const RETIREMENTS: &str = "retirements";
/// Writes that leave chunks without a track document while they run (an insert writes its
/// chunks before the document; a delete removes the document before the chunks):
/// `{_id: "<track hex>", at: ms}`, written before and removed after. What a crash leaves here
/// is what garbage collection looks at, instead of reading every chunk.
pub const PENDING_WRITES: &str = "pending_writes";
/// Tracks removed, for copies of the library that follow changes: `{_id: "<track hex>", at: ms}`.
pub const DELETIONS: &str = "track_deletions";
/// `_id` of the counter in [`META`] that every change of `musics` by Legato increments.
pub const LIBRARY_VERSION: &str = "library_version";
/// The accounts: `users` (`_id` the name), `user_keys` (`_id` the key's hash), `stars`,
/// `ratings` and `plays` (one document per user and item or track), `playlists` (`_id` the
/// playlist's id, its tracks an array of ids' hex in order).
pub const USERS: &str = "users";
pub const USER_KEYS: &str = "user_keys";
pub const STARS: &str = "stars";
pub const RATINGS: &str = "ratings";
pub const PLAYS: &str = "plays";
pub const PLAYLISTS: &str = "playlists";

/// The seed's playlist name, assumed for a track document that names none.
pub const SEED_PLAYLIST: &str = "outputlist.m3u8";

/// Playlists larger than this are not read to work out a seed track's duration.
const MAX_PLAYLIST_BYTES: usize = 1 << 20;

pub fn object_id(id: &TrackId) -> ObjectId {
    ObjectId::from_bytes(id.bytes())
}

pub fn track_id(oid: &ObjectId) -> TrackId {
    TrackId::from_bytes(oid.bytes())
}

/// The search and sort keys of a track (see `legato_store::keys`).
pub fn key_fields(name: &str, author: &str) -> Document {
    let (name_key, author_key) = (keys::fold(name), keys::fold(author));
    let words = keys::track_words(&name_key, &author_key);
    doc! { "name_key": name_key, "author_key": author_key, "words": words }
}

pub fn track_doc(track: &Track) -> Document {
    let mut doc = doc! {
        "_id": object_id(&track.id),
        "name": &track.name,
        "author": &track.author,
        "duration": track.duration,
        "segments": i64::from(track.segments),
        "playlist": &track.playlist,
        "created_at": track.created_at,
        "changed_at": changed_now(),
    };
    doc.extend(key_fields(&track.name, &track.author));
    if let Some(codec) = &track.codec {
        doc.insert("codec", codec);
    }
    if let Some(bitrate) = track.bitrate {
        doc.insert("bitrate", i64::from(bitrate));
    }
    if let Some(rate) = track.sample_rate {
        doc.insert("sample_rate", i64::from(rate));
    }
    if let Some(channels) = track.channels {
        doc.insert("channels", i32::from(channels));
    }
    if let Some(size) = track.size {
        doc.insert("size", i64::try_from(size).unwrap_or(i64::MAX));
    }
    if let Some(album) = &track.album {
        doc.insert("album", album);
    }
    if let Some(year) = track.year {
        doc.insert("year", year);
    }
    if let Some(album_artist) = &track.album_artist {
        doc.insert("album_artist", album_artist);
    }
    if let Some(genre) = &track.genre {
        doc.insert("genre", genre);
    }
    if let Some(number) = track.track_number {
        doc.insert("track_number", i64::from(number));
    }
    if let Some(number) = track.disc_number {
        doc.insert("disc_number", i64::from(number));
    }
    doc.insert("status", track.status.as_str());
    if let Some(error) = &track.error {
        doc.insert("error", error);
    }
    if !track.variants.is_empty()
        && let Ok(variants) = mongodb::bson::to_bson(&track.variants)
    {
        doc.insert("variants", variants);
    }
    if let Some(cover) = &track.cover {
        doc.insert("cover", cover);
    }
    if let Some(analysis) = track.analysis.as_ref().and_then(analysis_bson) {
        doc.insert("analysis", analysis);
    }
    if let Some(source) = track
        .source
        .as_ref()
        .and_then(|s| mongodb::bson::to_bson(s).ok())
    {
        doc.insert("source", source);
    }
    doc
}

/// Milliseconds since the epoch: every write of a `musics` document that a list could show
/// stamps `changed_at` with it, which `changes_since` reads through its index.
pub fn changed_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `$set` that publishes a processed track: its media fields only, so that a rename
/// made while it was processing stays. The source goes with them (when the track has one):
/// an MP3's may now live in the renditions just published.
pub fn publish_set(track: &Track) -> Document {
    let mut set = track_doc(track);
    for kept in [
        "_id",
        "name",
        "author",
        "created_at",
        "album",
        "year",
        "album_artist",
        "genre",
        "track_number",
        "disc_number",
        "analysis",
    ] {
        set.remove(kept);
    }
    set
}

pub fn job_from_doc(doc: &Document) -> Option<legato_store::Job> {
    let track_id = doc.get_str("_id").ok()?.parse().ok()?;
    Some(legato_store::Job {
        track_id,
        state: text(doc.get("state"))
            .and_then(|s| legato_store::JobState::parse(&s))
            .unwrap_or(legato_store::JobState::Queued),
        attempts: integer(doc.get("attempts"))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        claims: integer(doc.get("claims"))
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        owner: text(doc.get("owner")),
        lease_until: integer(doc.get("lease_until")).unwrap_or(0),
        last_error: text(doc.get("last_error")),
        created_at: integer(doc.get("created_at")).unwrap_or(0),
        updated_at: integer(doc.get("updated_at")).unwrap_or(0),
        kind: text(doc.get("kind"))
            .and_then(|s| legato_store::JobKind::parse(&s))
            .unwrap_or_default(),
    })
}

/// The `$set` of a reprocessing's publication: the media fields of `track` (not its name,
/// author or their keys, which a rename may have changed meanwhile), ready, and the
/// generation that made them.
pub fn replace_set(track: &Track, generation: i64, retire_after: i64) -> Document {
    let mut set = publish_set(track);
    for kept in ["name_key", "author_key", "words", "error"] {
        set.remove(kept);
    }
    // A reprocessing reads the tags again: it may fill in those an older version did not
    // read (it never drops one, so there is nothing to unset).
    let full = track_doc(track);
    for tag in [
        "album",
        "year",
        "album_artist",
        "genre",
        "track_number",
        "disc_number",
    ] {
        if let Some(value) = full.get(tag) {
            set.insert(tag, value.clone());
        }
    }
    set.insert("status", TrackStatus::Ready.as_str());
    set.insert("generation", generation);
    set.insert("retire_after", retire_after);
    set
}

/// The `$unset` that goes with [`replace_set`]: the optional media fields the new renditions
/// do not have (a ladder that became one rendition has no variants), and the error.
pub fn replace_unset(set: &Document) -> Document {
    let mut unset = Document::new();
    for field in [
        "variants",
        "cover",
        "codec",
        "bitrate",
        "sample_rate",
        "channels",
        "size",
        "error",
    ] {
        if !set.contains_key(field) {
            unset.insert(field, "");
        }
    }
    unset
}

/// The analysis as `musics` keeps it: without its waveform, which lives in [`PEAKS`].
pub fn analysis_bson(analysis: &Analysis) -> Option<Bson> {
    let lean = Analysis {
        peaks: Vec::new(),
        ..analysis.clone()
    };
    let mut value = mongodb::bson::to_bson(&lean).ok()?;
    if let Bson::Document(doc) = &mut value {
        doc.remove("peaks");
    }
    Some(value)
}

/// The [`PEAKS`] document of a waveform.
pub fn peaks_doc(oid: ObjectId, peaks: &[f32]) -> Document {
    let bytes = peaks.iter().flat_map(|p| p.to_le_bytes()).collect();
    doc! { "_id": oid, "peaks": Binary { subtype: BinarySubtype::Generic, bytes } }
}

/// The waveform a [`PEAKS`] document holds (or, in a `musics` document an older version
/// wrote, the array `analysis.peaks`).
pub fn peaks_from(value: Option<&Bson>) -> Option<Vec<f32>> {
    match value? {
        Bson::Binary(binary) => Some(
            binary
                .bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        Bson::Array(values) => Some(
            values
                .iter()
                .filter_map(|v| number(Some(v)))
                .map(|v| v as f32)
                .collect(),
        ),
        _ => None,
    }
}

fn decoded<T: serde::de::DeserializeOwned>(value: Option<&Bson>) -> Option<T> {
    value.and_then(|v| mongodb::bson::from_bson(v.clone()).ok())
}

/// The `_id` Legato gives chunk `name` of track `id`, so that a segment is found by an `_id`
/// lookup: the track id's first four bytes (its creation time, which garbage collection's
/// grace period is measured against), then eight bytes of an FNV-1a hash of the track id and
/// the name. Chunks the seed wrote have ObjectIds of their own and are found by
/// `(music_id, chunk_name)`; a chunk is only taken as found when those two fields match too.
pub fn chunk_oid(id: &TrackId, name: &str) -> ObjectId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes().iter().chain([0u8].iter()).chain(name.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&id.bytes()[..4]);
    bytes[4..].copy_from_slice(&hash.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

/// [`chunk_oid`] of a track given by its hex id (a new ObjectId if it is not one).
pub fn chunk_oid_for(music_id: &str, name: &str) -> ObjectId {
    match music_id.parse::<TrackId>() {
        Ok(id) => chunk_oid(&id, name),
        Err(_) => ObjectId::new(),
    }
}

pub fn chunk_doc(oid: ObjectId, music_id: &str, chunk: &Chunk) -> Document {
    doc! {
        "_id": oid,
        "music_id": music_id,
        "chunk_name": &chunk.name,
        "chunk_bytes": Binary { subtype: BinarySubtype::Generic, bytes: chunk.bytes.to_vec() },
    }
}

/// Whether the document lacks the fields only the playlist can tell (a seed track).
pub fn needs_playlist(doc: &Document) -> bool {
    number(doc.get("segments")).is_none() || number(doc.get("duration")).is_none()
}

/// The track a `musics` document describes, `None` when its `_id` is not an ObjectId.
///
/// Fields the seed does not write are filled in: the playlist is `outputlist.m3u8`; the
/// duration and segment count come from `playlist` (the stored playlist's bytes, when the
/// caller fetched them), else 0; `created_at` is the ObjectId's time; codec and the other
/// audio details are unknown.
pub fn track_from_doc(doc: &Document, playlist: Option<&[u8]>) -> Option<Track> {
    let oid = doc.get_object_id("_id").ok()?;
    let summary = playlist.map(playlist_summary);
    let duration = number(doc.get("duration"))
        .or(summary.map(|(duration, _)| duration))
        .unwrap_or(0.0);
    let segments = number(doc.get("segments"))
        .map(|n| n.clamp(0.0, f64::from(u32::MAX)) as u32)
        .or(summary.map(|(_, segments)| segments))
        .unwrap_or(0);
    Some(Track {
        id: track_id(&oid),
        name: text(doc.get("name")).unwrap_or_default(),
        author: text(doc.get("author")).unwrap_or_default(),
        duration,
        segments,
        playlist: text(doc.get("playlist")).unwrap_or_else(|| SEED_PLAYLIST.to_owned()),
        codec: text(doc.get("codec")),
        bitrate: integer(doc.get("bitrate")).and_then(|n| u32::try_from(n).ok()),
        sample_rate: integer(doc.get("sample_rate")).and_then(|n| u32::try_from(n).ok()),
        channels: integer(doc.get("channels")).and_then(|n| u8::try_from(n).ok()),
        size: integer(doc.get("size")).and_then(|n| u64::try_from(n).ok()),
        created_at: integer(doc.get("created_at"))
            .or_else(|| match doc.get("created_at") {
                Some(Bson::DateTime(at)) => Some(at.timestamp_millis()),
                _ => None,
            })
            .unwrap_or_else(|| oid.timestamp().timestamp_millis()),
        album: text(doc.get("album")),
        year: integer(doc.get("year")).and_then(|n| i32::try_from(n).ok()),
        album_artist: text(doc.get("album_artist")),
        genre: text(doc.get("genre")),
        track_number: integer(doc.get("track_number")).and_then(|n| u32::try_from(n).ok()),
        disc_number: integer(doc.get("disc_number")).and_then(|n| u32::try_from(n).ok()),
        // The seed's documents have no status: they are ready.
        status: text(doc.get("status"))
            .and_then(|s| TrackStatus::parse(&s))
            .unwrap_or_default(),
        error: text(doc.get("error")),
        variants: decoded(doc.get("variants")).unwrap_or_default(),
        cover: text(doc.get("cover")),
        analysis: decoded(doc.get("analysis")),
        source: decoded(doc.get("source")),
    })
}

pub(crate) fn text(value: Option<&Bson>) -> Option<String> {
    match value {
        Some(Bson::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn number(value: Option<&Bson>) -> Option<f64> {
    match value {
        Some(Bson::Double(n)) if n.is_finite() => Some(*n),
        Some(Bson::Int32(n)) => Some(f64::from(*n)),
        Some(Bson::Int64(n)) => Some(*n as f64),
        _ => None,
    }
}

pub(crate) fn integer(value: Option<&Bson>) -> Option<i64> {
    match value {
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        Some(Bson::Int64(n)) => Some(*n),
        Some(Bson::Double(n)) if n.is_finite() && n.fract() == 0.0 => Some(*n as i64),
        _ => None,
    }
}

/// Duration (sum of `#EXTINF`) and number of segments of a media playlist; what cannot be
/// read counts as nothing, since the playlist may be anything the seed stored.
pub fn playlist_summary(bytes: &[u8]) -> (f64, u32) {
    if bytes.len() > MAX_PLAYLIST_BYTES {
        return (0.0, 0);
    }
    let text = String::from_utf8_lossy(bytes);
    let mut duration = 0.0;
    let mut segments = 0u32;
    for line in text.lines() {
        if let Some(rest) = line.trim().strip_prefix("#EXTINF:") {
            let seconds = rest.split(',').next().unwrap_or("").trim();
            match seconds.parse::<f64>() {
                Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => duration += seconds,
                _ => {}
            }
            segments = segments.saturating_add(1);
        }
    }
    (duration, segments)
}

/// A regular expression matching `needle` literally, for MongoDB's PCRE and FerretDB's RE2
/// alike: ASCII punctuation is escaped with a backslash (literal in both), NUL is written
/// `\x00` (a regex travels as a C string).
pub fn literal_regex(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() * 2);
    for c in needle.chars() {
        if c == '\0' {
            pattern.push_str("\\x00");
        } else {
            if c.is_ascii_punctuation() {
                pattern.push('\\');
            }
            pattern.push(c);
        }
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_document_reads_as_a_track() {
        let oid = ObjectId::parse_str("65a1f0c2e4b0a1b2c3d4e5f6").unwrap();
        let doc = doc! { "_id": oid, "name": "Like a Prayer", "author": "Madonna" };
        assert!(needs_playlist(&doc));
        let playlist = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n\
            #EXTINF:10.005333,\noutput000.ts\n#EXTINF:9.995000,\noutput001.ts\n\
            #EXTINF:0.012000,\noutput002.ts\n#EXT-X-ENDLIST\n";
        let track = track_from_doc(&doc, Some(playlist)).unwrap();
        assert_eq!(track.id.to_string(), "65a1f0c2e4b0a1b2c3d4e5f6");
        assert_eq!(track.playlist, "outputlist.m3u8");
        assert_eq!(track.segments, 3);
        assert!(
            (track.duration - 20.012333).abs() < 1e-9,
            "{}",
            track.duration
        );
        assert_eq!(track.created_at, 0x65a1_f0c2_i64 * 1000);
        assert_eq!(track.codec, None);
        assert_eq!(
            (
                track.album_artist,
                track.genre,
                track.track_number,
                track.disc_number
            ),
            (None, None, None, None)
        );
        let without = track_from_doc(&doc, None).unwrap();
        assert_eq!((without.duration, without.segments), (0.0, 0));
    }

    #[test]
    fn our_document_round_trips() {
        let track = legato_store::Track {
            id: TrackId::generate(),
            name: "n".into(),
            author: "a".into(),
            duration: 31.5,
            segments: 3,
            playlist: "index.m3u8".into(),
            codec: Some("mp3".into()),
            bitrate: Some(128),
            sample_rate: Some(44_100),
            channels: Some(2),
            size: Some(504_000),
            created_at: 1_700_000_000_123,
            ..legato_store::conformance::sample_track("n", "a")
        };
        let doc = track_doc(&track);
        assert!(!needs_playlist(&doc));
        assert_eq!(track_from_doc(&doc, None).unwrap(), track);
    }

    #[test]
    fn hostile_playlists_count_what_they_can() {
        assert_eq!(playlist_summary(b""), (0.0, 0));
        assert_eq!(
            playlist_summary(b"#EXTINF:nan,\n#EXTINF:-3,\n#EXTINF:2\n\xff\xfe"),
            (2.0, 3)
        );
        assert_eq!(
            playlist_summary(&vec![b'#'; MAX_PLAYLIST_BYTES + 1]),
            (0.0, 0)
        );
    }

    #[test]
    fn regex_is_literal() {
        assert_eq!(literal_regex("a.b*(c)"), "a\\.b\\*\\(c\\)");
        assert_eq!(literal_regex("100% é"), "100\\% é");
        assert_eq!(literal_regex("a\0b\\"), "a\\x00b\\\\");
    }
}
