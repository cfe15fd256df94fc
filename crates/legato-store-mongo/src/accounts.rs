//! [`Accounts`] on MongoDB, in collections of their own (the seed has no users):
//!
//! - `users`: `{_id: name, admin, sealed_password: Binary, created_at}`; the `_id` makes
//!   names unique.
//! - `user_keys`: `{_id: hash, user, label, created_at}`, indexed by `(user, created_at)`.
//! - `stars`: `{user, kind, item, at}`; `ratings`: `{user, kind, item, rating}`; `plays`:
//!   `{user, track, count, last_played}`: one document per user and item (or track), unique
//!   on those fields, so two processes racing to create one meet a duplicate key.
//! - `playlists`: `{_id: id, owner, name, comment, public, tracks: [hex…], created_at,
//!   updated_at, revision}`. A change reads the playlist, applies the patch and writes it back
//!   on condition that `revision` has not moved meanwhile (retrying a few times), so two
//!   concurrent changes do not lose one another on MongoDB.
//!
//! Only plain CRUD and `$inc`/`$set` are used: FerretDB serves them too.

use async_trait::async_trait;
use mongodb::bson::{Binary, Bson, Document, doc, spec::BinarySubtype};

use legato_store::{
    Accounts, ItemKind, ItemRef, PlayCount, Playlist, PlaylistPatch, Result, StoreError, TrackId,
    User, UserKey, UserMarks,
};

use crate::MongoStore;
use crate::schema::{integer, text};

/// Longest user name the contract allows, in characters.
const MAX_USER_NAME: usize = 64;
/// Longest album or artist id the contract allows, in characters.
const MAX_ITEM_ID: usize = 128;
/// Tries of a playlist change that another change keeps overtaking.
const PLAYLIST_TRIES: usize = 8;

fn user_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("user {name}"))
}

fn playlist_not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("playlist {id}"))
}

fn check_item(item: &ItemRef) -> Result<()> {
    if item.id.is_empty() || item.id.chars().count() > MAX_ITEM_ID {
        return Err(StoreError::Invalid(format!(
            "an item id has 1 to {MAX_ITEM_ID} characters"
        )));
    }
    Ok(())
}

fn boolean(value: Option<&Bson>) -> bool {
    matches!(value, Some(Bson::Boolean(true)))
}

fn binary(bytes: Vec<u8>) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

fn user_from_doc(doc: &Document) -> Option<User> {
    Some(User {
        name: text(doc.get("_id"))?,
        admin: boolean(doc.get("admin")),
        sealed_password: match doc.get("sealed_password") {
            Some(Bson::Binary(b)) => b.bytes.clone(),
            _ => Vec::new(),
        },
        created_at: integer(doc.get("created_at")).unwrap_or(0),
    })
}

fn key_from_doc(doc: &Document) -> Option<UserKey> {
    Some(UserKey {
        hash: text(doc.get("_id"))?,
        user: text(doc.get("user"))?,
        label: text(doc.get("label")).unwrap_or_default(),
        created_at: integer(doc.get("created_at")).unwrap_or(0),
    })
}

fn item_from_doc(doc: &Document) -> Option<ItemRef> {
    Some(ItemRef {
        kind: ItemKind::parse(&text(doc.get("kind"))?)?,
        id: text(doc.get("item"))?,
    })
}

fn item_filter(user: &str, item: &ItemRef) -> Document {
    doc! { "user": user, "kind": item.kind.as_str(), "item": &item.id }
}

fn playlist_doc(playlist: &Playlist, revision: i64) -> Document {
    let tracks: Vec<String> = playlist.tracks.iter().map(TrackId::to_string).collect();
    let mut doc = doc! {
        "_id": &playlist.id,
        "owner": &playlist.owner,
        "name": &playlist.name,
        "public": playlist.public,
        "tracks": tracks,
        "created_at": playlist.created_at,
        "updated_at": playlist.updated_at,
        "revision": revision,
    };
    if let Some(comment) = &playlist.comment {
        doc.insert("comment", comment);
    }
    doc
}

fn playlist_from_doc(doc: &Document) -> Option<Playlist> {
    let tracks = match doc.get("tracks") {
        Some(Bson::Array(tracks)) => tracks
            .iter()
            .filter_map(|t| match t {
                Bson::String(hex) => hex.parse().ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(Playlist {
        id: text(doc.get("_id"))?,
        owner: text(doc.get("owner")).unwrap_or_default(),
        name: text(doc.get("name")).unwrap_or_default(),
        comment: text(doc.get("comment")),
        public: boolean(doc.get("public")),
        tracks,
        created_at: integer(doc.get("created_at")).unwrap_or(0),
        updated_at: integer(doc.get("updated_at")).unwrap_or(0),
    })
}

impl MongoStore {
    /// The indexes of the account collections (part of [`MongoStore::ensure_indexes`]).
    async fn user_exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .timed(
                self.inner
                    .users
                    .find_one(doc! { "_id": name })
                    .projection(doc! { "_id": 1 }),
            )
            .await?
            .is_some())
    }

    async fn require_user(&self, name: &str) -> Result<()> {
        if self.user_exists(name).await? {
            Ok(())
        } else {
            Err(user_not_found(name))
        }
    }

    /// The playlist and its revision.
    async fn playlist_with_revision(&self, id: &str) -> Result<(Playlist, Option<Bson>)> {
        let doc = self
            .timed(self.inner.playlists.find_one(doc! { "_id": id }))
            .await?
            .ok_or_else(|| playlist_not_found(id))?;
        let playlist = playlist_from_doc(&doc)
            .ok_or_else(|| StoreError::Backend(format!("playlist {id} cannot be read")))?;
        Ok((playlist, doc.get("revision").cloned()))
    }
}

#[async_trait]
impl Accounts for MongoStore {
    async fn create_user(&self, user: User) -> Result<User> {
        let length = user.name.chars().count();
        if length == 0 || length > MAX_USER_NAME {
            return Err(StoreError::Invalid(format!(
                "a user name has 1 to {MAX_USER_NAME} characters"
            )));
        }
        self.ensure_indexes().await?;
        let doc = doc! {
            "_id": &user.name,
            "admin": user.admin,
            "sealed_password": binary(user.sealed_password.clone()),
            "created_at": user.created_at,
        };
        // The `_id` is the name: a second user of that name is a duplicate key (Invalid).
        self.timed(self.inner.users.insert_one(doc))
            .await
            .map_err(|e| match e {
                StoreError::Invalid(_) => {
                    StoreError::Invalid(format!("user {} exists already", user.name))
                }
                other => other,
            })?;
        Ok(user)
    }

    async fn get_user(&self, name: &str) -> Result<User> {
        self.timed(self.inner.users.find_one(doc! { "_id": name }))
            .await?
            .as_ref()
            .and_then(user_from_doc)
            .ok_or_else(|| user_not_found(name))
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        Ok(self
            .find_all(self.inner.users.find(doc! {}).sort(doc! { "_id": 1 }))
            .await?
            .iter()
            .filter_map(user_from_doc)
            .collect())
    }

    async fn set_user_password(&self, name: &str, sealed_password: Vec<u8>) -> Result<()> {
        let result = self
            .timed(self.inner.users.update_one(
                doc! { "_id": name },
                doc! { "$set": { "sealed_password": binary(sealed_password) } },
            ))
            .await?;
        if result.matched_count == 0 {
            return Err(user_not_found(name));
        }
        Ok(())
    }

    async fn set_user_admin(&self, name: &str, admin: bool) -> Result<()> {
        let result = self
            .timed(
                self.inner
                    .users
                    .update_one(doc! { "_id": name }, doc! { "$set": { "admin": admin } }),
            )
            .await?;
        if result.matched_count == 0 {
            return Err(user_not_found(name));
        }
        Ok(())
    }

    async fn delete_user(&self, name: &str) -> Result<()> {
        self.require_user(name).await?;
        // What the user kept first, the user last: a failure halfway leaves the user there,
        // and deleting again finishes the job (never a user gone with their keys still valid).
        let inner = &self.inner;
        self.timed(inner.user_keys.delete_many(doc! { "user": name }))
            .await?;
        for marks in [&inner.stars, &inner.ratings, &inner.plays] {
            self.timed(marks.delete_many(doc! { "user": name })).await?;
        }
        self.timed(inner.playlists.delete_many(doc! { "owner": name }))
            .await?;
        let deleted = self
            .timed(inner.users.delete_one(doc! { "_id": name }))
            .await?;
        if deleted.deleted_count == 0 {
            return Err(user_not_found(name));
        }
        Ok(())
    }

    async fn add_user_key(&self, key: UserKey) -> Result<()> {
        self.ensure_indexes().await?;
        self.require_user(&key.user).await?;
        self.timed(self.inner.user_keys.insert_one(doc! {
            "_id": &key.hash,
            "user": &key.user,
            "label": &key.label,
            "created_at": key.created_at,
        }))
        .await?;
        Ok(())
    }

    async fn find_user_key(&self, hash: &str) -> Result<Option<UserKey>> {
        Ok(self
            .timed(self.inner.user_keys.find_one(doc! { "_id": hash }))
            .await?
            .as_ref()
            .and_then(key_from_doc))
    }

    async fn list_user_keys(&self, user: &str) -> Result<Vec<UserKey>> {
        self.require_user(user).await?;
        Ok(self
            .find_all(
                self.inner
                    .user_keys
                    .find(doc! { "user": user })
                    .sort(doc! { "created_at": 1, "_id": 1 }),
            )
            .await?
            .iter()
            .filter_map(key_from_doc)
            .collect())
    }

    async fn revoke_user_keys(&self, user: &str, label: Option<&str>) -> Result<u64> {
        self.require_user(user).await?;
        let mut filter = doc! { "user": user };
        if let Some(label) = label {
            filter.insert("label", label);
        }
        Ok(self
            .timed(self.inner.user_keys.delete_many(filter))
            .await?
            .deleted_count)
    }

    async fn set_starred(
        &self,
        user: &str,
        item: &ItemRef,
        starred: bool,
        at_ms: i64,
    ) -> Result<()> {
        check_item(item)?;
        self.ensure_indexes().await?;
        self.require_user(user).await?;
        let filter = item_filter(user, item);
        if starred {
            let mut star = filter;
            star.insert("at", at_ms);
            // Starred already (the unique index says so): the first time stays.
            match self.timed(self.inner.stars.insert_one(star)).await {
                Ok(_) | Err(StoreError::Invalid(_)) => Ok(()),
                Err(e) => Err(e),
            }
        } else {
            self.timed(self.inner.stars.delete_one(filter)).await?;
            Ok(())
        }
    }

    async fn set_rating(&self, user: &str, item: &ItemRef, rating: u8) -> Result<()> {
        if rating > 5 {
            return Err(StoreError::Invalid(format!(
                "a rating is 0 to 5, not {rating}"
            )));
        }
        check_item(item)?;
        self.ensure_indexes().await?;
        self.require_user(user).await?;
        let filter = item_filter(user, item);
        if rating == 0 {
            self.timed(self.inner.ratings.delete_one(filter)).await?;
            return Ok(());
        }
        let set = doc! { "$set": { "rating": i32::from(rating) } };
        let upsert = || {
            self.timed(
                self.inner
                    .ratings
                    .update_one(filter.clone(), set.clone())
                    .upsert(true),
            )
        };
        match upsert().await {
            // Two first ratings raced and the other inserted: now it is an update.
            Err(StoreError::Invalid(_)) => upsert().await.map(drop),
            other => other.map(drop),
        }
    }

    async fn record_play(&self, user: &str, track: &TrackId, at_ms: i64) -> Result<()> {
        self.ensure_indexes().await?;
        self.require_user(user).await?;
        let filter = doc! { "user": user, "track": track.to_string() };
        let count = || {
            self.timed(
                self.inner
                    .plays
                    .update_one(filter.clone(), doc! { "$inc": { "count": 1_i64 } })
                    .upsert(true),
            )
        };
        if let Err(StoreError::Invalid(_)) = count().await {
            // Two first plays raced and the other inserted: count this one on it.
            count().await?;
        }
        // The later time wins, in a second conditional step (`$max` is not everywhere).
        let mut earlier = filter;
        earlier.insert(
            "$or",
            vec![
                doc! { "last_played": { "$exists": false } },
                doc! { "last_played": { "$lt": at_ms } },
            ],
        );
        self.timed(
            self.inner
                .plays
                .update_one(earlier, doc! { "$set": { "last_played": at_ms } }),
        )
        .await?;
        Ok(())
    }

    async fn user_marks(&self, user: &str) -> Result<UserMarks> {
        self.require_user(user).await?;
        let filter = doc! { "user": user };
        let stars = self.find_all(self.inner.stars.find(filter.clone()));
        let ratings = self.find_all(self.inner.ratings.find(filter.clone()));
        let plays = self.find_all(self.inner.plays.find(filter));
        let (stars, ratings, plays) = tokio::try_join!(stars, ratings, plays)?;
        Ok(UserMarks {
            stars: stars
                .iter()
                .filter_map(|d| Some((item_from_doc(d)?, integer(d.get("at")).unwrap_or(0))))
                .collect(),
            ratings: ratings
                .iter()
                .filter_map(|d| {
                    let rating = integer(d.get("rating")).and_then(|r| u8::try_from(r).ok())?;
                    Some((item_from_doc(d)?, rating))
                })
                .collect(),
            plays: plays
                .iter()
                .filter_map(|d| {
                    Some(PlayCount {
                        track_id: text(d.get("track"))?.parse().ok()?,
                        count: integer(d.get("count"))
                            .and_then(|c| u64::try_from(c).ok())
                            .unwrap_or(0),
                        last_played: integer(d.get("last_played")).unwrap_or(0),
                    })
                })
                .collect(),
        })
    }

    async fn create_playlist(&self, playlist: Playlist) -> Result<Playlist> {
        self.ensure_indexes().await?;
        self.require_user(&playlist.owner).await?;
        self.timed(self.inner.playlists.insert_one(playlist_doc(&playlist, 0)))
            .await?;
        Ok(playlist)
    }

    async fn get_playlist(&self, id: &str) -> Result<Playlist> {
        Ok(self.playlist_with_revision(id).await?.0)
    }

    async fn list_playlists(&self) -> Result<Vec<Playlist>> {
        Ok(self
            .find_all(
                self.inner
                    .playlists
                    .find(doc! {})
                    .sort(doc! { "name": 1, "_id": 1 }),
            )
            .await?
            .iter()
            .filter_map(playlist_from_doc)
            .collect())
    }

    async fn count_playlists(&self, owner: &str) -> Result<u64> {
        // Index-shaped (`owner`): the ids of one user's playlists, not their documents.
        Ok(self
            .find_all(
                self.inner
                    .playlists
                    .find(doc! { "owner": owner })
                    .projection(doc! { "_id": 1 }),
            )
            .await?
            .len() as u64)
    }

    async fn update_playlist(
        &self,
        id: &str,
        patch: &PlaylistPatch,
        at_ms: i64,
    ) -> Result<Playlist> {
        for _ in 0..PLAYLIST_TRIES {
            let (current, revision) = self.playlist_with_revision(id).await?;
            let next = match &revision {
                Some(revision) => integer(Some(revision)).unwrap_or(0).saturating_add(1),
                None => 1,
            };
            let updated = legato_store::accounts::apply_playlist_patch(current, patch, at_ms);
            let mut filter = doc! { "_id": id };
            match revision {
                Some(revision) => filter.insert("revision", revision),
                None => filter.insert("revision", doc! { "$exists": false }),
            };
            let result = self
                .timed(
                    self.inner
                        .playlists
                        .replace_one(filter, playlist_doc(&updated, next)),
                )
                .await?;
            if result.matched_count == 1 {
                return Ok(updated);
            }
            // Changed (or deleted) meanwhile: read it again.
        }
        Err(StoreError::Unavailable(format!(
            "playlist {id} kept changing under this change; try again"
        )))
    }

    async fn delete_playlist(&self, id: &str) -> Result<()> {
        let deleted = self
            .timed(self.inner.playlists.delete_one(doc! { "_id": id }))
            .await?;
        if deleted.deleted_count == 0 {
            return Err(playlist_not_found(id));
        }
        Ok(())
    }
}
