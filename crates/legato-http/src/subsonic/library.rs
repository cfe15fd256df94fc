//! The library as Subsonic apps browse it: artists, albums and songs grouped from the tracks'
//! tags, held in memory and rebuilt when the store's [`library_version`] changes.
//!
//! Grouping and ordering over 100,000 tracks would be an aggregation per request in either
//! backend (and FerretDB aggregates slowly); one snapshot, rebuilt in the background at most
//! once per [`MIN_REBUILD_INTERVAL`], answers every browse and search from memory and is
//! shared by all requests. Media endpoints read the track itself from the store.
//!
//! The library is read whole once, at the first request. After that a rebuild reads only what
//! changed since ([`Catalog::changes_since`](legato_store::Catalog::changes_since)) and applies it
//! to the tracks the snapshot already holds; it reads everything again only when the store
//! cannot tell what changed (the seed's functions wrote the library).
//!
//! [`library_version`]: legato_store::Catalog::library_version

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use legato_store::{DynStore, ListQuery, SortKey, SortOrder, Track, TrackId, TrackStatus, keys};
use tokio::sync::{Mutex, RwLock};

use super::error::SubsonicError;

/// How often the store is asked whether the library changed.
const VERSION_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// While the library changes, it is read whole again at most this often, for what no change
/// record shows (a track the seed's functions deleted); otherwise only changes are read.
const FULL_READ_EVERY: Duration = Duration::from_secs(15 * 60);
/// Rebuilds are at most this frequent, so a bulk import does not rebuild per upload.
const MIN_REBUILD_INTERVAL: Duration = Duration::from_secs(2);
/// Album name of tracks without an album tag, grouped per album artist as Navidrome does.
pub const UNKNOWN_ALBUM: &str = "[Unknown Album]";
/// Words an artist's name is not filed under (`The Beatles` is under B).
pub const IGNORED_ARTICLES: &str = "The El La Los Las Le Les";

/// One playable track.
pub struct Song {
    pub id: TrackId,
    pub title: String,
    pub artist: String,
    pub artist_id: String,
    pub album: usize,
    pub track_number: Option<u32>,
    pub disc_number: Option<u32>,
    pub year: Option<i32>,
    pub genre: Option<String>,
    pub duration: f64,
    pub bitrate: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    /// The original file's format and size, when it was kept.
    pub source_format: Option<String>,
    pub source_size: Option<u64>,
    pub has_cover: bool,
    pub created_at: i64,
    title_key: Box<str>,
}

pub struct Album {
    pub id: String,
    pub name: String,
    pub artist: String,
    pub artist_id: String,
    /// Songs by disc and track number, then title.
    pub songs: Vec<usize>,
    pub duration: f64,
    pub year: Option<i32>,
    pub genre: Option<String>,
    /// The song whose cover stands for the album.
    pub cover_song: Option<usize>,
    /// The newest song's time: when the album was last added to.
    pub created_at: i64,
    words: Box<[Box<str>]>,
    name_key: Box<str>,
}

pub struct Artist {
    pub id: String,
    pub name: String,
    /// Albums whose album artist this is.
    pub albums: Vec<usize>,
    /// Other albums with a track by this artist.
    pub appears_on: Vec<usize>,
    words: Box<[Box<str>]>,
    pub name_key: Box<str>,
}

pub struct GenreCount {
    pub name: String,
    pub songs: u64,
    pub albums: u64,
}

/// A consistent picture of the library at one version.
#[derive(Default)]
pub struct Library {
    pub songs: Vec<Song>,
    pub albums: Vec<Album>,
    pub artists: Vec<Artist>,
    pub genres: Vec<GenreCount>,
    song_index: HashMap<TrackId, usize>,
    /// Songs by the words of their title, artist and album.
    song_words: WordIndex,
    album_index: HashMap<String, usize>,
    artist_index: HashMap<String, usize>,
    /// Albums in name order, and by artist then name.
    pub albums_by_name: Vec<usize>,
    pub albums_by_artist: Vec<usize>,
    /// Albums, newest first.
    pub albums_newest: Vec<usize>,
    /// Artists (with at least one album) in name order.
    pub artists_by_name: Vec<usize>,
    /// The same artists grouped by the letter they are filed under, `#` last.
    pub artists_by_letter: Vec<(String, Vec<usize>)>,
    /// Milliseconds since the epoch of the newest change seen (for `lastModified`).
    pub last_modified: i64,
}

/// The letter an artist is filed under (articles ignored), `#` for anything else.
fn index_letter(name: &str) -> String {
    let mut rest = name.trim();
    for article in IGNORED_ARTICLES.split(' ') {
        if let Some(after) = rest.strip_prefix(article).and_then(|r| r.strip_prefix(' ')) {
            rest = after;
            break;
        }
    }
    match keys::fold(rest).chars().next() {
        Some(c) if c.is_alphabetic() => c.to_uppercase().collect(),
        _ => "#".into(),
    }
}

/// An id for an artist or album name: stable across rebuilds and processes.
fn name_id(prefix: &str, key: &str) -> String {
    format!(
        "{prefix}{:016x}",
        xxhash_rust::xxh3::xxh3_64(key.as_bytes())
    )
}

fn words_of(texts: &[&str]) -> Box<[Box<str>]> {
    let mut words: Vec<Box<str>> = Vec::new();
    for text in texts {
        for word in keys::words(&keys::fold(text)) {
            if !words.iter().any(|w| &**w == word) {
                words.push(word.into());
            }
        }
    }
    words.into_boxed_slice()
}

/// Whether every query word starts a word of `words`.
fn matches(words: &[Box<str>], query: &[String]) -> bool {
    query
        .iter()
        .all(|q| words.iter().any(|w| w.starts_with(q.as_str())))
}

impl Library {
    /// The artist of this name (case and accents folded), added when new.
    fn artist_entry(&mut self, name: &str) -> usize {
        let key = keys::fold(name);
        let id = name_id("ar-", &key);
        if let Some(&index) = self.artist_index.get(&id) {
            return index;
        }
        self.artists.push(Artist {
            id: id.clone(),
            name: name.to_owned(),
            albums: Vec::new(),
            appears_on: Vec::new(),
            words: words_of(&[name]),
            name_key: key.into(),
        });
        self.artist_index.insert(id, self.artists.len() - 1);
        self.artists.len() - 1
    }

    /// Groups ready tracks into albums and artists.
    pub fn build(tracks: Vec<Track>) -> Self {
        let mut library = Library::default();
        let mut album_keys: HashMap<(String, String), usize> = HashMap::new();
        let mut song_words: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let mut genres: HashMap<String, (String, u64, std::collections::HashSet<usize>)> =
            HashMap::new();
        for track in tracks {
            if track.status != TrackStatus::Ready {
                continue;
            }
            let album_artist = track
                .album_artist
                .clone()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or_else(|| track.author.clone());
            let album_name = track
                .album
                .clone()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or_else(|| UNKNOWN_ALBUM.to_owned());
            let artist_key = keys::fold(&album_artist);
            let album_key = keys::fold(&album_name);
            let artist_index = library.artist_entry(&album_artist);
            let album = *album_keys
                .entry((artist_key.clone(), album_key.clone()))
                .or_insert_with(|| {
                    let id = name_id("al-", &format!("{artist_key}\u{0}{album_key}"));
                    library.albums.push(Album {
                        id: id.clone(),
                        name: album_name.clone(),
                        artist: album_artist.clone(),
                        artist_id: library.artists[artist_index].id.clone(),
                        songs: Vec::new(),
                        duration: 0.0,
                        year: None,
                        genre: None,
                        cover_song: None,
                        created_at: 0,
                        words: words_of(&[&album_name, &album_artist]),
                        name_key: album_key.clone().into(),
                    });
                    library.album_index.insert(id, library.albums.len() - 1);
                    library.artists[artist_index]
                        .albums
                        .push(library.albums.len() - 1);
                    library.albums.len() - 1
                });
            // A track artist apart from the album's (a compilation) is an artist too, whose
            // page lists the albums they appear on.
            let track_artist = library.artist_entry(&track.author);
            if track_artist != artist_index
                && library.artists[track_artist].appears_on.last() != Some(&album)
                && !library.artists[track_artist].appears_on.contains(&album)
            {
                library.artists[track_artist].appears_on.push(album);
            }
            let index = library.songs.len();
            for word in words_of(&[&track.name, &track.author, &album_name]) {
                song_words
                    .entry(word)
                    .or_default()
                    .push(u32::try_from(index).unwrap_or(u32::MAX));
            }
            let (source_format, source_size) = match &track.source {
                Some(source) => (Some(source.format.clone()), Some(source.size)),
                None => (None, None),
            };
            let song = Song {
                id: track.id,
                title_key: keys::fold(&track.name).into(),
                artist_id: library.artists[track_artist].id.clone(),
                title: track.name,
                artist: track.author,
                album,
                track_number: track.track_number,
                disc_number: track.disc_number,
                year: track.year,
                genre: track.genre.clone(),
                duration: track.duration,
                bitrate: track.bitrate,
                sample_rate: track.sample_rate,
                channels: track.channels,
                source_format,
                source_size,
                has_cover: track.cover.is_some(),
                created_at: track.created_at,
            };
            let entry = &mut library.albums[album];
            entry.songs.push(index);
            entry.duration += song.duration;
            entry.year = entry.year.or(song.year);
            entry.genre = entry.genre.clone().or_else(|| song.genre.clone());
            if entry.cover_song.is_none() && song.has_cover {
                entry.cover_song = Some(index);
            }
            entry.created_at = entry.created_at.max(song.created_at);
            library.last_modified = library.last_modified.max(song.created_at);
            if let Some(genre) = &song.genre {
                let counts = genres
                    .entry(keys::fold(genre))
                    .or_insert_with(|| (genre.clone(), 0, Default::default()));
                counts.1 += 1;
                counts.2.insert(album);
            }
            library.song_index.insert(song.id, index);
            library.songs.push(song);
        }
        let mut song_words: Vec<(Box<str>, Vec<u32>)> = song_words.into_iter().collect();
        song_words.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        library.song_words = WordIndex { words: song_words };
        let songs = &library.songs;
        for album in &mut library.albums {
            album.songs.sort_by(|&a, &b| {
                let (a, b) = (&songs[a], &songs[b]);
                (
                    a.disc_number.unwrap_or(1),
                    a.track_number.unwrap_or(u32::MAX),
                )
                    .cmp(&(
                        b.disc_number.unwrap_or(1),
                        b.track_number.unwrap_or(u32::MAX),
                    ))
                    .then_with(|| a.title_key.cmp(&b.title_key))
            });
        }
        let albums = &library.albums;
        let artists = &library.artists;
        let mut by_name: Vec<usize> = (0..albums.len()).collect();
        by_name.sort_by(|&a, &b| albums[a].name_key.cmp(&albums[b].name_key));
        let mut by_artist: Vec<usize> = (0..albums.len()).collect();
        by_artist.sort_by(|&a, &b| {
            let (x, y) = (&albums[a], &albums[b]);
            let ax = &artists[library.artist_index[&x.artist_id]].name_key;
            let ay = &artists[library.artist_index[&y.artist_id]].name_key;
            ax.cmp(ay).then_with(|| x.name_key.cmp(&y.name_key))
        });
        let mut newest: Vec<usize> = (0..albums.len()).collect();
        newest.sort_by(|&a, &b| albums[b].created_at.cmp(&albums[a].created_at));
        let mut artists_by_name: Vec<usize> = (0..artists.len())
            .filter(|&i| !artists[i].albums.is_empty())
            .collect();
        artists_by_name.sort_by(|&a, &b| artists[a].name_key.cmp(&artists[b].name_key));
        library.albums_by_name = by_name;
        library.albums_by_artist = by_artist;
        library.albums_newest = newest;
        let mut by_letter: Vec<(String, Vec<usize>)> = Vec::new();
        for &i in &artists_by_name {
            let letter = index_letter(&artists[i].name);
            match by_letter.iter_mut().find(|(l, _)| *l == letter) {
                Some((_, list)) => list.push(i),
                None => by_letter.push((letter, vec![i])),
            }
        }
        by_letter.sort_by(|a, b| (a.0 == "#").cmp(&(b.0 == "#")).then_with(|| a.0.cmp(&b.0)));
        library.artists_by_letter = by_letter;
        library.artists_by_name = artists_by_name;
        let mut genres: Vec<GenreCount> = genres
            .into_values()
            .map(|(name, songs, albums)| GenreCount {
                name,
                songs,
                albums: albums.len() as u64,
            })
            .collect();
        genres.sort_by_cached_key(|g| keys::fold(&g.name));
        library.genres = genres;
        library
    }

    /// This library with `changed` tracks added or replaced and `deleted` ones removed: the
    /// tracks it was built from, as far as building reads them, grouped again.
    pub fn with_changes(&self, changed: Vec<Track>, deleted: &[TrackId]) -> Library {
        let mut tracks: HashMap<TrackId, Track> = self
            .songs
            .iter()
            .map(|song| (song.id, self.track_of(song)))
            .collect();
        for track in changed {
            tracks.insert(track.id, track);
        }
        for id in deleted {
            tracks.remove(id);
        }
        let mut tracks: Vec<Track> = tracks.into_values().collect();
        tracks.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Library::build(tracks)
    }

    /// The track a song was built from, with what [`build`](Self::build) reads of it.
    fn track_of(&self, song: &Song) -> Track {
        let album = &self.albums[song.album];
        Track {
            id: song.id,
            name: song.title.clone(),
            author: song.artist.clone(),
            duration: song.duration,
            segments: 0,
            playlist: String::new(),
            codec: None,
            bitrate: song.bitrate,
            sample_rate: song.sample_rate,
            channels: song.channels,
            size: None,
            created_at: song.created_at,
            album: Some(album.name.clone()),
            year: song.year,
            album_artist: Some(album.artist.clone()),
            genre: song.genre.clone(),
            track_number: song.track_number,
            disc_number: song.disc_number,
            status: TrackStatus::Ready,
            error: None,
            variants: Vec::new(),
            cover: song.has_cover.then(String::new),
            analysis: None,
            source: match (&song.source_format, song.source_size) {
                (Some(format), Some(size)) => Some(legato_store::SourceInfo {
                    format: format.clone(),
                    size,
                    sha256: String::new(),
                    file_name: None,
                    pieces: 0,
                    remainder: None,
                }),
                _ => None,
            },
        }
    }

    pub fn song(&self, id: &TrackId) -> Option<&Song> {
        self.song_index.get(id).map(|&i| &self.songs[i])
    }

    pub fn song_by_text(&self, id: &str) -> Option<&Song> {
        self.song(&id.parse().ok()?)
    }

    pub fn album(&self, id: &str) -> Option<&Album> {
        self.album_index.get(id).map(|&i| &self.albums[i])
    }

    pub fn artist(&self, id: &str) -> Option<&Artist> {
        self.artist_index.get(id).map(|&i| &self.artists[i])
    }

    pub fn album_of(&self, song: &Song) -> &Album {
        &self.albums[song.album]
    }

    /// The pages asked for of the artists, albums and songs matching every word of `query`
    /// (a word matches the start of a word, case and accents ignored); an empty query
    /// matches everything.
    pub fn search(&self, query: &str, pages: SearchPages) -> SearchHits {
        let words = keys::query_words(query);
        let artists = self
            .artists_by_name
            .iter()
            .copied()
            .filter(|&i| matches(&self.artists[i].words, &words))
            .skip(pages.artists.0)
            .take(pages.artists.1)
            .collect();
        let albums = self
            .albums_by_name
            .iter()
            .copied()
            .filter(|&i| matches(&self.albums[i].words, &words))
            .skip(pages.albums.0)
            .take(pages.albums.1)
            .collect();
        let songs = self
            .song_words
            .matching(&words, self.songs.len(), pages.songs);
        SearchHits {
            artists,
            albums,
            songs,
        }
    }
}

/// Each distinct folded word once, in order, with the songs that have it (in order): the
/// words a query word is a prefix of are one range, found by binary search, so a search
/// costs what it matches rather than a pass over every song.
#[derive(Default)]
struct WordIndex {
    words: Vec<(Box<str>, Vec<u32>)>,
}

impl WordIndex {
    /// Songs (of `len`) with, for every query word, a word that it starts; all of them for
    /// a query without words.
    fn matching(
        &self,
        query: &[String],
        len: usize,
        (offset, count): (usize, usize),
    ) -> Vec<usize> {
        let mut all: Option<Vec<bool>> = None;
        for prefix in query {
            let mut hit = vec![false; len];
            let start = self
                .words
                .partition_point(|(word, _)| word.as_ref() < prefix.as_str());
            for (_, songs) in self.words[start..]
                .iter()
                .take_while(|(word, _)| word.starts_with(prefix.as_str()))
            {
                for &song in songs {
                    if let Some(slot) = hit.get_mut(song as usize) {
                        *slot = true;
                    }
                }
            }
            all = Some(match all {
                None => hit,
                Some(mut all) => {
                    for (kept, found) in all.iter_mut().zip(hit) {
                        *kept &= found;
                    }
                    all
                }
            });
        }
        match all {
            None => (0..len).skip(offset).take(count).collect(),
            Some(all) => all
                .iter()
                .enumerate()
                .filter_map(|(i, &hit)| hit.then_some(i))
                .skip(offset)
                .take(count)
                .collect(),
        }
    }
}

/// Which part of each list a search returns: (offset, count).
#[derive(Debug, Clone, Copy)]
pub struct SearchPages {
    pub artists: (usize, usize),
    pub albums: (usize, usize),
    pub songs: (usize, usize),
}

#[cfg(test)]
impl SearchPages {
    pub const ALL: Self = Self {
        artists: (0, usize::MAX),
        albums: (0, usize::MAX),
        songs: (0, usize::MAX),
    };
}

/// Indexes into a [`Library`]'s vectors.
pub struct SearchHits {
    pub artists: Vec<usize>,
    pub albums: Vec<usize>,
    pub songs: Vec<usize>,
}

struct Snapshot {
    library: Arc<Library>,
    version: u64,
    built: Instant,
    /// Where the store's changes are followed from (0: they cannot be).
    cursor: u64,
    /// When the library was last read whole.
    read_whole: Instant,
}

/// The current [`Library`], shared; rebuilt in the background when the store changes.
pub struct LibraryCache {
    store: DynStore,
    current: RwLock<Option<Snapshot>>,
    last_check: Mutex<Instant>,
    rebuilding: Arc<std::sync::atomic::AtomicBool>,
}

impl LibraryCache {
    pub fn new(store: DynStore) -> Arc<Self> {
        Arc::new(Self {
            store,
            current: RwLock::new(None),
            last_check: Mutex::new(Instant::now()),
            rebuilding: Arc::default(),
        })
    }

    /// The library: the first call builds it; later calls answer from the snapshot and, at
    /// most once a second, ask the store whether it changed (then rebuild in the background,
    /// answering from the old snapshot meanwhile).
    pub async fn get(self: &Arc<Self>) -> Result<Arc<Library>, SubsonicError> {
        if let Some(snapshot) = &*self.current.read().await {
            let library = snapshot.library.clone();
            let (version, built) = (snapshot.version, snapshot.built);
            self.check_in_background(version, built);
            return Ok(library);
        }
        let mut current = self.current.write().await;
        if let Some(snapshot) = &*current {
            return Ok(snapshot.library.clone());
        }
        let snapshot = build(&self.store).await?;
        let library = snapshot.library.clone();
        *current = Some(snapshot);
        Ok(library)
    }

    /// Rebuilds now, if the store changed since the snapshot (for `startScan`).
    pub async fn refresh(self: &Arc<Self>) -> Result<Arc<Library>, SubsonicError> {
        let version = self.store.library_version().await?;
        let previous = match &*self.current.read().await {
            Some(snapshot) if snapshot.version == version => return self.get().await,
            Some(snapshot) => Some((
                snapshot.library.clone(),
                snapshot.cursor,
                snapshot.read_whole,
            )),
            None => None,
        };
        let snapshot = match previous {
            Some((library, cursor, read_whole)) => {
                follow(&self.store, library, cursor, version, read_whole).await?
            }
            None => build(&self.store).await?,
        };
        *self.current.write().await = Some(snapshot);
        self.get().await
    }

    fn check_in_background(self: &Arc<Self>, version: u64, built: Instant) {
        let Ok(mut last) = self.last_check.try_lock() else {
            return;
        };
        if last.elapsed() < VERSION_CHECK_INTERVAL
            || built.elapsed() < MIN_REBUILD_INTERVAL
            || self
                .rebuilding
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        *last = Instant::now();
        let cache = self.clone();
        tokio::spawn(async move {
            let result = async {
                let now = cache.store.library_version().await?;
                if now != version {
                    let previous = cache
                        .current
                        .read()
                        .await
                        .as_ref()
                        .filter(|s| s.read_whole.elapsed() < FULL_READ_EVERY)
                        .map(|s| (s.library.clone(), s.cursor, s.read_whole));
                    let snapshot = match previous {
                        Some((library, cursor, read_whole)) => {
                            follow(&cache.store, library, cursor, now, read_whole).await?
                        }
                        None => build(&cache.store).await?,
                    };
                    *cache.current.write().await = Some(snapshot);
                }
                Ok::<_, SubsonicError>(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e.message, "could not refresh the Subsonic library");
            }
            cache
                .rebuilding
                .store(false, std::sync::atomic::Ordering::Release);
        });
    }
}

/// The snapshot after the changes since `cursor`, applied to `library`'s tracks; the whole
/// library read again when the store cannot tell what changed.
async fn follow(
    store: &DynStore,
    library: Arc<Library>,
    cursor: u64,
    version: u64,
    read_whole: Instant,
) -> Result<Snapshot, SubsonicError> {
    let Some(changes) = store.changes_since(cursor).await? else {
        return build(store).await;
    };
    let started = Instant::now();
    let (changed, deleted) = (changes.changed.len(), changes.deleted.len());
    let library = tokio::task::spawn_blocking(move || {
        library.with_changes(changes.changed, &changes.deleted)
    })
    .await
    .map_err(|e| SubsonicError::generic(format!("the library index failed: {e}")))?;
    tracing::info!(
        songs = library.songs.len(),
        changed,
        deleted,
        read = "changes",
        ms = started.elapsed().as_millis() as u64,
        "Subsonic library updated"
    );
    Ok(Snapshot {
        library: Arc::new(library),
        version,
        built: Instant::now(),
        cursor: changes.cursor,
        read_whole,
    })
}

/// Reads every track (without waveforms) and groups them, off the async workers.
async fn build(store: &DynStore) -> Result<Snapshot, SubsonicError> {
    // The cursor and the version first: a change during the read is then seen by the next
    // check (and read again, which applying changes allows).
    let cursor = store.change_cursor().await?;
    let version = store.library_version().await?;
    let started = Instant::now();
    let query = ListQuery {
        sort: SortKey::CreatedAt,
        order: SortOrder::Asc,
        ..ListQuery::default()
    };
    let mut tracks: Vec<Track> = store.stream_tracks(&query).await?.try_collect().await?;
    for track in &mut tracks {
        track.analysis = None;
        track.variants = Vec::new();
    }
    let library = tokio::task::spawn_blocking(move || Library::build(tracks))
        .await
        .map_err(|e| SubsonicError::generic(format!("the library index failed: {e}")))?;
    tracing::info!(
        songs = library.songs.len(),
        albums = library.albums.len(),
        artists = library.artists.len(),
        read = "all",
        ms = started.elapsed().as_millis() as u64,
        "Subsonic library indexed"
    );
    Ok(Snapshot {
        library: Arc::new(library),
        version,
        built: Instant::now(),
        cursor,
        read_whole: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use legato_store::conformance::sample_track;

    fn track(name: &str, author: &str, album: Option<&str>, number: Option<u32>) -> Track {
        let mut track = sample_track(name, author);
        track.album = album.map(Into::into);
        track.album_artist = None;
        track.track_number = number;
        track.disc_number = None;
        track
    }

    #[test]
    fn tracks_group_into_albums_by_album_artist() {
        let mut compilation = track("Three", "Carla", Some("Hits"), Some(1));
        compilation.album_artist = Some("Various Artists".into());
        let mut other = track("Four", "Dan", Some("hits"), Some(2));
        other.album_artist = Some("various artists".into());
        let library = Library::build(vec![
            track("Two", "Ana", Some("First"), Some(2)),
            track("One", "Ana", Some("First"), Some(1)),
            track("Loose", "Ana", None, None),
            compilation,
            other,
        ]);
        assert_eq!(library.songs.len(), 5);
        assert_eq!(library.albums.len(), 3, "First, [Unknown Album], Hits");
        let first = library
            .albums
            .iter()
            .find(|a| a.name == "First")
            .expect("album");
        let titles: Vec<&str> = first
            .songs
            .iter()
            .map(|&i| library.songs[i].title.as_str())
            .collect();
        assert_eq!(titles, ["One", "Two"], "in track order");
        let hits = library
            .albums
            .iter()
            .find(|a| a.name == "Hits")
            .expect("album");
        assert_eq!(hits.songs.len(), 2, "case and accents fold together");
        assert_eq!(hits.artist, "Various Artists");
        assert_eq!(library.artists_by_name.len(), 2, "Ana and Various Artists");
        let carla = library
            .artists
            .iter()
            .find(|a| a.name == "Carla")
            .expect("a track artist is an artist");
        assert!(carla.albums.is_empty());
        assert_eq!(carla.appears_on.len(), 1, "on the compilation");
        let three = library
            .songs
            .iter()
            .find(|s| s.title == "Three")
            .expect("song");
        assert_eq!(three.artist_id, carla.id);
        assert!(library.artist(&carla.id).is_some());
        assert!(library.album(&hits.id).is_some());
        assert_eq!(library.search("hit", SearchPages::ALL).albums.len(), 1);
        assert_eq!(library.search("ana fir", SearchPages::ALL).songs.len(), 2);
        assert_eq!(library.search("", SearchPages::ALL).songs.len(), 5);
    }

    #[test]
    fn searches_match_word_starts_in_every_field() {
        let library = Library::build(vec![
            track("Amber Night", "Ada Berg", Some("Blue Harbor"), Some(1)),
            track("Amber Motel", "Bruno Costa", Some("Échos"), Some(1)),
            track("Dawn", "Ada Berg", Some("Blue Harbor"), Some(2)),
        ]);
        let titles = |query: &str| -> Vec<&str> {
            library
                .search(query, SearchPages::ALL)
                .songs
                .iter()
                .map(|&i| library.songs[i].title.as_str())
                .collect()
        };
        assert_eq!(titles("amb"), ["Amber Night", "Amber Motel"]);
        assert_eq!(
            titles("amber ada"),
            ["Amber Night"],
            "every word must match"
        );
        assert_eq!(
            titles("echos"),
            ["Amber Motel"],
            "accents folded, album searched"
        );
        assert_eq!(titles("harbor ber"), ["Amber Night", "Dawn"]);
        assert!(titles("mber").is_empty(), "words match from their start");
        assert_eq!(titles("\"\"").len(), 3, "a query without words matches all");
        let the = Library::build(vec![track("x", "The Zombies", Some("Odessey"), None)]);
        assert_eq!(the.artists_by_letter[0].0, "Z");
    }

    /// Changes applied to a library give the library built from the changed tracks.
    #[test]
    fn changes_apply_as_a_rebuild_would() {
        let mut a = track("A", "Artist", Some("One"), Some(1));
        a.genre = Some("Jazz".into());
        a.year = Some(1999);
        let b = track("B", "Artist", Some("One"), Some(2));
        let c = track("C", "Other", Some("Two"), None);
        let before = Library::build(vec![a.clone(), b.clone(), c.clone()]);
        let mut renamed = b.clone();
        renamed.name = "B, renamed".into();
        renamed.album = Some("Three".into());
        let d = track("D", "New", None, None);
        let after = before.with_changes(vec![renamed.clone(), d.clone()], &[c.id]);
        let expected = Library::build(vec![a, renamed, d]);
        let view = |l: &Library| {
            let mut songs: Vec<String> = l
                .songs
                .iter()
                .map(|s| {
                    format!(
                        "{} {} / {} / {} / {:?} / {:?}",
                        s.id,
                        s.title,
                        l.albums[s.album].name,
                        l.albums[s.album].artist,
                        s.track_number,
                        s.genre
                    )
                })
                .collect();
            songs.sort();
            let mut albums: Vec<String> = l.albums.iter().map(|a| a.id.clone()).collect();
            albums.sort();
            (songs, albums, l.artists.len(), l.last_modified)
        };
        assert_eq!(view(&after), view(&expected));
    }

    #[test]
    fn tracks_not_ready_are_left_out() {
        let mut pending = track("Wait", "Ana", Some("A"), None);
        pending.status = TrackStatus::Processing;
        let library = Library::build(vec![pending]);
        assert!(library.songs.is_empty() && library.albums.is_empty());
    }
}
