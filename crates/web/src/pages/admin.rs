//! Admin pages: users and roles, organizer applications, event moderation, audit log, dead letters. The API
//! refuses non-admins on every call these pages make; the pages only add a friendlier 403.

use askama::Template;
use axum::{
    extract::{Path, Query},
    http::Method,
};
use serde::Deserialize;
use serde_json::json;
use tg_events::{api::EventPage, document::STATUSES};
use tg_platform::auth::Role;
use tg_users::{
    api::Page,
    model::{AuditEntry, OrganizerApplication, UserView},
};

use super::{enc, ok, public::EventCard, see_other};
use crate::ctx::{CsrfForm, Ctx, PageError, PageResult, Problem};

fn require_admin(ctx: &Ctx) -> Result<(), PageError> {
    ctx.require_login()?;
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(ctx.fail(Problem { status: 403, detail: Some(ctx.t("error-admins-only")), ..Default::default() }))
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    status: String,
}

impl ListQuery {
    fn params(&self) -> String {
        let mut p = vec!["limit=50".to_owned()];
        for (k, v) in [("q", &self.q), ("cursor", &self.cursor), ("status", &self.status)] {
            if !v.trim().is_empty() {
                p.push(format!("{k}={}", enc(v.trim())));
            }
        }
        p.join("&")
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct Users {
    ctx: Ctx,
    q: String,
    users: Vec<UserView>,
    next: Option<String>,
    roles: [Role; 3],
}

impl Users {
    fn has(&self, user: &UserView, role: &Role) -> bool {
        user.roles.contains(role)
    }
}

pub async fn users(ctx: Ctx, Query(q): Query<ListQuery>) -> PageResult {
    require_admin(&ctx)?;
    let page: Page<UserView> =
        ctx.get(&format!("/api/v1/admin/users?{}", q.params())).await.map_err(|p| ctx.fail(p))?;
    let next = page.next_cursor.map(|c| format!("/admin?q={}&cursor={}", enc(&q.q), enc(&c)));
    Ok(ok(&Users { ctx, q: q.q, users: page.items, next, roles: Role::ALL }))
}

pub async fn set_roles(Path(id): Path<String>, form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    require_admin(&ctx)?;
    let roles: Vec<&str> = form.all("role");
    let _: serde_json::Value = ctx
        .send(Method::PUT, &format!("/api/v1/admin/users/{}/roles", enc(&id)), &json!({ "roles": roles }), None)
        .await
        .map_err(|p| ctx.fail(p))?;
    Ok(see_other(&format!("/admin?q={}", enc(form.get("q")))))
}

#[derive(Template)]
#[template(path = "admin_applications.html")]
struct Applications {
    ctx: Ctx,
    status: String,
    applications: Vec<OrganizerApplication>,
}

pub async fn applications(ctx: Ctx, Query(mut q): Query<ListQuery>) -> PageResult {
    require_admin(&ctx)?;
    if q.status.is_empty() {
        q.status = "pending".into();
    }
    let page: Page<OrganizerApplication> =
        ctx.get(&format!("/api/v1/admin/organizer-applications?{}", q.params())).await.map_err(|p| ctx.fail(p))?;
    Ok(ok(&Applications { ctx, status: q.status, applications: page.items }))
}

pub async fn decide(Path(id): Path<String>, form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    require_admin(&ctx)?;
    let decision = match form.get("decision") {
        "approve" => "approve",
        "reject" => "reject",
        _ => return Err(ctx.fail(Problem { status: 400, ..Default::default() })),
    };
    let path = format!("/api/v1/admin/organizer-applications/{}/{decision}", enc(&id));
    let _: serde_json::Value =
        ctx.send(Method::POST, &path, &json!({ "note": form.opt("note") }), None).await.map_err(|p| ctx.fail(p))?;
    Ok(see_other("/admin/applications"))
}

pub struct ModeratedEvent {
    pub card: EventCard,
    pub id: String,
    pub organizer: String,
    pub status: String,
    pub visibility: String,
}

impl ModeratedEvent {
    fn visibility_key(&self) -> String {
        format!("visibility-{}", self.visibility)
    }
}

#[derive(Template)]
#[template(path = "admin_events.html")]
struct Events {
    ctx: Ctx,
    q: String,
    status: String,
    statuses: [&'static str; 4],
    events: Vec<ModeratedEvent>,
    next: Option<String>,
}

/// Every event of every status and visibility, most recently changed first, with unpublish and cancel.
pub async fn events(ctx: Ctx, Query(q): Query<ListQuery>) -> PageResult {
    require_admin(&ctx)?;
    let page: EventPage = ctx
        .get(&format!("/api/v1/admin/events?{}&lang={}", q.params(), ctx.lang.code()))
        .await
        .map_err(|p| ctx.fail(p))?;
    let events = page
        .items
        .iter()
        .map(|e| ModeratedEvent {
            card: EventCard::new(&ctx, e),
            id: e.id.clone(),
            organizer: e.organizer.name.clone(),
            status: e.status.clone(),
            visibility: e.visibility.clone(),
        })
        .collect();
    let next =
        page.next_cursor.map(|c| format!("/admin/events?q={}&status={}&cursor={}", enc(&q.q), enc(&q.status), enc(&c)));
    Ok(ok(&Events { ctx, q: q.q, status: q.status, statuses: STATUSES, events, next }))
}

pub struct AuditLine {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct Audit {
    ctx: Ctx,
    entries: Vec<AuditLine>,
    next: Option<String>,
}

pub async fn audit(ctx: Ctx, Query(q): Query<ListQuery>) -> PageResult {
    require_admin(&ctx)?;
    let page: Page<AuditEntry> =
        ctx.get(&format!("/api/v1/admin/audit-log?{}", q.params())).await.map_err(|p| ctx.fail(p))?;
    let entries = page
        .items
        .into_iter()
        .map(|e| AuditLine {
            at: e.at,
            actor: e.actor_id.unwrap_or_default(),
            action: e.action,
            target: e.target_id.unwrap_or_default(),
            detail: if e.detail.is_null() { String::new() } else { e.detail.to_string() },
        })
        .collect();
    let next = page.next_cursor.map(|c| format!("/admin/audit?cursor={}", enc(&c)));
    Ok(ok(&Audit { ctx, entries, next }))
}

/// A dead letter as the page shows it.
pub struct DeadLetterLine {
    pub id: String,
    pub consumer: String,
    pub routing_key: String,
    pub error: String,
    pub failed_at: String,
}

#[derive(Template)]
#[template(path = "admin_dead_letters.html")]
struct DeadLetters {
    ctx: Ctx,
    letters: Vec<DeadLetterLine>,
    total: i64,
}

/// Messages a consumer could never handle, newest first, each with a replay button.
pub async fn dead_letters(ctx: Ctx) -> PageResult {
    require_admin(&ctx)?;
    let page: tg_messaging::api::DeadLetters =
        ctx.get("/api/v1/admin/dead-letters?limit=200").await.map_err(|p| ctx.fail(p))?;
    let letters = page
        .items
        .into_iter()
        .map(|d| DeadLetterLine {
            failed_at: tg_platform::clock::rfc3339(d.failed_at),
            id: d.id,
            consumer: d.consumer,
            routing_key: d.routing_key,
            error: d.error,
        })
        .collect();
    Ok(ok(&DeadLetters { ctx, letters, total: page.total }))
}

/// Replay one dead letter (consumer and id given) or all of them.
pub async fn replay_dead_letters(form: CsrfForm) -> PageResult {
    let ctx = form.ctx.clone();
    require_admin(&ctx)?;
    let (consumer, id) = (form.get("consumer"), form.get("id"));
    let path = if consumer.is_empty() || id.is_empty() {
        "/api/v1/admin/dead-letters/replay".to_owned()
    } else {
        format!("/api/v1/admin/dead-letters/{}/{}/replay", enc(consumer), enc(id))
    };
    let _: tg_messaging::api::Replayed =
        ctx.send(Method::POST, &path, &json!({}), None).await.map_err(|p| ctx.fail(p))?;
    Ok(see_other("/admin/dead-letters"))
}
