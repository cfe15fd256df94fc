//! [`Accounts`] on SQLite: users, their API keys, stars, ratings, plays and playlists, in
//! tables of their own (schema version 7). Every per-user row references its user with
//! `ON DELETE CASCADE`, so deleting a user is one statement; playlist entries are rows
//! `(playlist, position, track)`, rewritten whole when a playlist changes (playlists are
//! short, and a patch's positions refer to the list before it).

use async_trait::async_trait;
use legato_store::{
    Accounts, ItemKind, ItemRef, PlayCount, Playlist, PlaylistPatch, Result, StoreError, TrackId,
    User, UserKey, UserMarks,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{SqliteStore, map_err};

/// The tables, created by the step to schema version 7.
pub(crate) const SCHEMA: &str = "
CREATE TABLE users (
    name            TEXT PRIMARY KEY NOT NULL,
    admin           INTEGER NOT NULL DEFAULT 0,
    sealed_password BLOB NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE TABLE user_keys (
    hash       TEXT PRIMARY KEY NOT NULL,
    user       TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX user_keys_by_user ON user_keys (user, label);
CREATE TABLE stars (
    user       TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    item       TEXT NOT NULL,
    starred_at INTEGER NOT NULL,
    PRIMARY KEY (user, kind, item)
) WITHOUT ROWID;
CREATE TABLE ratings (
    user   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    kind   TEXT NOT NULL,
    item   TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    PRIMARY KEY (user, kind, item)
) WITHOUT ROWID;
CREATE TABLE plays (
    user        TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    track_id    TEXT NOT NULL,
    count       INTEGER NOT NULL,
    last_played INTEGER NOT NULL,
    PRIMARY KEY (user, track_id)
) WITHOUT ROWID;
CREATE TABLE playlists (
    id         TEXT PRIMARY KEY NOT NULL,
    owner      TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    comment    TEXT,
    public     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX playlists_by_owner ON playlists (owner);
CREATE INDEX playlists_by_name ON playlists (name, id);
CREATE TABLE playlist_entries (
    playlist_id TEXT NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    track_id    TEXT NOT NULL,
    PRIMARY KEY (playlist_id, position)
) WITHOUT ROWID;
";

/// Longest user name the contract allows, in characters.
const MAX_USER_NAME: usize = 64;
/// Longest album or artist id the contract allows, in characters.
const MAX_ITEM_ID: usize = 128;

const USER_COLUMNS: &str = "name, admin, sealed_password, created_at";
const KEY_COLUMNS: &str = "hash, user, label, created_at";
const PLAYLIST_COLUMNS: &str = "id, owner, name, comment, public, created_at, updated_at";

fn user_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("user {name}"))
}

fn playlist_not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("playlist {id}"))
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        name: row.get(0)?,
        admin: row.get(1)?,
        sealed_password: row.get(2)?,
        created_at: row.get(3)?,
    })
}

fn key_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserKey> {
    Ok(UserKey {
        hash: row.get(0)?,
        user: row.get(1)?,
        label: row.get(2)?,
        created_at: row.get(3)?,
    })
}

fn conversion_error(
    index: usize,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
}

fn track_id_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<TrackId> {
    row.get::<_, String>(index)?
        .parse::<TrackId>()
        .map_err(|e| conversion_error(index, e))
}

fn item_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ItemRef> {
    let kind: String = row.get(0)?;
    let kind = ItemKind::parse(&kind).ok_or_else(|| {
        conversion_error(0, StoreError::Backend(format!("unknown item kind {kind}")))
    })?;
    Ok(ItemRef {
        kind,
        id: row.get(1)?,
    })
}

fn user_exists(conn: &Connection, name: &str) -> Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)")
        .map_err(map_err)?
        .query_row([name], |row| row.get(0))
        .map_err(map_err)
}

fn require_user(conn: &Connection, name: &str) -> Result<()> {
    if user_exists(conn, name)? {
        Ok(())
    } else {
        Err(user_not_found(name))
    }
}

fn check_item(item: &ItemRef) -> Result<()> {
    if item.id.is_empty() || item.id.chars().count() > MAX_ITEM_ID {
        return Err(StoreError::Invalid(format!(
            "an item id has 1 to {MAX_ITEM_ID} characters"
        )));
    }
    Ok(())
}

fn select_playlist(conn: &Connection, id: &str) -> Result<Playlist> {
    let mut playlist = conn
        .prepare_cached(&format!(
            "SELECT {PLAYLIST_COLUMNS} FROM playlists WHERE id = ?1"
        ))
        .map_err(map_err)?
        .query_row([id], playlist_from_row)
        .optional()
        .map_err(map_err)?
        .ok_or_else(|| playlist_not_found(id))?;
    playlist.tracks = select_entries(conn, id)?;
    Ok(playlist)
}

/// A playlist's tracks in order (read along the primary key).
fn select_entries(conn: &Connection, id: &str) -> Result<Vec<TrackId>> {
    conn.prepare_cached(
        "SELECT track_id FROM playlist_entries WHERE playlist_id = ?1 ORDER BY position",
    )
    .map_err(map_err)?
    .query_map([id], |row| track_id_column(row, 0))
    .map_err(map_err)?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(map_err)
}

/// A playlist row without its tracks.
fn playlist_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Playlist> {
    Ok(Playlist {
        id: row.get(0)?,
        owner: row.get(1)?,
        name: row.get(2)?,
        comment: row.get(3)?,
        public: row.get(4)?,
        tracks: Vec::new(),
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

fn write_entries(conn: &Connection, id: &str, tracks: &[TrackId]) -> Result<()> {
    conn.prepare_cached("DELETE FROM playlist_entries WHERE playlist_id = ?1")
        .map_err(map_err)?
        .execute([id])
        .map_err(map_err)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO playlist_entries (playlist_id, position, track_id) VALUES (?1, ?2, ?3)",
        )
        .map_err(map_err)?;
    for (position, track) in tracks.iter().enumerate() {
        insert
            .execute(params![id, position as i64, track.to_string()])
            .map_err(map_err)?;
    }
    Ok(())
}

#[async_trait]
impl Accounts for SqliteStore {
    async fn create_user(&self, user: User) -> Result<User> {
        let length = user.name.chars().count();
        if length == 0 || length > MAX_USER_NAME {
            return Err(StoreError::Invalid(format!(
                "a user name has 1 to {MAX_USER_NAME} characters"
            )));
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            if user_exists(&tx, &user.name)? {
                return Err(StoreError::Invalid(format!(
                    "user {} exists already",
                    user.name
                )));
            }
            tx.execute(
                &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"),
                params![user.name, user.admin, user.sealed_password, user.created_at],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(user)
        })
        .await
    }

    async fn get_user(&self, name: &str) -> Result<User> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"))
                .map_err(map_err)?
                .query_row([&name], user_from_row)
                .optional()
                .map_err(map_err)?
                .ok_or_else(|| user_not_found(&name))
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.read(|conn| {
            conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
                .map_err(map_err)?
                .query_map([], user_from_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)
        })
        .await
    }

    async fn set_user_password(&self, name: &str, sealed_password: Vec<u8>) -> Result<()> {
        let name = name.to_owned();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE users SET sealed_password = ?2 WHERE name = ?1",
                    params![name, sealed_password],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Err(user_not_found(&name));
            }
            Ok(())
        })
        .await
    }

    async fn set_user_admin(&self, name: &str, admin: bool) -> Result<()> {
        let name = name.to_owned();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE users SET admin = ?2 WHERE name = ?1",
                    params![name, admin],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Err(user_not_found(&name));
            }
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        // Keys, stars, ratings, plays, playlists and their entries go with the row
        // (ON DELETE CASCADE).
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM users WHERE name = ?1", [&name])
                .map_err(map_err)?;
            if deleted == 0 {
                return Err(user_not_found(&name));
            }
            Ok(())
        })
        .await
    }

    async fn add_user_key(&self, key: UserKey) -> Result<()> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            require_user(&tx, &key.user)?;
            tx.execute(
                &format!("INSERT INTO user_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"),
                params![key.hash, key.user, key.label, key.created_at],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn find_user_key(&self, hash: &str) -> Result<Option<UserKey>> {
        let hash = hash.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM user_keys WHERE hash = ?1"
            ))
            .map_err(map_err)?
            .query_row([hash], key_from_row)
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn list_user_keys(&self, user: &str) -> Result<Vec<UserKey>> {
        let user = user.to_owned();
        self.read(move |conn| {
            // One snapshot for the check and the list.
            let snapshot = conn.unchecked_transaction().map_err(map_err)?;
            require_user(conn, &user)?;
            let keys = conn
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM user_keys WHERE user = ?1 \
                     ORDER BY created_at, rowid"
                ))
                .map_err(map_err)?
                .query_map([&user], key_from_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            snapshot.commit().map_err(map_err)?;
            Ok(keys)
        })
        .await
    }

    async fn revoke_user_keys(&self, user: &str, label: Option<&str>) -> Result<u64> {
        let (user, label) = (user.to_owned(), label.map(str::to_owned));
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            require_user(&tx, &user)?;
            let removed = tx
                .execute(
                    "DELETE FROM user_keys WHERE user = ?1 AND (?2 IS NULL OR label = ?2)",
                    params![user, label],
                )
                .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(removed as u64)
        })
        .await
    }

    async fn set_starred(
        &self,
        user: &str,
        item: &ItemRef,
        starred: bool,
        at_ms: i64,
    ) -> Result<()> {
        check_item(item)?;
        let (user, item) = (user.to_owned(), item.clone());
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            require_user(&tx, &user)?;
            if starred {
                // Starring twice keeps the first time.
                tx.execute(
                    "INSERT INTO stars (user, kind, item, starred_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT DO NOTHING",
                    params![user, item.kind.as_str(), item.id, at_ms],
                )
            } else {
                tx.execute(
                    "DELETE FROM stars WHERE user = ?1 AND kind = ?2 AND item = ?3",
                    params![user, item.kind.as_str(), item.id],
                )
            }
            .map_err(map_err)?;
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn set_rating(&self, user: &str, item: &ItemRef, rating: u8) -> Result<()> {
        if rating > 5 {
            return Err(StoreError::Invalid(format!(
                "a rating is 0 to 5, not {rating}"
            )));
        }
        check_item(item)?;
        let (user, item) = (user.to_owned(), item.clone());
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            require_user(&tx, &user)?;
            if rating == 0 {
                tx.execute(
                    "DELETE FROM ratings WHERE user = ?1 AND kind = ?2 AND item = ?3",
                    params![user, item.kind.as_str(), item.id],
                )
            } else {
                tx.execute(
                    "INSERT INTO ratings (user, kind, item, rating) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT DO UPDATE SET rating = excluded.rating",
                    params![user, item.kind.as_str(), item.id, rating],
                )
            }
            .map_err(map_err)?;
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn record_play(&self, user: &str, track: &TrackId, at_ms: i64) -> Result<()> {
        let (user, track) = (user.to_owned(), *track);
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            require_user(&tx, &user)?;
            tx.execute(
                "INSERT INTO plays (user, track_id, count, last_played) VALUES (?1, ?2, 1, ?3) \
                 ON CONFLICT DO UPDATE SET count = count + 1, \
                 last_played = MAX(last_played, excluded.last_played)",
                params![user, track.to_string(), at_ms],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn user_marks(&self, user: &str) -> Result<UserMarks> {
        let user = user.to_owned();
        self.read(move |conn| {
            let snapshot = conn.unchecked_transaction().map_err(map_err)?;
            require_user(conn, &user)?;
            let stars = conn
                .prepare_cached("SELECT kind, item, starred_at FROM stars WHERE user = ?1")
                .map_err(map_err)?
                .query_map([&user], |row| Ok((item_from_row(row)?, row.get(2)?)))
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            let ratings = conn
                .prepare_cached("SELECT kind, item, rating FROM ratings WHERE user = ?1")
                .map_err(map_err)?
                .query_map([&user], |row| Ok((item_from_row(row)?, row.get(2)?)))
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            let plays = conn
                .prepare_cached("SELECT track_id, count, last_played FROM plays WHERE user = ?1")
                .map_err(map_err)?
                .query_map([&user], |row| {
                    Ok(PlayCount {
                        track_id: track_id_column(row, 0)?,
                        count: row.get::<_, i64>(1)?.max(0) as u64,
                        last_played: row.get(2)?,
                    })
                })
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            snapshot.commit().map_err(map_err)?;
            Ok(UserMarks {
                stars,
                ratings,
                plays,
            })
        })
        .await
    }

    async fn create_playlist(&self, playlist: Playlist) -> Result<Playlist> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            require_user(&tx, &playlist.owner)?;
            tx.execute(
                &format!(
                    "INSERT INTO playlists ({PLAYLIST_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    playlist.id,
                    playlist.owner,
                    playlist.name,
                    playlist.comment,
                    playlist.public,
                    playlist.created_at,
                    playlist.updated_at,
                ],
            )
            .map_err(map_err)?;
            write_entries(&tx, &playlist.id, &playlist.tracks)?;
            tx.commit().map_err(map_err)?;
            Ok(playlist)
        })
        .await
    }

    async fn get_playlist(&self, id: &str) -> Result<Playlist> {
        let id = id.to_owned();
        self.read(move |conn| {
            let snapshot = conn.unchecked_transaction().map_err(map_err)?;
            let playlist = select_playlist(conn, &id)?;
            snapshot.commit().map_err(map_err)?;
            Ok(playlist)
        })
        .await
    }

    async fn list_playlists(&self) -> Result<Vec<Playlist>> {
        self.read(|conn| {
            let snapshot = conn.unchecked_transaction().map_err(map_err)?;
            let mut playlists = conn
                .prepare_cached(&format!(
                    "SELECT {PLAYLIST_COLUMNS} FROM playlists ORDER BY name, id"
                ))
                .map_err(map_err)?
                .query_map([], playlist_from_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            // Every entry in one pass, in playlist order, rather than a query per playlist.
            let mut entries = conn
                .prepare_cached(
                    "SELECT playlist_id, track_id FROM playlist_entries \
                     ORDER BY playlist_id, position",
                )
                .map_err(map_err)?;
            let mut by_playlist: std::collections::HashMap<String, Vec<TrackId>> =
                std::collections::HashMap::new();
            let rows = entries
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, track_id_column(row, 1)?))
                })
                .map_err(map_err)?;
            for row in rows {
                let (playlist, track) = row.map_err(map_err)?;
                by_playlist.entry(playlist).or_default().push(track);
            }
            for playlist in &mut playlists {
                playlist.tracks = by_playlist.remove(&playlist.id).unwrap_or_default();
            }
            snapshot.commit().map_err(map_err)?;
            Ok(playlists)
        })
        .await
    }

    async fn visible_playlists(&self, viewer: &str) -> Result<Vec<Playlist>> {
        let viewer = viewer.to_owned();
        self.read(move |conn| {
            let snapshot = conn.unchecked_transaction().map_err(map_err)?;
            let mut playlists = conn
                .prepare_cached(&format!(
                    "SELECT {PLAYLIST_COLUMNS} FROM playlists WHERE owner = ?1 OR public \
                     ORDER BY name, id"
                ))
                .map_err(map_err)?
                .query_map([viewer], playlist_from_row)
                .map_err(map_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_err)?;
            // Only these playlists' entries, each along the primary key.
            for playlist in &mut playlists {
                playlist.tracks = select_entries(conn, &playlist.id)?;
            }
            snapshot.commit().map_err(map_err)?;
            Ok(playlists)
        })
        .await
    }

    async fn count_playlists(&self, owner: &str) -> Result<u64> {
        let owner = owner.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT COUNT(*) FROM playlists WHERE owner = ?1")
                .map_err(map_err)?
                .query_row([owner], |row| row.get::<_, u64>(0))
                .map_err(map_err)
        })
        .await
    }

    async fn update_playlist(
        &self,
        id: &str,
        patch: &PlaylistPatch,
        at_ms: i64,
    ) -> Result<Playlist> {
        let (id, patch) = (id.to_owned(), patch.clone());
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let current = select_playlist(&tx, &id)?;
            let updated = legato_store::accounts::apply_playlist_patch(current, &patch, at_ms);
            tx.execute(
                "UPDATE playlists SET name = ?2, comment = ?3, public = ?4, updated_at = ?5 \
                 WHERE id = ?1",
                params![
                    id,
                    updated.name,
                    updated.comment,
                    updated.public,
                    updated.updated_at
                ],
            )
            .map_err(map_err)?;
            write_entries(&tx, &id, &updated.tracks)?;
            tx.commit().map_err(map_err)?;
            Ok(updated)
        })
        .await
    }

    async fn delete_playlist(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM playlists WHERE id = ?1", [&id])
                .map_err(map_err)?;
            if deleted == 0 {
                return Err(playlist_not_found(&id));
            }
            Ok(())
        })
        .await
    }
}
