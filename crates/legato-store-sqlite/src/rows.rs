//! Rows to and from the model: tracks, jobs, their JSON columns, and the writes of a track's
//! row and chunks inside a caller's transaction.

use legato_store::{
    Analysis, ChunkSource, Job, JobKind, JobState, Result, StoreError, Track, TrackId, TrackStatus,
    keys,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

pub(crate) const JOB_COLUMNS: &str = "track_id, state, attempts, claims, owner, lease_until, last_error, \
                           created_at, updated_at, kind";

pub(crate) const TRACK_COLUMNS: &str = "id, name, author, duration, segments, playlist, codec, bitrate, \
                             sample_rate, channels, size, created_at, album, year, status, error, \
                             variants, cover, analysis, source, album_artist, genre, \
                             track_number, disc_number";

pub(crate) fn map_err(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(err.to_string())
        }
        Some(ErrorCode::ConstraintViolation) => StoreError::Invalid(err.to_string()),
        // Retrying does not help a full disk: it is its own error (507 at the API).
        Some(ErrorCode::DiskFull) => StoreError::Full(err.to_string()),
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly) => {
            StoreError::Unavailable(err.to_string())
        }
        _ => StoreError::Backend(err.to_string()),
    }
}

pub(crate) fn not_found(id: &TrackId) -> StoreError {
    StoreError::NotFound(format!("track {id}"))
}

/// Where `peaks` stands in a row of [`TRACK_COLUMNS`] followed by `peaks`.
pub(crate) const PEAKS_COLUMN: usize = 24;

/// A track from a row of [`TRACK_COLUMNS`], followed by `peaks` when `with_peaks`.
pub(crate) fn track_from_row_with(
    row: &rusqlite::Row<'_>,
    with_peaks: bool,
) -> rusqlite::Result<Track> {
    let mut track = track_from_row(row)?;
    if with_peaks
        && let Some(analysis) = track.analysis.as_mut()
        && let Some(peaks) = json_column::<Vec<f32>>(row, PEAKS_COLUMN)?
    {
        analysis.peaks = peaks;
    }
    Ok(track)
}

pub(crate) fn track_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Track> {
    let id: String = row.get(0)?;
    let id = id.parse::<TrackId>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Track {
        id,
        name: row.get(1)?,
        author: row.get(2)?,
        duration: row.get(3)?,
        segments: row.get(4)?,
        playlist: row.get(5)?,
        codec: row.get(6)?,
        bitrate: row.get(7)?,
        sample_rate: row.get(8)?,
        channels: row.get(9)?,
        size: row.get::<_, Option<i64>>(10)?.map(|s| s.max(0) as u64),
        created_at: row.get(11)?,
        album: row.get(12)?,
        year: row.get(13)?,
        status: row
            .get::<_, String>(14)
            .map(|s| TrackStatus::parse(&s).unwrap_or_default())?,
        error: row.get(15)?,
        variants: json_column(row, 16)?.unwrap_or_default(),
        cover: row.get(17)?,
        analysis: json_column(row, 18)?,
        source: json_column(row, 19)?,
        album_artist: row.get(20)?,
        genre: row.get(21)?,
        track_number: row.get(22)?,
        disc_number: row.get(23)?,
    })
}

pub(crate) fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let id: String = row.get(0)?;
    let track_id = id.parse::<TrackId>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let state: String = row.get(1)?;
    Ok(Job {
        track_id,
        state: JobState::parse(&state).unwrap_or(JobState::Queued),
        attempts: row.get(2)?,
        claims: row.get::<_, i64>(3)?.max(0) as u64,
        owner: row.get(4)?,
        lease_until: row.get(5)?,
        last_error: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        kind: JobKind::parse(&row.get::<_, String>(9)?).unwrap_or_default(),
    })
}

pub(crate) fn claims_param(claims: u64) -> i64 {
    i64::try_from(claims).unwrap_or(i64::MAX)
}

pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<T>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                Box::new(e),
            )
        }),
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The analysis as stored in the track row (without the waveform) and the waveform, which
/// has a table of its own.
pub(crate) fn split_analysis(analysis: &Analysis) -> Result<(String, Option<String>)> {
    let small = Analysis {
        peaks: Vec::new(),
        ..analysis.clone()
    };
    let mut small = serde_json::to_value(&small).map_err(|e| StoreError::Invalid(e.to_string()))?;
    if let Some(object) = small.as_object_mut() {
        object.remove("peaks");
    }
    let peaks = (!analysis.peaks.is_empty())
        .then(|| to_json(&analysis.peaks))
        .transpose()?;
    Ok((small.to_string(), peaks))
}

pub(crate) fn write_peaks(conn: &Connection, id: &TrackId, peaks: Option<&str>) -> Result<()> {
    match peaks {
        Some(peaks) => conn
            .prepare_cached("INSERT OR REPLACE INTO track_peaks (track_id, peaks) VALUES (?1, ?2)")
            .map_err(map_err)?
            .execute(params![id.to_string(), peaks]),
        None => conn
            .prepare_cached("DELETE FROM track_peaks WHERE track_id = ?1")
            .map_err(map_err)?
            .execute([id.to_string()]),
    }
    .map_err(map_err)?;
    Ok(())
}

/// Inserts the track row (inside the caller's transaction).
pub(crate) fn insert_row(conn: &Connection, track: &Track) -> Result<()> {
    let variants = (!track.variants.is_empty())
        .then(|| to_json(&track.variants))
        .transpose()?;
    let (analysis, peaks) = match &track.analysis {
        Some(analysis) => {
            let (small, peaks) = split_analysis(analysis)?;
            (Some(small), peaks)
        }
        None => (None, None),
    };
    let source = track.source.as_ref().map(to_json).transpose()?;
    conn.execute(
        &format!(
            "INSERT INTO tracks ({TRACK_COLUMNS}, name_key, author_key) VALUES (?1, ?2, ?3, ?4, \
             ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, \
             ?23, ?24, ?25, ?26)"
        ),
        params![
            track.id.to_string(),
            track.name,
            track.author,
            track.duration,
            track.segments,
            track.playlist,
            track.codec,
            track.bitrate,
            track.sample_rate,
            track.channels,
            track.size.map(|s| s.min(i64::MAX as u64) as i64),
            track.created_at,
            track.album,
            track.year,
            track.status.as_str(),
            track.error,
            variants,
            track.cover,
            analysis,
            source,
            track.album_artist,
            track.genre,
            track.track_number,
            track.disc_number,
            keys::fold(&track.name),
            keys::fold(&track.author),
        ],
    )
    .map_err(map_err)?;
    if peaks.is_some() {
        write_peaks(conn, &track.id, peaks.as_deref())?;
    }
    Ok(())
}

/// Writes the media fields of a processing track and makes it ready (inside the caller's
/// transaction); `false` when it is no longer processing (deleted, or published by another
/// process). Name and author are left alone: a rename made meanwhile stays.
pub(crate) fn publish_row(conn: &Connection, track: &Track) -> Result<bool> {
    let variants = (!track.variants.is_empty())
        .then(|| to_json(&track.variants))
        .transpose()?;
    let source = track.source.as_ref().map(to_json).transpose()?;
    let changed = conn
        .execute(
            "UPDATE tracks SET duration = ?2, segments = ?3, playlist = ?4, codec = ?5, \
             bitrate = ?6, sample_rate = ?7, channels = ?8, size = ?9, status = ?10, \
             error = ?11, variants = ?12, cover = ?13, source = COALESCE(?14, source) \
             WHERE id = ?1 AND status = 'processing'",
            params![
                track.id.to_string(),
                track.duration,
                track.segments,
                track.playlist,
                track.codec,
                track.bitrate,
                track.sample_rate,
                track.channels,
                track.size.map(|s| s.min(i64::MAX as u64) as i64),
                track.status.as_str(),
                track.error,
                variants,
                track.cover,
                source,
            ],
        )
        .map_err(map_err)?;
    Ok(changed == 1)
}

/// Switches the media fields of a track that is not processing to `track`'s (inside the
/// caller's transaction), for the claim `claims`: `false` when that claim is not the running
/// job of the track, the track is processing or gone, or a later claim published already.
pub(crate) fn replace_row(
    conn: &Connection,
    track: &Track,
    claims: u64,
    retire_after: i64,
) -> Result<bool> {
    let running: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE track_id = ?1 AND claims = ?2 \
             AND state = 'running')",
        )
        .map_err(map_err)?
        .query_row(params![track.id.to_string(), claims_param(claims)], |row| {
            row.get(0)
        })
        .map_err(map_err)?;
    if !running {
        return Ok(false);
    }
    let source = track.source.as_ref().map(to_json).transpose()?;
    let variants = (!track.variants.is_empty())
        .then(|| to_json(&track.variants))
        .transpose()?;
    let changed = conn
        .execute(
            "UPDATE tracks SET duration = ?2, segments = ?3, playlist = ?4, codec = ?5, \
             bitrate = ?6, sample_rate = ?7, channels = ?8, size = ?9, status = 'ready', \
             error = NULL, variants = ?10, cover = ?11, generation = ?12, \
             retire_after = MAX(COALESCE(retire_after, 0), ?13), source = COALESCE(?14, source), \
             album = COALESCE(?15, album), year = COALESCE(?16, year), \
             album_artist = COALESCE(?17, album_artist), genre = COALESCE(?18, genre), \
             track_number = COALESCE(?19, track_number), disc_number = COALESCE(?20, disc_number) \
             WHERE id = ?1 AND status != 'processing' AND COALESCE(generation, 0) < ?12",
            params![
                track.id.to_string(),
                track.duration,
                track.segments,
                track.playlist,
                track.codec,
                track.bitrate,
                track.sample_rate,
                track.channels,
                track.size.map(|s| s.min(i64::MAX as u64) as i64),
                variants,
                track.cover,
                claims_param(claims),
                retire_after,
                source,
                track.album,
                track.year,
                track.album_artist,
                track.genre,
                track.track_number,
                track.disc_number,
            ],
        )
        .map_err(map_err)?;
    Ok(changed == 1)
}

/// Writes every chunk the source yields (inside the caller's transaction).
pub(crate) fn insert_chunks(conn: &Connection, id: &TrackId, chunks: ChunkSource) -> Result<()> {
    let mut insert = conn
        .prepare_cached("INSERT INTO chunks (track_id, name, bytes) VALUES (?1, ?2, ?3)")
        .map_err(map_err)?;
    let id = id.to_string();
    for chunk in chunks {
        let chunk = chunk?;
        insert
            .execute(params![id, chunk.name, &chunk.bytes[..]])
            .map_err(map_err)?;
    }
    Ok(())
}

pub(crate) fn select_track(conn: &Connection, id: &TrackId) -> Result<Track> {
    conn.prepare_cached(&format!(
        "SELECT {TRACK_COLUMNS}, peaks FROM tracks LEFT JOIN track_peaks ON track_id = id \
         WHERE id = ?1"
    ))
    .map_err(map_err)?
    .query_row([id.to_string()], |row| track_from_row_with(row, true))
    .optional()
    .map_err(map_err)?
    .ok_or_else(|| not_found(id))
}
