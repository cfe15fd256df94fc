//! The track as the server describes it, and the parameters of a listing.

use serde::{Deserialize, Deserializer, Serialize};

/// A track as the server describes it (docs/api.md, "Track JSON").
///
/// Tolerant by design, so that this client keeps working with older and newer servers: only
/// `id` is required; every other known field may be missing or `null` (the seed's server sent
/// only `id`, `name` and `author`), and fields this client does not know are kept in `extra`
/// rather than rejected. Serializing a track gives back the fields it was read from, in the
/// server's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// 24 lowercase hex characters (MongoDB ObjectId form).
    pub id: String,
    /// The title.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub name: String,
    /// The artist.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub author: String,
    /// Seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    /// Number of HLS segments.
    #[serde(default)]
    pub segments: Option<u32>,
    /// Path of the HLS media playlist on the gateway: `/function/streaming/<id>/index.m3u8`.
    /// [`Client::playlist_url_of`](crate::Client::playlist_url_of) makes it absolute.
    #[serde(default)]
    pub playlist: Option<String>,
    #[serde(default)]
    pub codec: Option<String>,
    /// kbit/s.
    #[serde(default)]
    pub bitrate: Option<u32>,
    /// Hz.
    #[serde(default)]
    pub sample_rate: Option<u32>,
    #[serde(default)]
    pub channels: Option<u16>,
    /// Bytes of audio kept.
    #[serde(default)]
    pub size: Option<u64>,
    /// RFC 3339, as sent: `2026-11-28T20:30:00Z`.
    #[serde(default)]
    pub created_at: Option<String>,
    /// The uploaded file as the server keeps it, for [`Client::download`](crate::Client::download);
    /// `None` for tracks stored before the server kept originals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Every field this client does not know, as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Track {
    /// The server answered an upload with this track because it has the same file already
    /// (`"existing": true`): nothing new was stored.
    pub fn is_existing(&self) -> bool {
        self.extra.get("existing") == Some(&serde_json::Value::Bool(true))
    }

    /// `processing`, `ready` or `failed`, as the server said (`None` from the seed's server).
    pub fn status(&self) -> Option<&str> {
        self.extra.get("status").and_then(serde_json::Value::as_str)
    }
}

/// The original file of a track, as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `mp3`, `flac`, `wav`, `aiff`, `ogg`, `m4a`, `aac`, ...
    #[serde(default)]
    pub format: Option<String>,
    /// Bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// SHA-256 of the file, lowercase hex.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The name it was uploaded under, when it had one.
    #[serde(default)]
    pub file_name: Option<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

/// The order of a listing (`sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    CreatedAt,
    Name,
    Author,
    Duration,
}

impl SortKey {
    /// The query parameter's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::Name => "name",
            Self::Author => "author",
            Self::Duration => "duration",
        }
    }
}

/// The direction of a listing (`order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

impl SortOrder {
    /// The query parameter's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

/// What to list; `None` leaves the server's default (all tracks, first 100, oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Case-insensitive substring of the title or the artist (`q`).
    pub query: Option<String>,
    /// At most this many tracks (server default 100, at most 1000).
    pub limit: Option<u32>,
    /// Skip this many matching tracks first.
    pub offset: Option<u64>,
    pub sort: Option<SortKey>,
    pub order: Option<SortOrder>,
}

impl ListParams {
    /// The query string's pairs, in a stable order.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(query) = &self.query {
            pairs.push(("q", query.clone()));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(offset) = self.offset {
            pairs.push(("offset", offset.to_string()));
        }
        if let Some(sort) = self.sort {
            pairs.push(("sort", sort.as_str().to_owned()));
        }
        if let Some(order) = self.order {
            pairs.push(("order", order.as_str().to_owned()));
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{"id":"65a1f0c2e4b0a1b2c3d4e5f6","name":"Like a Prayer","author":"Madonna","duration":240.013,"segments":24,"playlist":"/function/streaming/65a1f0c2e4b0a1b2c3d4e5f6/index.m3u8","codec":"mp3","bitrate":128,"sample_rate":44100,"channels":2,"size":3840209,"created_at":"2026-11-28T20:30:00Z"}"#;

    #[test]
    fn the_documented_track_reads_and_writes_back_unchanged() {
        let track: Track = serde_json::from_str(FULL).unwrap();
        assert_eq!(track.name, "Like a Prayer");
        assert_eq!(track.duration, Some(240.013));
        assert_eq!(track.channels, Some(2));
        assert!(track.extra.is_empty());
        assert_eq!(serde_json::to_string(&track).unwrap(), FULL);
    }

    #[test]
    fn the_source_is_read_when_sent() {
        let track: Track = serde_json::from_str(
            r#"{"id":"x","source":{"format":"flac","size":12,"sha256":"ab","file_name":"a.flac"}}"#,
        )
        .unwrap();
        let source = track.source.unwrap();
        assert_eq!(source.format.as_deref(), Some("flac"));
        assert_eq!(source.size, Some(12));
        assert_eq!(source.file_name.as_deref(), Some("a.flac"));
        assert!(track.extra.is_empty());
    }

    #[test]
    fn the_seeds_three_fields_are_enough() {
        let track: Track = serde_json::from_str(r#"{"id":"x","name":null,"author":"A"}"#).unwrap();
        assert_eq!(track.id, "x");
        assert_eq!(track.name, "");
        assert_eq!(track.author, "A");
        assert_eq!(track.duration, None);
        assert_eq!(track.playlist, None);
        let bare: Track = serde_json::from_str(r#"{"id":"y"}"#).unwrap();
        assert_eq!(bare.author, "");
    }

    #[test]
    fn unknown_fields_are_kept() {
        let track: Track =
            serde_json::from_str(r#"{"id":"x","codec":null,"loudness":-14.2,"tags":["a"]}"#)
                .unwrap();
        assert_eq!(track.extra["loudness"], serde_json::json!(-14.2));
        assert_eq!(track.extra["tags"], serde_json::json!(["a"]));
        let back = serde_json::to_value(&track).unwrap();
        assert_eq!(back["loudness"], serde_json::json!(-14.2));
    }

    #[test]
    fn list_params_become_query_pairs() {
        assert!(ListParams::default().pairs().is_empty());
        let params = ListParams {
            query: Some("mad".into()),
            limit: Some(5),
            offset: Some(10),
            sort: Some(SortKey::Duration),
            order: Some(SortOrder::Desc),
        };
        assert_eq!(
            params.pairs(),
            [
                ("q", "mad".to_owned()),
                ("limit", "5".to_owned()),
                ("offset", "10".to_owned()),
                ("sort", "duration".to_owned()),
                ("order", "desc".to_owned()),
            ]
        );
    }
}
