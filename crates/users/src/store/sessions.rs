//! Sign-in sessions: a session is one refresh-token family (a sign-in and its rotations).

use tg_platform::{clock::now_ms, with_db, with_tx};

use super::Store;

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct SessionRow {
    pub family_id: String,
    pub device: Option<String>,
    pub started_at: i64,
    /// When its refresh token was last used (rotation issues a new one) or, if never, the sign-in.
    pub last_used_at: i64,
}

/// The newest sessions listed; older live ones still work and are ended by "sign out everywhere".
const MAX_LISTED: i64 = 100;

impl Store {
    /// The user's live sessions (a refresh token neither revoked nor expired), most recently used first.
    pub async fn sessions(&self, user_id: &str) -> Result<Vec<SessionRow>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_as(
            "SELECT family_id, MAX(device) AS device, MIN(created_at) AS started_at, MAX(created_at) AS last_used_at
             FROM users_refresh_tokens WHERE user_id = $1
             GROUP BY family_id
             HAVING SUM(CASE WHEN revoked_at IS NULL AND expires_at > $2 THEN 1 ELSE 0 END) > 0
             ORDER BY MAX(created_at) DESC, family_id LIMIT $3")
            .bind(user_id).bind(now_ms()).bind(MAX_LISTED).fetch_all(pool).await)
    }

    /// End one of the user's sessions; false when the user has no such live session.
    pub async fn end_session(&self, user_id: &str, family_id: &str) -> Result<bool, sqlx::Error> {
        Ok(self.end(user_id, Some(family_id), None).await? > 0)
    }

    /// End every session of the user but `keep` (when given).
    pub async fn end_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64, sqlx::Error> {
        self.end(user_id, None, keep).await
    }

    /// Revoke the user's live refresh tokens (of session `only`, or all but `keep`), under the lock
    /// on the account's row that rotations take too (see [`Store::rotate_refresh`]).
    async fn end(&self, user_id: &str, only: Option<&str>, keep: Option<&str>) -> Result<u64, sqlx::Error> {
        let lock = super::lock_account_sql(&self.db);
        let now = now_ms();
        with_tx!(&self.db, tx => {
            sqlx::query(lock).bind(user_id).execute(&mut *tx).await?;
            sqlx::query(
                "UPDATE users_refresh_tokens SET revoked_at = $2
                 WHERE user_id = $1 AND revoked_at IS NULL AND ($3 IS NULL OR family_id = $3) AND ($4 IS NULL OR family_id <> $4)")
                .bind(user_id).bind(now).bind(only).bind(keep)
                .execute(&mut *tx).await.map(|r| r.rows_affected())
        })
    }
}
