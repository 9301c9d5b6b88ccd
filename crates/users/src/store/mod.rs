//! SQL of the users service. Portable SQL only; every statement runs on SQLite and PostgreSQL.
//! Accounts, roles, tokens and organizers here; account links and deletion in `account`, sign-in
//! sessions in `sessions`.

mod account;
mod sessions;

pub use account::{LinkPurpose, NewLink, Verified};
pub use sessions::SessionRow;

use tg_contracts::{Message, UserRegistered};
use tg_messaging::OutboxWrite;
use tg_platform::{auth::Role, clock::now_ms, db::Db, with_db, with_tx};

use crate::model::{AuditEntry, OrganizerApplication, OrganizerProfile};

#[derive(Clone)]
pub struct Store {
    pub db: Db,
}

#[derive(sqlx::FromRow, Clone, Debug)]
pub struct AccountRow {
    pub id: String,
    pub email: Option<String>,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub external_issuer: Option<String>,
    pub language: String,
    pub created_at: i64,
    pub email_verified_at: Option<i64>,
}

#[derive(sqlx::FromRow, Clone, Debug)]
pub struct RefreshRow {
    pub user_id: String,
    pub family_id: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub device: Option<String>,
}

#[derive(sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub private_pkcs8: String,
    pub public_key: String,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct OrganizerRow {
    id: String,
    name: String,
    logo: Option<String>,
    contact_email: String,
    contact_phone: Option<String>,
    website: Option<String>,
}

impl From<OrganizerRow> for OrganizerProfile {
    fn from(r: OrganizerRow) -> Self {
        OrganizerProfile {
            id: r.id,
            name: r.name,
            logo: r.logo,
            contact_email: r.contact_email,
            contact_phone: r.contact_phone,
            website: r.website,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ApplicationRow {
    id: String,
    user_id: String,
    status: String,
    name: String,
    logo: Option<String>,
    contact_email: String,
    contact_phone: Option<String>,
    website: Option<String>,
    message: Option<String>,
    decision_note: Option<String>,
    created_at: i64,
    decided_at: Option<i64>,
}

impl From<ApplicationRow> for OrganizerApplication {
    fn from(r: ApplicationRow) -> Self {
        use tg_platform::clock::rfc3339;
        OrganizerApplication {
            id: r.id,
            user_id: r.user_id,
            status: r.status,
            name: r.name,
            logo: r.logo,
            contact_email: r.contact_email,
            contact_phone: r.contact_phone,
            website: r.website,
            message: r.message,
            decision_note: r.decision_note,
            created_at: rfc3339(r.created_at),
            decided_at: r.decided_at.map(rfc3339),
        }
    }
}

/// Fields of a new organizer profile (from an application).
pub struct ProfileInput {
    pub name: String,
    pub logo: Option<String>,
    pub contact_email: String,
    pub contact_phone: Option<String>,
    pub website: Option<String>,
}

const ACCOUNT_COLS: &str =
    "id, email, display_name, password_hash, external_issuer, language, created_at, email_verified_at";
const APPLICATION_COLS: &str = "id, user_id, status, name, logo, contact_email, contact_phone, website, message, decision_note, created_at, decided_at";

/// Lock an account's row for the rest of the transaction (PostgreSQL; SQLite's write transactions
/// hold the whole database already).
pub(crate) fn lock_account_sql(db: &Db) -> &'static str {
    match db {
        Db::Postgres(_) => "SELECT id FROM users_accounts WHERE id = $1 FOR UPDATE",
        Db::Sqlite(_) => "SELECT id FROM users_accounts WHERE id = $1",
    }
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Store {
    /// Insert a local account with the `user` role plus `extra_roles`. Fails with a unique violation when the email is taken.
    /// With `verify`, the address is to be proven: the link's token is stored and its mail queued in the
    /// same transaction; without, the address counts as verified (an operator or demo data vouches for it).
    pub async fn create_account(
        &self,
        email: &str,
        display_name: &str,
        password_hash: &str,
        extra_roles: &[Role],
        verify: Option<NewLink>,
    ) -> Result<AccountRow, sqlx::Error> {
        let id = new_id();
        let now = now_ms();
        let verified_at = verify.is_none().then_some(now);
        let res: Result<(), sqlx::Error> = with_tx!(&self.db, tx => {
            sqlx::query(
                "INSERT INTO users_accounts (id, email, display_name, password_hash, language, created_at, updated_at, email_verified_at)
                 VALUES ($1, $2, $3, $4, 'en', $5, $5, $6)",
            )
            .bind(&id).bind(email).bind(display_name).bind(password_hash).bind(now).bind(verified_at)
            .execute(&mut *tx).await?;
            if let Some(link) = &verify {
                account::insert_link(&mut *tx, &id, link).await?;
            }
            for role in std::iter::once(Role::User).chain(extra_roles.iter().copied()) {
                sqlx::query("INSERT INTO users_roles (user_id, role, granted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(&id).bind(role.as_str()).bind(now)
                    .execute(&mut *tx).await?;
            }
            let registered = UserRegistered {
                user_id: id.clone(),
                email: email.to_owned(),
                display_name: display_name.to_owned(),
                language: "en".into(),
            }
            .to_event();
            let mut messages = vec![registered];
            messages.extend(verify.as_ref().map(|link| link.mail_for(&id).to_event()));
            tx.enqueue(&messages).await?;
            Ok(())
        });
        res?;
        Ok(AccountRow {
            id,
            email: Some(email.to_owned()),
            display_name: display_name.to_owned(),
            password_hash: Some(password_hash.to_owned()),
            external_issuer: None,
            language: "en".into(),
            created_at: now,
            email_verified_at: verified_at,
        })
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<AccountRow>, sqlx::Error> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM users_accounts WHERE email = $1");
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(email).fetch_optional(pool).await)
    }

    pub async fn account_by_id(&self, id: &str) -> Result<Option<AccountRow>, sqlx::Error> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM users_accounts WHERE id = $1");
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
    }

    /// Local id of an external identity, created on first sight. The email is kept only when no
    /// other account uses it: accounts are never linked by email alone. It counts as verified when
    /// the provider said so then (later tokens say it themselves).
    pub async fn upsert_external(
        &self,
        issuer: &str,
        subject: &str,
        email: Option<&str>,
        email_verified: bool,
        display_name: &str,
    ) -> Result<String, sqlx::Error> {
        let find = "SELECT id FROM users_accounts WHERE external_issuer = $1 AND external_subject = $2";
        let existing: Option<String> =
            with_db!(&self.db, pool => sqlx::query_scalar(find).bind(issuer).bind(subject).fetch_optional(pool).await)?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let id = new_id();
        let now = now_ms();
        let insert = "INSERT INTO users_accounts (id, email, display_name, external_issuer, external_subject, language, created_at, updated_at, email_verified_at)
             VALUES ($1, CASE WHEN EXISTS (SELECT 1 FROM users_accounts WHERE email = $2) THEN NULL ELSE $2 END, $3, $4, $5, 'en', $6, $6, $7)
             ON CONFLICT DO NOTHING";
        let verified_at = email_verified.then_some(now);
        with_db!(&self.db, pool => sqlx::query(insert)
            .bind(&id).bind(email).bind(display_name).bind(issuer).bind(subject).bind(now).bind(verified_at)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        // A concurrent first request may have won the insert; read back whichever row exists.
        with_db!(&self.db, pool => sqlx::query_scalar(find).bind(issuer).bind(subject).fetch_one(pool).await)
    }

    pub async fn roles(&self, user_id: &str) -> Result<Vec<Role>, sqlx::Error> {
        let names: Vec<String> = with_db!(&self.db, pool =>
            sqlx::query_scalar("SELECT role FROM users_roles WHERE user_id = $1").bind(user_id).fetch_all(pool).await)?;
        let mut roles: Vec<Role> = names.iter().filter_map(|n| n.parse().ok()).collect();
        roles.sort();
        Ok(roles)
    }

    /// Replace a user's roles (`user` is always kept) and audit the change, in one transaction.
    pub async fn set_roles(&self, user_id: &str, roles: &[Role], actor: &str) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let detail = serde_json::json!({ "roles": roles }).to_string();
        with_tx!(&self.db, tx => {
            sqlx::query("DELETE FROM users_roles WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            for role in std::iter::once(Role::User).chain(roles.iter().copied()) {
                sqlx::query("INSERT INTO users_roles (user_id, role, granted_at, granted_by) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                    .bind(user_id).bind(role.as_str()).bind(now).bind(actor)
                    .execute(&mut *tx).await?;
            }
            insert_audit(&mut *tx, Some(actor), "user.roles_set", Some(user_id), &detail).await
        })
    }

    pub async fn update_profile(
        &self,
        user_id: &str,
        display_name: Option<&str>,
        language: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query(
            "UPDATE users_accounts SET display_name = COALESCE($2, display_name), language = COALESCE($3, language), updated_at = $4 WHERE id = $1")
            .bind(user_id).bind(display_name).bind(language).bind(now_ms())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Accounts ordered by id (time-ordered UUIDv7), after `cursor`, optionally filtered by email/name substring.
    pub async fn list_accounts(
        &self,
        query: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AccountRow>, sqlx::Error> {
        let pattern = query
            .map(|q| format!("%{}%", q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
        let sql = format!(
            "SELECT {ACCOUNT_COLS} FROM users_accounts
             WHERE ($1 IS NULL OR id > $1)
               AND ($2 IS NULL OR LOWER(COALESCE(email, '')) LIKE $2 ESCAPE '\\' OR LOWER(display_name) LIKE $2 ESCAPE '\\')
             ORDER BY id LIMIT $3"
        );
        with_db!(&self.db, pool => sqlx::query_as(&sql).bind(after).bind(pattern.as_deref()).bind(limit).fetch_all(pool).await)
    }

    // ---- refresh tokens ----

    /// A refresh token of session `family_id`, signed in from `device` (its User-Agent).
    pub async fn insert_refresh(
        &self,
        hash: &str,
        user_id: &str,
        family_id: &str,
        expires_at: i64,
        device: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query(
            "INSERT INTO users_refresh_tokens (token_hash, user_id, family_id, created_at, expires_at, device) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(hash).bind(user_id).bind(family_id).bind(now_ms()).bind(expires_at).bind(device)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Rotate a refresh token: atomically revoke the live token `hash` and store `new_hash` in its
    /// family, returning the old one; `None` when unknown, expired or already used. A token that was
    /// already revoked is reuse: its whole family is revoked too. The account's row is locked first,
    /// as every change that ends sessions locks it (by updating it or as [`Store::end_sessions`] does),
    /// so a rotation never slips a new token past "sign out everywhere", a reset or a deletion.
    pub async fn rotate_refresh(
        &self,
        hash: &str,
        new_hash: &str,
        expires_at: i64,
    ) -> Result<Option<RefreshRow>, sqlx::Error> {
        let now = now_ms();
        let lock = lock_account_sql(&self.db);
        let rotated: Option<RefreshRow> = with_tx!(&self.db, tx => {
            let owner: Option<String> = sqlx::query_scalar("SELECT user_id FROM users_refresh_tokens WHERE token_hash = $1")
                .bind(hash).fetch_optional(&mut *tx).await?;
            if let Some(owner) = &owner {
                sqlx::query(lock).bind(owner).execute(&mut *tx).await?;
            }
            let old: Option<RefreshRow> = sqlx::query_as(
                "UPDATE users_refresh_tokens SET revoked_at = $2
                 WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2
                 RETURNING user_id, family_id, expires_at, revoked_at, device")
                .bind(hash).bind(now).fetch_optional(&mut *tx).await?;
            if let Some(old) = &old {
                sqlx::query(
                    "INSERT INTO users_refresh_tokens (token_hash, user_id, family_id, created_at, expires_at, device) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(new_hash).bind(&old.user_id).bind(&old.family_id).bind(now).bind(expires_at).bind(&old.device)
                    .execute(&mut *tx).await?;
            }
            Ok::<_, sqlx::Error>(old)
        })?;
        if rotated.is_some() {
            return Ok(rotated);
        }
        let reused: Option<String> = with_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT family_id FROM users_refresh_tokens WHERE token_hash = $1 AND revoked_at IS NOT NULL")
            .bind(hash).fetch_optional(pool).await)?;
        if let Some(family) = reused {
            tracing::warn!("refresh token reuse detected; revoking its family");
            self.revoke_family(&family).await?;
        }
        Ok(None)
    }

    pub async fn revoke_family(&self, family_id: &str) -> Result<(), sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query(
            "UPDATE users_refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
            .bind(family_id).bind(now_ms()).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Family of a refresh token, whatever its state.
    pub async fn refresh_family(&self, hash: &str) -> Result<Option<String>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_scalar("SELECT family_id FROM users_refresh_tokens WHERE token_hash = $1")
            .bind(hash).fetch_optional(pool).await)
    }

    // ---- signing keys ----

    /// Keys made since `since`, newest first; keys of one millisecond by their id (UUIDv7, so in the
    /// order they were made), so every instance sees the same order.
    pub async fn signing_keys(&self, since: i64) -> Result<Vec<KeyRow>, sqlx::Error> {
        with_db!(&self.db, pool => sqlx::query_as(
            "SELECT kid, private_pkcs8, public_key, created_at FROM users_signing_keys WHERE created_at >= $1 ORDER BY created_at DESC, kid DESC")
            .bind(since).fetch_all(pool).await)
    }

    /// Add `key` unless a key created after `fresh_since` exists (another instance rotated first);
    /// whether it was added. The check and the insert run under a lock only key creators take
    /// (PostgreSQL; readers are not held up) or the write lock (SQLite), so instances rotating at
    /// once add one key between them.
    pub async fn insert_signing_key_unless_fresh(&self, key: &KeyRow, fresh_since: i64) -> Result<bool, sqlx::Error> {
        let postgres = matches!(self.db, Db::Postgres(_));
        with_tx!(&self.db, tx => {
            if postgres {
                sqlx::query("LOCK TABLE users_signing_keys IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
            }
            let fresh: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users_signing_keys WHERE created_at > $1")
                .bind(fresh_since).fetch_one(&mut *tx).await?;
            if fresh == 0 {
                sqlx::query("INSERT INTO users_signing_keys (kid, private_pkcs8, public_key, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&key.kid).bind(&key.private_pkcs8).bind(&key.public_key).bind(key.created_at)
                    .execute(&mut *tx).await?;
            }
            Ok::<_, sqlx::Error>(fresh == 0)
        })
    }

    /// Replace a key's stored private part (sealing it), unless another instance did first.
    pub async fn replace_signing_key_secret(&self, kid: &str, old: &str, new: &str) -> Result<bool, sqlx::Error> {
        let n = with_db!(&self.db, pool => sqlx::query(
            "UPDATE users_signing_keys SET private_pkcs8 = $3 WHERE kid = $1 AND private_pkcs8 = $2")
            .bind(kid).bind(old).bind(new).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    // ---- organizers ----

    pub async fn organizer_by_user(&self, user_id: &str) -> Result<Option<OrganizerProfile>, sqlx::Error> {
        let row: Option<OrganizerRow> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT id, name, logo, contact_email, contact_phone, website FROM users_organizers WHERE user_id = $1")
            .bind(user_id).fetch_optional(pool).await)?;
        Ok(row.map(Into::into))
    }

    pub async fn organizer_by_id(&self, id: &str) -> Result<Option<OrganizerProfile>, sqlx::Error> {
        let row: Option<OrganizerRow> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT id, name, logo, contact_email, contact_phone, website FROM users_organizers WHERE id = $1")
            .bind(id).fetch_optional(pool).await)?;
        Ok(row.map(Into::into))
    }

    pub async fn update_organizer(&self, user_id: &str, p: &ProfileInput) -> Result<bool, sqlx::Error> {
        let res = with_db!(&self.db, pool => sqlx::query(
            "UPDATE users_organizers SET name = $2, logo = $3, contact_email = $4, contact_phone = $5, website = $6, updated_at = $7 WHERE user_id = $1")
            .bind(user_id).bind(&p.name).bind(&p.logo).bind(&p.contact_email).bind(&p.contact_phone).bind(&p.website).bind(now_ms())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(res == 1)
    }

    /// Fails with a unique violation when the user already has a pending application.
    pub async fn insert_application(
        &self,
        user_id: &str,
        p: &ProfileInput,
        message: Option<&str>,
    ) -> Result<OrganizerApplication, sqlx::Error> {
        let id = new_id();
        let now = now_ms();
        with_db!(&self.db, pool => sqlx::query(
            "INSERT INTO users_organizer_applications (id, user_id, status, name, logo, contact_email, contact_phone, website, message, created_at)
             VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9)")
            .bind(&id).bind(user_id).bind(&p.name).bind(&p.logo).bind(&p.contact_email).bind(&p.contact_phone).bind(&p.website).bind(message).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(self.application(&id).await?.expect("just inserted"))
    }

    pub async fn application(&self, id: &str) -> Result<Option<OrganizerApplication>, sqlx::Error> {
        let sql = format!("SELECT {APPLICATION_COLS} FROM users_organizer_applications WHERE id = $1");
        let row: Option<ApplicationRow> =
            with_db!(&self.db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(Into::into))
    }

    pub async fn latest_application(&self, user_id: &str) -> Result<Option<OrganizerApplication>, sqlx::Error> {
        let sql = format!(
            "SELECT {APPLICATION_COLS} FROM users_organizer_applications WHERE user_id = $1 ORDER BY id DESC LIMIT 1"
        );
        let row: Option<ApplicationRow> =
            with_db!(&self.db, pool => sqlx::query_as(&sql).bind(user_id).fetch_optional(pool).await)?;
        Ok(row.map(Into::into))
    }

    pub async fn list_applications(
        &self,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OrganizerApplication>, sqlx::Error> {
        let sql = format!(
            "SELECT {APPLICATION_COLS} FROM users_organizer_applications
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<ApplicationRow> = with_db!(&self.db, pool => sqlx::query_as(&sql).bind(status).bind(after).bind(limit).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Decide a pending application. Approval creates the organizer profile (or refreshes an existing one)
    /// and grants the role, all in one transaction with the audit entry. Returns false when it was not pending.
    /// `organizer_id` names the new profile (demo data uses the fixture's `org-009`); else one is generated.
    pub async fn decide_application(
        &self,
        id: &str,
        approve: bool,
        actor: &str,
        note: Option<&str>,
        organizer_id: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let status = if approve { "approved" } else { "rejected" };
        with_tx!(&self.db, tx => {
            let sql = format!(
                "UPDATE users_organizer_applications SET status = $2, decided_by = $3, decided_at = $4, decision_note = $5
                 WHERE id = $1 AND status = 'pending' RETURNING {APPLICATION_COLS}");
            let app: Option<ApplicationRow> = sqlx::query_as(&sql)
                .bind(id).bind(status).bind(actor).bind(now).bind(note)
                .fetch_optional(&mut *tx).await?;
            let Some(app) = app else { return Ok(false) };
            if approve {
                sqlx::query(
                    "INSERT INTO users_organizers (id, user_id, name, logo, contact_email, contact_phone, website, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                     ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, logo = excluded.logo, contact_email = excluded.contact_email,
                        contact_phone = excluded.contact_phone, website = excluded.website, updated_at = excluded.updated_at")
                    .bind(organizer_id.map(str::to_owned).unwrap_or_else(|| format!("org-{}", new_id()))).bind(&app.user_id).bind(&app.name).bind(&app.logo)
                    .bind(&app.contact_email).bind(&app.contact_phone).bind(&app.website).bind(now)
                    .execute(&mut *tx).await?;
                sqlx::query("INSERT INTO users_roles (user_id, role, granted_at, granted_by) VALUES ($1, 'organizer', $2, $3) ON CONFLICT DO NOTHING")
                    .bind(&app.user_id).bind(now).bind(actor).execute(&mut *tx).await?;
            }
            let detail = serde_json::json!({ "application_id": id, "note": note }).to_string();
            let action = if approve { "organizer_application.approved" } else { "organizer_application.rejected" };
            insert_audit(&mut *tx, Some(actor), action, Some(&app.user_id), &detail).await?;
            Ok(true)
        })
    }

    // ---- audit ----

    pub async fn audit(
        &self,
        actor: Option<&str>,
        action: &str,
        target: Option<&str>,
        detail: &serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        let detail = detail.to_string();
        with_db!(&self.db, pool => insert_audit(pool, actor, action, target, &detail).await)
    }

    pub async fn audit_log(&self, before: Option<&str>, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            at: i64,
            actor_id: Option<String>,
            action: String,
            target_id: Option<String>,
            detail: String,
        }
        let rows: Vec<Row> = with_db!(&self.db, pool => sqlx::query_as(
            "SELECT id, at, actor_id, action, target_id, detail FROM users_audit_log WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2")
            .bind(before).bind(limit).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: tg_platform::clock::rfc3339(r.at),
                actor_id: r.actor_id,
                action: r.action,
                target_id: r.target_id,
                detail: serde_json::from_str(&r.detail).unwrap_or_default(),
            })
            .collect())
    }
}

async fn insert_audit<'e, E, DB>(
    exec: E,
    actor: Option<&str>,
    action: &str,
    target: Option<&str>,
    detail: &str,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = DB>,
    DB: sqlx::Database,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO users_audit_log (id, at, actor_id, action, target_id, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(now_ms())
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(exec)
    .await?;
    Ok(())
}
