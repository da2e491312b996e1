//! Outage announcements (停气/停热通知): what to play before the first menu, to which called
//! numbers (DIDs) and supply areas, from when until when.
//!
//! Owns the `announcements` table; rendering text to audio lives in `ops::announce`.

use super::{Store, StoreError};
use chrono::{DateTime, Utc};

/// An announcement as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Announcement {
    pub id: i64,
    /// Spoken by the TTS command, or replaced by the generic outage prompt without one.
    pub text: Option<String>,
    /// A prompt of the prompt folder (file stem), played as is.
    pub prompt: Option<String>,
    /// Called numbers it plays on; empty: all.
    pub dids: Vec<String>,
    /// Caller supply areas (customer file) it plays for; empty: all callers.
    pub areas: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// File name of the rendered text under `<state_dir>/announcements/`.
    pub audio_file: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// What an announcement says and where and when it plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAnnouncement {
    pub text: Option<String>,
    pub prompt: Option<String>,
    pub dids: Vec<String>,
    pub areas: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
}

/// Every column, in [`Announcement`]'s order.
macro_rules! columns {
    () => {
        "id, text, prompt, dids, areas, starts_at, ends_at, audio_file, created_by, created_at"
    };
}

impl Store {
    /// Stores a new announcement (not yet rendered).
    pub async fn create_announcement(
        &self,
        new: &NewAnnouncement,
    ) -> Result<Announcement, StoreError> {
        Ok(sqlx::query_as(concat!(
            "INSERT INTO announcements (text, prompt, dids, areas, starts_at, ends_at, \
               created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
            columns!()
        ))
        .bind(&new.text)
        .bind(&new.prompt)
        .bind(&new.dids)
        .bind(&new.areas)
        .bind(new.starts_at)
        .bind(new.ends_at)
        .bind(&new.created_by)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Replaces announcement `id` wholesale; its rendered audio is forgotten (render again).
    pub async fn replace_announcement(
        &self,
        id: i64,
        new: &NewAnnouncement,
    ) -> Result<Announcement, StoreError> {
        sqlx::query_as(concat!(
            "UPDATE announcements SET text = $2, prompt = $3, dids = $4, areas = $5, \
               starts_at = $6, ends_at = $7, created_by = $8, audio_file = NULL \
             WHERE id = $1 RETURNING ",
            columns!()
        ))
        .bind(id)
        .bind(&new.text)
        .bind(&new.prompt)
        .bind(&new.dids)
        .bind(&new.areas)
        .bind(new.starts_at)
        .bind(new.ends_at)
        .bind(&new.created_by)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("announcement {id}")))
    }

    /// Notes the rendered audio file of announcement `id`.
    pub async fn set_announcement_audio(
        &self,
        id: i64,
        audio_file: &str,
    ) -> Result<Announcement, StoreError> {
        sqlx::query_as(concat!(
            "UPDATE announcements SET audio_file = $2 WHERE id = $1 RETURNING ",
            columns!()
        ))
        .bind(id)
        .bind(audio_file)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("announcement {id}")))
    }

    pub async fn get_announcement(&self, id: i64) -> Result<Announcement, StoreError> {
        sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM announcements WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("announcement {id}")))
    }

    /// Announcements not yet over at `now` (running or scheduled), or all with
    /// `include_ended`; by start, then id.
    pub async fn list_announcements(
        &self,
        now: DateTime<Utc>,
        include_ended: bool,
    ) -> Result<Vec<Announcement>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM announcements WHERE $2 OR ends_at > $1 \
             ORDER BY starts_at, id"
        ))
        .bind(now)
        .bind(include_ended)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes announcement `id` and returns what it was (so its audio can go too).
    pub async fn delete_announcement(&self, id: i64) -> Result<Announcement, StoreError> {
        sqlx::query_as(concat!(
            "DELETE FROM announcements WHERE id = $1 RETURNING ",
            columns!()
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("announcement {id}")))
    }

    /// The announcements playing at `now` for a call to `did` from a caller in `area`
    /// (`None`: unknown caller, who hears only announcements not limited to areas); by start,
    /// then id.
    pub async fn active_announcements(
        &self,
        did: &str,
        area: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Announcement>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM announcements \
             WHERE starts_at <= $3 AND ends_at > $3 \
               AND (cardinality(dids) = 0 OR $1 = ANY(dids)) \
               AND (cardinality(areas) = 0 OR $2 = ANY(areas)) \
             ORDER BY starts_at, id"
        ))
        .bind(did)
        .bind(area)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }
}
