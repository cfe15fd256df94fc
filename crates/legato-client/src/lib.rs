//! A Rust client of Legato's HTTP API (docs/api.md): add, list, show, edit and delete tracks,
//! find a track's playlist, and download its original file. The `legato` command-line client is built on it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), legato_client::ClientError> {
//! use legato_client::{Client, ListParams};
//!
//! let client = Client::new("http://127.0.0.1:8080", None)?;
//! let track = client
//!     .add(std::path::Path::new("song.mp3"), Some("Like a Prayer"), Some("Madonna"), |p| {
//!         eprintln!("{} of {:?} bytes", p.sent, p.total)
//!     })
//!     .await?;
//! let (tracks, total) = client.list(&ListParams::default()).await?;
//! println!("{} of {total}; play {}", tracks.len(), client.playlist_url_of(&track));
//! # Ok(()) }
//! ```
//!
//! Design choices:
//! - **Uploads stream from disk** as `multipart/form-data` (the `song` part, plus `name` and
//!   `author`), never read whole into memory and never base64-encoded; a callback sees the
//!   bytes go out ([`Progress`]).
//! - **Errors keep the server's words.** A refusal is [`ClientError::Api`] with the status and
//!   the stable kebab-case `code` the server sends, so callers switch on codes, not on
//!   messages; failing to get an answer at all is kept apart ([`ClientError::Unreachable`],
//!   [`ClientError::Transport`]) because the remedy differs.
//! - **The model is tolerant** of missing, `null` and unknown fields ([`Track`]), so older
//!   and newer servers both work.
//! - **Plain HTTP only** for now: reqwest is built without a TLS backend, so `https://` URLs are
//!   refused up front with a clear message. Put a TLS-terminating gateway in front, or enable
//!   one of reqwest's TLS features when that is needed.

mod download;
mod error;
mod track;
mod upload;
mod url;

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};

pub use crate::download::{Original, Received, safe_file_name};
pub use crate::error::ClientError;
pub use crate::track::{ListParams, SortKey, SortOrder, Source, Track};
pub use crate::upload::{MAX_COVER_BYTES, Progress, Song};
pub use crate::url::{CRUD_PATH, DEFAULT_URL, ServerUrl};

/// The result of every client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// How long to wait for a connection before calling the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of an error answer read (a proxy's error page can be large).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A client of one Legato server. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: ServerUrl,
    /// `Bearer <key>`, marked sensitive so it never shows in logs.
    authorization: Option<HeaderValue>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field(
                "api_key",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Client {
    /// A client of the server at `base_url`: a gateway root (`http://gw:8080`) or the crud
    /// function's URL (`http://gw:8080/function/crud`). The API key, when given and not
    /// empty, is sent as `Authorization: Bearer <key>`.
    pub fn new(base_url: &str, api_key: Option<&str>) -> Result<Self> {
        Self::with_url(ServerUrl::parse(base_url)?, api_key)
    }

    /// A client of an already parsed server URL.
    pub fn with_url(url: ServerUrl, api_key: Option<&str>) -> Result<Self> {
        let authorization = match api_key.map(str::trim).filter(|key| !key.is_empty()) {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    ClientError::InvalidUrl {
                        url: url.to_string(),
                        reason: "the API key must be printable ASCII".to_owned(),
                    }
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("legato-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Transport {
                url: url.to_string(),
                reason: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            url,
            authorization,
        })
    }

    /// Where this client sends its requests.
    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    /// Uploads a song as a new track and returns it as the server stored it.
    ///
    /// When the server has a track of the very same file already, it stores nothing and
    /// answers with that track: [`Track::is_existing`] tells.
    ///
    /// `song` is a path (`&Path`, `PathBuf`) or a [`Song::reader`]. `name` and `author` are
    /// optional: the server falls back to the file name and an empty artist. `progress` is
    /// called as the body goes out (see [`Progress`]); pass `|_| {}` to ignore it.
    pub async fn add<P>(
        &self,
        song: impl Into<Song>,
        name: Option<&str>,
        author: Option<&str>,
        progress: P,
    ) -> Result<Track>
    where
        P: FnMut(Progress) + Send + 'static,
    {
        let mut form = reqwest::multipart::Form::new();
        if let Some(name) = name {
            form = form.text("name", name.to_owned());
        }
        if let Some(author) = author {
            form = form.text("author", author.to_owned());
        }
        let song = song.into();
        if let Some(cover) = song.cover() {
            form = form.part("cover", upload::cover_part(cover).await?);
        }
        let (part, file_name) = upload::song_part(song, progress).await?;
        // The name exactly, in a field of its own: the part's `filename` cannot carry every
        // name (a newline, an escape character). A server that does not know the field
        // ignores it and takes the part's.
        form = form.text("file_name", file_name);
        form = form.part("song", part);
        let request = self.http.post(self.url.crud().clone()).multipart(form);
        let response = self.send(request).await?;
        json(response).await
    }

    /// The largest upload the server accepts, in bytes, as its health check tells it;
    /// `None` when it does not say (an older server, the seed) or cannot be asked.
    pub async fn upload_limit(&self) -> Option<u64> {
        #[derive(serde::Deserialize)]
        struct Health {
            max_upload_bytes: Option<u64>,
        }
        let url = self.url.track("healthz")?;
        let response = self.send(self.http.get(url)).await.ok()?;
        let health: Health = json(response).await.ok()?;
        health.max_upload_bytes
    }

    /// One page of tracks, and how many tracks match the query in all (`X-Total-Count`).
    pub async fn list(&self, params: &ListParams) -> Result<(Vec<Track>, u64)> {
        let request = self
            .http
            .get(self.url.crud().clone())
            .query(&params.pairs());
        let response = self.send(request).await?;
        let total = response
            .headers()
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let tracks: Vec<Track> = json(response).await?;
        // A server without the header (the seed's) is taken at its word: this is all there is.
        let total = total.unwrap_or_else(|| params.offset.unwrap_or(0) + tracks.len() as u64);
        Ok((tracks, total))
    }

    /// The track whose uploaded file has this SHA-256 (lowercase hex), if the server has one
    /// (of any status: a `failed` one is no reason not to upload again). What an importer asks
    /// before sending a file it may have sent before.
    ///
    /// A server older than this filter ignores it and lists tracks instead; only a track whose
    /// `source.sha256` is the one asked for is taken as an answer, so such a server simply
    /// looks like it has none.
    pub async fn find_by_sha256(&self, sha256: &str) -> Result<Option<Track>> {
        let request = self
            .http
            .get(self.url.crud().clone())
            .query(&[("sha256", sha256), ("limit", "1")]);
        let tracks: Vec<Track> = json(self.send(request).await?).await?;
        Ok(tracks.into_iter().find(|track| {
            track
                .source
                .as_ref()
                .and_then(|source| source.sha256.as_deref())
                .is_some_and(|hash| hash.eq_ignore_ascii_case(sha256))
        }))
    }

    /// The track with this id.
    pub async fn get(&self, id: &str) -> Result<Track> {
        let request = self.http.get(self.track_url(id)?);
        json(self.send(request).await?).await
    }

    /// Changes the title and/or the artist (`None` leaves a field as it is) and returns the
    /// updated track.
    pub async fn update(
        &self,
        id: &str,
        name: Option<&str>,
        author: Option<&str>,
    ) -> Result<Track> {
        let mut patch = serde_json::Map::new();
        if let Some(name) = name {
            patch.insert("name".into(), name.into());
        }
        if let Some(author) = author {
            patch.insert("author".into(), author.into());
        }
        let request = self.http.patch(self.track_url(id)?).json(&patch);
        json(self.send(request).await?).await
    }

    /// Deletes the track with its playlist and segments.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let request = self.http.delete(self.track_url(id)?);
        let response = self.send(request).await?;
        // The body (`{"deleted": 1}`) adds nothing to the status; drain it so the connection
        // can be reused.
        let _ = response.bytes().await;
        Ok(())
    }

    /// Asks the server to rebuild the track's renditions from its original file with its
    /// current settings (a new `--ladder`…), and returns the track (its `job` entry in
    /// [`Track::extra`] says where the work is). The track stays playable meanwhile; asking
    /// again while a reprocessing is pending changes nothing. Needs the API key when the
    /// server has keys. Refusals are [`ClientError::Api`] with the code `not-found`,
    /// `source-unavailable` (stored before originals were kept) or `still-processing`.
    pub async fn reprocess(&self, id: &str) -> Result<Track> {
        let mut url = self.track_url(id)?;
        url.path_segments_mut()
            .map_err(|()| ClientError::InvalidId(id.to_owned()))?
            .push("reprocess");
        json(self.send(self.http.post(url)).await?).await
    }

    /// Downloads the track's original file, exactly as it was uploaded, into `out`, and
    /// returns its name, type, size and SHA-256. The bytes are checked against the server's
    /// SHA-256 (its ETag), so a file that arrives altered is an error. `progress` sees the
    /// bytes arrive; pass `|_| {}` to ignore it.
    ///
    /// A track stored before the server kept originals has none: that is
    /// [`ClientError::Api`] with the code `source-unavailable`.
    pub async fn download<W, P>(&self, id: &str, out: &mut W, progress: P) -> Result<Original>
    where
        W: tokio::io::AsyncWrite + Unpin,
        P: FnMut(Received),
    {
        let mut url = self.track_url(id)?;
        url.path_segments_mut()
            .map_err(|()| ClientError::InvalidId(id.to_owned()))?
            .push("file");
        let request = self.http.get(url);
        let response = self.send_accepting(request, "*/*").await?;
        download::write_body(response, id, out, progress).await
    }

    /// The absolute URL of the track's HLS media playlist. The track is fetched first, so an
    /// unknown id is an error; with a [`Track`] at hand, use [`playlist_url_of`].
    ///
    /// [`playlist_url_of`]: Self::playlist_url_of
    pub async fn playlist_url(&self, id: &str) -> Result<String> {
        Ok(self.playlist_url_of(&self.get(id).await?))
    }

    /// The absolute URL of `track`'s HLS playlist: the server's playlist path joined to the
    /// gateway root, under its stable name. A reprocessed track's playlist has a generation
    /// prefix (`g2-index.m3u8`) that the next reprocessing retires; `index.m3u8` beside it
    /// always answers the current one, so a URL handed out keeps playing.
    pub fn playlist_url_of(&self, track: &Track) -> String {
        match &track.playlist {
            Some(path) => self.url.join(&stable_playlist_path(path)),
            // The seed's server sent no playlist path; this is where the gateway serves it.
            None => {
                let base = self.url.join("/function/streaming");
                reqwest::Url::parse(&base)
                    .ok()
                    .and_then(|mut url| {
                        url.path_segments_mut()
                            .ok()?
                            .push(&track.id)
                            .push("index.m3u8");
                        Some(url.to_string())
                    })
                    .unwrap_or(base)
            }
        }
    }

    fn track_url(&self, id: &str) -> Result<reqwest::Url> {
        self.url
            .track(id)
            .ok_or_else(|| ClientError::InvalidId(id.to_owned()))
    }

    /// Sends a request with the client's headers; a non-success answer becomes
    /// [`ClientError::Api`].
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        self.send_accepting(request, "application/json").await
    }

    /// [`send`](Self::send) with another `Accept` header.
    async fn send_accepting(
        &self,
        request: reqwest::RequestBuilder,
        accept: &'static str,
    ) -> Result<reqwest::Response> {
        let mut request = request.header(ACCEPT, accept);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::from_reqwest(&e, self.url.root()))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(api_error(response).await)
        }
    }
}

/// Reads a success answer as JSON of type `T`.
async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    let url = response.url().to_string();
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| ClientError::from_reqwest(&e, &url))?;
    serde_json::from_slice(&body).map_err(|e| ClientError::UnexpectedResponse {
        url,
        status,
        detail: e.to_string(),
    })
}

/// Legato's error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    code: String,
    #[serde(default)]
    message: String,
}

/// Turns a non-success answer into [`ClientError::Api`]: Legato's code and message when the
/// body is Legato's, else `http-<status>` and the start of whatever came back.
async fn api_error(mut response: reqwest::Response) -> ClientError {
    let status = response.status();
    // Seconds only: Legato sends no HTTP dates, and a proxy's date is not worth a parser.
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    if let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(&body) {
        return ClientError::Api {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
            retry_after,
        };
    }
    let text: String = String::from_utf8_lossy(&body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    let reason = status.canonical_reason().unwrap_or("error");
    let message = if text.is_empty() {
        format!("the server answered {} {reason}", status.as_u16())
    } else {
        format!("the server answered {} {reason}: {text}", status.as_u16())
    };
    ClientError::Api {
        status: status.as_u16(),
        code: format!("http-{}", status.as_u16()),
        message,
        retry_after,
    }
}

/// `…/g2-index.m3u8` as `…/index.m3u8`; any other path as it is.
fn stable_playlist_path(path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, format!("?{query}")),
        None => (path, String::new()),
    };
    let (folder, name) = path.rsplit_once('/').unwrap_or(("", path));
    let generation = name
        .strip_prefix('g')
        .and_then(|rest| rest.split_once('-'))
        .filter(|(digits, rest)| {
            !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && *rest == "index.m3u8"
        });
    match generation {
        Some(_) if path.contains('/') => format!("{folder}/index.m3u8{query}"),
        Some(_) => format!("index.m3u8{query}"),
        None => format!("{path}{query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::stable_playlist_path;

    #[test]
    fn a_generation_playlist_is_handed_out_under_its_stable_name() {
        let folder = "/function/streaming/65a1f0c2e4b0a1b2c3d4e5f6";
        assert_eq!(
            stable_playlist_path(&format!("{folder}/g2-index.m3u8")),
            format!("{folder}/index.m3u8")
        );
        assert_eq!(
            stable_playlist_path(&format!("{folder}/g12-index.m3u8")),
            format!("{folder}/index.m3u8")
        );
        for kept in [
            "index.m3u8",
            "outputlist.m3u8",
            "g2-64k.m3u8",
            "gx-index.m3u8",
        ] {
            assert_eq!(
                stable_playlist_path(&format!("{folder}/{kept}")),
                format!("{folder}/{kept}")
            );
        }
    }
}
