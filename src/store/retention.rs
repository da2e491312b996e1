//! The SQL side of the recording retention purge: which calls have a recording older than
//! the retention, and marking them purged once their file is gone.

use super::{Store, StoreError};
use chrono::{DateTime, Utc};

/// A call whose recording is due for deletion.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExpiredRecording {
    pub call_id: String,
    /// As the call journal stored it (a path, absolute or relative to the recordings folder).
    pub recording_file: String,
}

impl Store {
    /// Up to `limit` calls that arrived before `before`, have a recording and were not purged
    /// yet; oldest first.
    pub async fn expired_recordings(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ExpiredRecording>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT call_id, recording_file FROM calls \
             WHERE recording_file IS NOT NULL AND recording_purged_at IS NULL \
               AND arrived_at < $1 \
             ORDER BY arrived_at, id LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Notes that these calls' recordings were deleted at `at`; returns how many rows changed.
    pub async fn mark_recordings_purged(
        &self,
        call_ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE calls SET recording_purged_at = $2 \
             WHERE call_id = ANY($1) AND recording_purged_at IS NULL",
        )
        .bind(call_ids)
        .bind(at)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
