//! Event catalog: the fixture round trip, validation, ownership and visibility, lifecycle and domain
//! events, localizations, analytics, ratings, banners, and the ticket-count rule on edits.

use std::{collections::HashMap, sync::Arc};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tg_events::ports::{BookingsView, TypeCounts};
use tg_platform::auth::{Principal, Role};
use ticketgw::demo::fixture_shifted;

use crate::helpers::{assert_problem, spawn_app, TestApp};

/// The fixture, two years later (so its booking window is open or ahead).
pub fn fixture() -> Value {
    fixture_shifted(2)
}

/// A log-in of the demo organizer, whose profile is the fixture's `org-009`: (user id, token).
pub async fn demo_organizer(app: &TestApp) -> (String, String) {
    let user_id = app.app.users.seed_demo().await.unwrap();
    let t = app.login("organizer@example.com", "ticketgw-demo-organizer").await;
    (user_id, t["access_token"].as_str().unwrap().to_owned())
}

/// A fresh organizer with a profile of their own: (organizer id, token).
pub async fn new_organizer(app: &TestApp, admin: &str) -> (String, String) {
    let (_, token) = app.user_with(&[]).await;
    let body = json!({"name": "Other Org", "contact_email": "other@example.com"});
    let application: Value =
        app.post("/api/v1/organizer-applications", Some(&token), &body).await.json().await.unwrap();
    let path = format!("/api/v1/admin/organizer-applications/{}/approve", application["id"].as_str().unwrap());
    assert_eq!(app.post(&path, Some(admin), &json!({})).await.status(), StatusCode::OK);
    let me: Value = app.get("/api/v1/me", Some(&token)).await.json().await.unwrap();
    let email = me["email"].as_str().unwrap().to_owned();
    let token = app.login(&email, "a long password").await["access_token"].as_str().unwrap().to_owned();
    let org: Value = app.get("/api/v1/me/organizer", Some(&token)).await.json().await.unwrap();
    (org["id"].as_str().unwrap().to_owned(), token)
}

/// A valid document with its own id and slug, owned by whoever posts it.
pub fn event_doc(n: usize) -> Value {
    let mut d = fixture();
    d["id"] = json!(format!("evt-t{n}"));
    d["slug"] = json!(format!("test-event-{n}"));
    d.as_object_mut().unwrap().remove("organizer");
    d
}

fn without_server_fields(mut d: Value) -> Value {
    let o = d.as_object_mut().unwrap();
    o.remove("audit");
    o.remove("analytics");
    d["ticketing"].as_object_mut().unwrap().remove("tickets_sold");
    d
}

#[tokio::test]
async fn fixture_round_trips_by_id_and_slug() {
    let app = spawn_app().await;
    let (organizer_user, token) = demo_organizer(&app).await;
    let posted = fixture();
    let res = app.post("/api/v1/events", Some(&token), &posted).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();

    for key in ["evt-001", "tech-conference-2025"] {
        let got: Value = app.get(&format!("/api/v1/events/{key}"), Some(&token)).await.json().await.unwrap();
        assert_eq!(without_server_fields(got.clone()), without_server_fields(posted.clone()), "GET {key}");
        // Same set of fields, nesting and types as the fixture.
        assert_eq!(shape(&got), shape(&posted));
        // Server-owned fields are the server's.
        assert_eq!(got["audit"]["created_by"], organizer_user);
        assert_eq!(got["audit"]["updated_by"], organizer_user);
        assert!(got["audit"]["created_at"].as_str().unwrap().ends_with("+07:00"), "audit times in the event's zone");
        assert_ne!(got["audit"]["created_at"], posted["audit"]["created_at"]);
        assert_eq!(got["analytics"]["rating"], json!({"average": null, "count": 0}));
        assert_eq!(got["ticketing"]["tickets_sold"], 0);
        assert_eq!(got["localizations"]["km"]["title"], "សន្និសីទបច្ចេកវិទ្យា ២០២៥");
    }
    assert_eq!(without_server_fields(created), without_server_fields(posted));

    // Server-owned values sent by a client are ignored.
    let mut sneaky = event_doc(1);
    sneaky["ticketing"]["tickets_sold"] = json!(799);
    sneaky["analytics"]["views"] = json!(1_000_000);
    sneaky["audit"]["created_by"] = json!("someone-else");
    let got: Value = app.post("/api/v1/events", Some(&token), &sneaky).await.json().await.unwrap();
    assert_eq!(got["ticketing"]["tickets_sold"], 0);
    assert_eq!(got["analytics"]["views"], 0);
    assert_eq!(got["audit"]["created_by"], organizer_user);
}

/// The document's structure: field names and JSON types, recursively.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().take(1).map(shape).collect()),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

#[tokio::test]
async fn every_validation_rule_names_its_field() {
    let app = spawn_app().await;
    let (_, token) = demo_organizer(&app).await;
    type Mutation = fn(&mut Value);
    let cases: Vec<(&str, Mutation)> = vec![
        ("slug", |d| d["slug"] = json!("Not A Slug")),
        ("slug", |d| d["slug"] = json!("a--b")),
        ("status", |d| d["status"] = json!("live")),
        ("visibility", |d| d["visibility"] = json!("secret")),
        ("title", |d| d["title"] = json!("")),
        ("datetime.end", |d| d["datetime"]["end"] = d["datetime"]["start"].clone()),
        ("datetime.start", |d| d["datetime"]["start"] = json!("next tuesday")),
        ("datetime.booking_end", |d| d["datetime"]["booking_end"] = json!("2027-11-03T00:00:00+07:00")),
        ("datetime.booking_end", |d| d["datetime"]["booking_end"] = json!("2027-07-01T00:00:00+07:00")),
        ("datetime.timezone", |d| d["datetime"]["timezone"] = json!("Asia/Atlantis")),
        ("ticketing.types[0].available_from", |d| {
            d["ticketing"]["types"][0]["available_from"] = json!("2027-07-01T00:00:00+07:00")
        }),
        ("ticketing.types[1].available_until", |d| {
            d["ticketing"]["types"][1]["available_until"] = json!("2027-10-31T12:00:00+07:00")
        }),
        ("ticketing.types[2].quantity", |d| d["ticketing"]["types"][2]["quantity"] = json!(-1)),
        ("ticketing.types", |d| d["ticketing"]["types"][2]["quantity"] = json!(101)),
        ("ticketing.types[0].currency", |d| d["ticketing"]["types"][0]["currency"] = json!("DOLLARS")),
        ("ticketing.types[0].currency", |d| d["ticketing"]["types"][0]["currency"] = json!("XYZ")),
        ("ticketing.types[1].id", |d| d["ticketing"]["types"][1]["id"] = json!("early-bird")),
        ("ticketing.max_tickets_per_user", |d| d["ticketing"]["max_tickets_per_user"] = json!(0)),
        ("venue.latitude", |d| d["venue"]["latitude"] = json!(91.0)),
        ("venue.longitude", |d| d["venue"]["longitude"] = json!(-181.0)),
        ("venue.type", |d| d["venue"]["type"] = json!("boat")),
        ("venue.online_url", |d| d["venue"]["type"] = json!("online")),
        ("media.banner", |d| d["media"]["banner"] = json!("not a url")),
        ("media.gallery[1]", |d| d["media"]["gallery"][1] = json!("javascript:alert(1)")),
        ("security.terms_and_conditions", |d| d["security"]["terms_and_conditions"] = json!("ftp://x.org/t")),
        ("localizations.km.title", |d| d["localizations"]["km"]["title"] = json!("")),
        // One-line fields take no line breaks (they end up in e-mail subjects, CSV rows, headers).
        ("title", |d| d["title"] = json!("Tech\r\nBcc: victim@example.com")),
        ("localizations.km.title", |d| d["localizations"]["km"]["title"] = json!("a\nb")),
        ("ticketing.types[0].name", |d| d["ticketing"]["types"][0]["name"] = json!("VIP\tseat")),
        ("venue.name", |d| d["venue"]["name"] = json!("Hall\nB")),
        // Prices are whole minor units of their currency; capacities stay within bounds.
        ("ticketing.types[0].price", |d| d["ticketing"]["types"][0]["price"] = json!(10.005)),
        ("ticketing.types[0].price", |d| {
            d["ticketing"]["types"][0]["currency"] = json!("JPY");
            d["ticketing"]["types"][0]["price"] = json!(100.5)
        }),
        ("ticketing.total_capacity", |d| d["ticketing"]["total_capacity"] = json!(100_000_000)),
        ("ticketing.types[2].quantity", |d| d["ticketing"]["types"][2]["quantity"] = json!(20_000_000)),
        ("ticketing.max_tickets_per_user", |d| d["ticketing"]["max_tickets_per_user"] = json!(20_000_000)),
        // Type and shape errors name the field too.
        ("ticketing.types[0].price", |d| d["ticketing"]["types"][0]["price"] = json!("twenty")),
        ("venue.colour", |d| d["venue"]["colour"] = json!("blue")),
        ("category", |d| {
            d.as_object_mut().unwrap().remove("category");
        }),
    ];
    for (field, mutate) in cases {
        let mut doc = event_doc(0);
        mutate(&mut doc);
        let res = app.post("/api/v1/events", Some(&token), &doc).await;
        let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let fields: Vec<&str> =
            body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.iter().any(|f| f.starts_with(field)), "expected {field} among {fields:?}");
    }
    // None of them created anything.
    assert_problem(app.get("/api/v1/events/evt-t0", Some(&token)).await, StatusCode::NOT_FOUND, "not_found").await;

    // Slugs and ids are unique, and never collide with each other.
    assert_eq!(app.post("/api/v1/events", Some(&token), &event_doc(0)).await.status(), StatusCode::CREATED);
    let mut dup = event_doc(1);
    dup["slug"] = json!("test-event-0");
    let body =
        assert_problem(app.post("/api/v1/events", Some(&token), &dup).await, StatusCode::CONFLICT, "slug_taken").await;
    assert_eq!(body["errors"][0]["field"], "slug");
    let mut dup = event_doc(2);
    dup["id"] = json!("evt-t0");
    assert_problem(app.post("/api/v1/events", Some(&token), &dup).await, StatusCode::CONFLICT, "id_taken").await;
    let mut dup = event_doc(3);
    dup["slug"] = json!("evt-t0");
    assert_problem(app.post("/api/v1/events", Some(&token), &dup).await, StatusCode::CONFLICT, "slug_taken").await;
    // An event without an id gets one.
    let mut no_id = event_doc(4);
    no_id.as_object_mut().unwrap().remove("id");
    let got: Value = app.post("/api/v1/events", Some(&token), &no_id).await.json().await.unwrap();
    assert!(got["id"].as_str().unwrap().starts_with("evt-"));
}

#[tokio::test]
async fn ownership_and_visibility() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    let admin =
        app.login("admin@example.com", "ticketgw-demo-admin").await["access_token"].as_str().unwrap().to_owned();
    let (other_org_id, other) = new_organizer(&app, &admin).await;
    let (_, user) = app.user_with(&[]).await;

    // Plain users cannot create; organizers create for themselves only.
    assert_problem(app.post("/api/v1/events", Some(&user), &event_doc(1)).await, StatusCode::FORBIDDEN, "forbidden")
        .await;
    assert_problem(app.post("/api/v1/events", None, &event_doc(1)).await, StatusCode::UNAUTHORIZED, "unauthenticated")
        .await;
    let res = app.post("/api/v1/events", Some(&other), &fixture()).await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "organizer.id");

    let mut draft = event_doc(1);
    draft["status"] = json!("draft");
    let created: Value = app.post("/api/v1/events", Some(&organizer), &draft).await.json().await.unwrap();
    assert_eq!(created["organizer"]["id"], "org-009", "organizer filled from the profile");
    assert_eq!(created["organizer"]["name"], "Cambodia Tech Association");

    // A draft is seen only by its organizer and admins.
    for (who, token) in [("anonymous", None), ("user", Some(&user)), ("other organizer", Some(&other))] {
        let res = app.get("/api/v1/events/evt-t1", token.map(String::as_str)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{who}");
    }
    assert_eq!(app.get("/api/v1/events/evt-t1", Some(&organizer)).await.status(), StatusCode::OK);
    assert_eq!(app.get("/api/v1/events/evt-t1", Some(&admin)).await.status(), StatusCode::OK);
    // ...and only they can change it.
    let res = app.send(Method::PUT, "/api/v1/events/evt-t1", Some(&other), &draft).await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_problem(
        app.post("/api/v1/events/evt-t1/publish", Some(&user), &json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(app.post("/api/v1/events/evt-t1/publish", Some(&organizer), &json!({})).await.status(), StatusCode::OK);
    // Published: visible to all, still editable only by its organizer and admins.
    assert_eq!(app.get("/api/v1/events/evt-t1", None).await.status(), StatusCode::OK);
    let res = app.send(Method::PUT, "/api/v1/events/evt-t1", Some(&other), &draft).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_problem(
        app.post("/api/v1/events/evt-t1/cancel", Some(&user), &json!({})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let mut edit = draft.clone();
    edit["title"] = json!("Edited by admin");
    let res = app.send(Method::PUT, "/api/v1/events/evt-t1", Some(&admin), &edit).await;
    assert_eq!(res.status(), StatusCode::OK);
    let edited: Value = res.json().await.unwrap();
    assert_eq!(edited["title"], "Edited by admin");
    assert_eq!(edited["status"], "published", "PUT does not change status");

    // Admins create on behalf of a named organizer.
    let mut on_behalf = event_doc(2);
    on_behalf["organizer"] = json!({"id": other_org_id});
    let got: Value = app.post("/api/v1/events", Some(&admin), &on_behalf).await.json().await.unwrap();
    assert_eq!(got["organizer"]["name"], "Other Org");
    let mine: Value = app.get("/api/v1/me/events", Some(&other)).await.json().await.unwrap();
    let ids: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["evt-t2"]);
    assert_problem(app.get("/api/v1/me/events", Some(&user)).await, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn unlisted_and_private_events() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    app.register_verified("guest@example.com", "correct horse battery", "Guest").await;
    let guest =
        app.login("guest@example.com", "correct horse battery").await["access_token"].as_str().unwrap().to_owned();
    let (_, stranger) = app.user_with(&[]).await;
    // Whoever registered an invited address without proving it is a stranger.
    app.register("guest2@example.com", "correct horse battery", "Not yet").await;
    let unproven =
        app.login("guest2@example.com", "correct horse battery").await["access_token"].as_str().unwrap().to_owned();

    let mut unlisted = event_doc(1);
    unlisted["visibility"] = json!("unlisted");
    let mut private = event_doc(2);
    private["visibility"] = json!("private");
    for d in [&unlisted, &private] {
        assert_eq!(app.post("/api/v1/events", Some(&organizer), d).await.status(), StatusCode::CREATED);
    }
    let listed: Value = app.get("/api/v1/events", None).await.json().await.unwrap();
    assert!(listed["items"].as_array().unwrap().is_empty(), "neither is listed");
    assert_eq!(app.get("/api/v1/events/test-event-1", None).await.status(), StatusCode::OK, "unlisted by link");
    assert_eq!(app.get("/api/v1/events/test-event-2", None).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/events/test-event-2", Some(&guest)).await.status(), StatusCode::NOT_FOUND);

    let res = app
        .send(
            Method::PUT,
            "/api/v1/events/evt-t2/invites",
            Some(&organizer),
            &json!({"emails": ["Guest@Example.com", "guest2@example.com"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.get("/api/v1/events/test-event-2", Some(&guest)).await.status(), StatusCode::OK);
    assert_eq!(app.get("/api/v1/events/test-event-2", Some(&unproven)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/events/test-event-2", Some(&stranger)).await.status(), StatusCode::NOT_FOUND);
    assert_problem(app.get("/api/v1/events/evt-t2/invites", Some(&guest)).await, StatusCode::FORBIDDEN, "forbidden")
        .await;
    let res =
        app.send(Method::PUT, "/api/v1/events/evt-t2/invites", Some(&organizer), &json!({"emails": ["nope"]})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn admins_see_every_event_whatever_its_status_or_visibility() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    let (_, admin) = app.user_with(&[Role::Admin]).await;
    let mut cancelled = event_doc(1);
    cancelled["visibility"] = json!("unlisted");
    let mut private_draft = event_doc(2);
    private_draft["status"] = json!("draft");
    private_draft["visibility"] = json!("private");
    private_draft["title"] = json!("Riverside Rehearsal");
    let published = event_doc(3);
    for d in [&cancelled, &private_draft, &published] {
        assert_eq!(app.post("/api/v1/events", Some(&organizer), d).await.status(), StatusCode::CREATED);
    }
    // The oldest event changes last (a millisecond later at least, so the order is by change, not by id).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(app.post("/api/v1/events/evt-t1/cancel", Some(&organizer), &json!({})).await.status(), StatusCode::OK);
    let public: Value = app.get("/api/v1/events", None).await.json().await.unwrap();
    assert_eq!(public["items"].as_array().unwrap().len(), 1, "the public listing shows only the published one");

    let ids = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
    };
    let list = |query: &str| {
        let (app, admin, path) = (&app, admin.clone(), format!("/api/v1/admin/events{query}"));
        async move { app.get(&path, Some(&admin)).await }
    };
    let all: Value = list("").await.json().await.unwrap();
    // Most recently changed first: the cancellation came last.
    assert_eq!(ids(&all), ["evt-t1", "evt-t3", "evt-t2"]);
    assert_eq!(ids(&list("?status=draft").await.json().await.unwrap()), ["evt-t2"]);
    assert_eq!(ids(&list("?status=cancelled&visibility=unlisted").await.json().await.unwrap()), ["evt-t1"]);
    assert_eq!(ids(&list("?visibility=private").await.json().await.unwrap()), ["evt-t2"]);
    assert_eq!(ids(&list("?q=riverside").await.json().await.unwrap()), ["evt-t2"]);
    let km: Value = list("?status=published&lang=km").await.json().await.unwrap();
    assert_eq!(km["items"][0]["title"], "សន្និសីទបច្ចេកវិទ្យា ២០២៥");

    // Pages neither repeat nor skip.
    let first: Value = list("?limit=2").await.json().await.unwrap();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second: Value = list(&format!("?limit=2&cursor={cursor}")).await.json().await.unwrap();
    assert!(second["next_cursor"].is_null());
    assert_eq!([ids(&first), ids(&second)].concat(), ids(&all));

    for bad in ["?status=archived", "?visibility=secret", "?limit=0", "?cursor=nope"] {
        assert_problem(list(bad).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    assert_problem(app.get("/api/v1/admin/events", Some(&organizer)).await, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn lifecycle_emits_domain_events() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    let mut bus = app.app.bus.subscribe();
    let mut draft = event_doc(1);
    draft["status"] = json!("draft");
    app.post("/api/v1/events", Some(&organizer), &draft).await;
    let act = |a: &'static str| {
        let app = &app;
        let organizer = &organizer;
        async move { app.post(&format!("/api/v1/events/evt-t1/{a}"), Some(organizer), &json!({})).await }
    };

    assert_problem(act("complete").await, StatusCode::CONFLICT, "invalid_transition").await;
    assert_eq!(act("publish").await.status(), StatusCode::OK);
    let msg = bus.recv().await.unwrap();
    assert_eq!(msg.routing_key, "event.published");
    assert_eq!(msg.payload["event_id"], "evt-t1");

    let mut edit = draft.clone();
    edit["summary"] = json!("New summary");
    assert_eq!(app.send(Method::PUT, "/api/v1/events/evt-t1", Some(&organizer), &edit).await.status(), StatusCode::OK);
    let msg = bus.recv().await.unwrap();
    assert_eq!(msg.routing_key, "event.updated");

    assert_eq!(act("unpublish").await.status(), StatusCode::OK);
    assert_eq!(bus.recv().await.unwrap().routing_key, "event.updated");
    assert_eq!(act("publish").await.status(), StatusCode::OK);
    assert_eq!(bus.recv().await.unwrap().routing_key, "event.published");
    let res = act("cancel").await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "cancelled");
    let msg = bus.recv().await.unwrap();
    assert_eq!(msg.routing_key, "event.cancelled");
    assert!(!msg.id.is_empty());

    // Cancelled is final: no publishing, no editing.
    assert_problem(act("publish").await, StatusCode::CONFLICT, "invalid_transition").await;
    let res = app.send(Method::PUT, "/api/v1/events/evt-t1", Some(&organizer), &edit).await;
    assert_problem(res, StatusCode::CONFLICT, "event_closed").await;
    // Still readable by link, so ticket holders learn of the cancellation.
    let got: Value = app.get("/api/v1/events/evt-t1", None).await.json().await.unwrap();
    assert_eq!(got["status"], "cancelled");
}

#[tokio::test]
async fn localized_reads() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    app.post("/api/v1/events", Some(&organizer), &fixture()).await;
    let res = app.get("/api/v1/events/evt-001?lang=km", None).await;
    assert_eq!(res.headers()["content-language"], "km");
    let km: Value = res.json().await.unwrap();
    assert_eq!(km["title"], "សន្និសីទបច្ចេកវិទ្យា ២០២៥");
    assert_eq!(km["summary"], "ព្រឹត្តិការណ៍ ២ ថ្ងៃអំពីបច្ចេកវិទ្យា និងការច្នៃប្រឌិត");
    let res = app
        .http
        .get(app.url("/api/v1/events/evt-001"))
        .header("accept-language", "km-KH,km;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["title"], "សន្និសីទបច្ចេកវិទ្យា ២០២៥");
    // No French text: the default language is served.
    let res = app.get("/api/v1/events/evt-001?lang=fr", None).await;
    assert_eq!(res.headers()["content-language"], "en");
    assert_eq!(res.json::<Value>().await.unwrap()["title"], "Tech Conference 2025");
    let list: Value = app.get("/api/v1/events?lang=km", None).await.json().await.unwrap();
    assert_eq!(list["items"][0]["title"], "សន្និសីទបច្ចេកវិទ្យា ២០២៥");
}

#[tokio::test]
async fn analytics_and_ratings() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    app.post("/api/v1/events", Some(&organizer), &fixture()).await;
    // One visitor calling 60 times is one view (and one click): repeating cannot buy popularity.
    for _ in 0..60 {
        app.get("/api/v1/events/evt-001", None).await;
        assert_eq!(app.post("/api/v1/events/evt-001/clicks", None, &json!({})).await.status(), StatusCode::ACCEPTED);
    }
    // Two signed-in visitors are two more views; the organizer looking at their own event is none.
    let (_, reader) = app.user_with(&[]).await;
    let (_, other_reader) = app.user_with(&[]).await;
    app.get("/api/v1/events/evt-001", Some(&reader)).await;
    app.get("/api/v1/events/evt-001", Some(&other_reader)).await;
    app.get("/api/v1/events/evt-001", Some(&organizer)).await;
    for (channel, who) in [("telegram", None), ("telegram", None), ("telegram", Some(&reader)), ("facebook", None)] {
        let res = app
            .post("/api/v1/events/tech-conference-2025/shares", who.map(String::as_str), &json!({"channel": channel}))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let res = app.post("/api/v1/events/evt-001/shares", None, &json!({"channel": "myspace"})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    app.app.events.flush_analytics().await;
    let doc: Value = app.get("/api/v1/events/evt-001", Some(&organizer)).await.json().await.unwrap();
    assert_eq!(doc["analytics"]["views"], 3);
    assert_eq!(doc["analytics"]["clicks"], 1);
    assert_eq!(doc["analytics"]["shares"], json!({"facebook": 1, "telegram": 2, "twitter": 0}));

    // Ratings come from attendees: two buyers of a bookable event.
    let posted = app.post("/api/v1/events", Some(&organizer), &crate::bookings::bookable_doc(5, 10)).await;
    assert_eq!(posted.status(), StatusCode::CREATED);
    let (a_id, a) = app.user_with(&[]).await;
    let (b_id, b) = app.user_with(&[]).await;
    for user in [&a_id, &b_id] {
        let req = tg_bookings::model::BookingRequest {
            event_id: "evt-t5".into(),
            items: vec![tg_bookings::model::ItemRequest { ticket_type_id: "vip".into(), quantity: 1 }],
        };
        let (booking, _) = app.app.bookings.hold(user, "k", &req).await.unwrap();
        app.app.bookings.confirm(&booking.id).await.unwrap();
    }
    let rate = |t: &str, stars: i64| {
        let t = t.to_owned();
        let app = &app;
        async move { app.send(Method::PUT, "/api/v1/events/evt-t5/rating", Some(&t), &json!({"stars": stars})).await }
    };
    assert_eq!(rate(&a, 5).await.status(), StatusCode::OK);
    assert_eq!(rate(&b, 2).await.status(), StatusCode::OK);
    // A second rating by the same user replaces the first.
    let doc: Value = rate(&b, 4).await.json().await.unwrap();
    assert_eq!(doc["analytics"]["rating"], json!({"average": 4.5, "count": 2}));
    assert_problem(rate(&a, 6).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_problem(rate(&a, 0).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.send(Method::PUT, "/api/v1/events/evt-t5/rating", None, &json!({"stars": 3})).await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn banner_upload_is_checked_and_served() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    let (_, user) = app.user_with(&[]).await;
    app.post("/api/v1/events", Some(&organizer), &fixture()).await;
    let png: Vec<u8> = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0u8; 64]].concat();
    let put = |token: &str, ct: &str, body: Vec<u8>| {
        app.http
            .put(app.url("/api/v1/events/evt-001/banner"))
            .bearer_auth(token)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let res = put(&organizer, "image/png", png.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    let banner = doc["media"]["banner"].as_str().unwrap().to_owned();
    assert!(banner.starts_with(&format!("{}/media/events/evt-001/", app.base)), "{banner}");
    let served = app.http.get(&banner).send().await.unwrap();
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert_eq!(served.bytes().await.unwrap().to_vec(), png);

    // Not an image, or not the declared type.
    let res = put(&organizer, "image/png", b"<svg onload=alert(1)>".to_vec()).await.unwrap();
    assert_problem(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_image").await;
    let res = put(&organizer, "image/jpeg", png.clone()).await.unwrap();
    assert_problem(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_image").await;
    // Too large.
    let huge = [png.clone(), vec![0u8; 6 * 1024 * 1024]].concat();
    let res = put(&organizer, "image/png", huge).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Not theirs.
    let res = put(&user, "image/png", png.clone()).await.unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    // The banner did not change through any of that.
    let doc: Value = app.get("/api/v1/events/evt-001", None).await.json().await.unwrap();
    assert_eq!(doc["media"]["banner"], banner.as_str());
    // Only our own file names are served.
    for path in
        ["/media/events/evt-001/..%2F..%2Fticketgw.db", "/media/events/evt-001/x.txt", "/media/events/..%2F/x.png"]
    {
        assert!(app.get(path, None).await.status().is_client_error(), "{path}");
    }
}

/// Bookings stand-in with fixed counts, to check the edit rule the bookings service relies on.
struct FixedCounts(HashMap<String, TypeCounts>);

#[async_trait::async_trait]
impl BookingsView for FixedCounts {
    async fn counts(&self, _: &str) -> anyhow::Result<HashMap<String, TypeCounts>> {
        Ok(self.0.clone())
    }
    async fn sold_totals(&self, ids: &[String]) -> anyhow::Result<HashMap<String, i64>> {
        Ok(ids.iter().map(|id| (id.clone(), self.0.values().map(|c| c.sold).sum())).collect())
    }
    async fn attended(&self, _: &str, _: &str) -> anyhow::Result<Option<bool>> {
        Ok(Some(false))
    }
}

#[tokio::test]
async fn edits_cannot_drop_below_sold_and_held() {
    let app = spawn_app().await;
    let organizer_user = app.app.users.seed_demo().await.unwrap();
    let counts = HashMap::from([("vip".to_owned(), TypeCounts { sold: 60, held: 20 })]);
    let events = tg_events::EventsService::new(
        app.app.db.clone(),
        app.app.bus.clone(),
        Arc::new(ticketgw::wiring::UsersDirectory(app.app.users.clone())),
        Arc::new(FixedCounts(counts)),
        tg_events::EventsConfig {
            public_url: app.base.clone(),
            uploads_dir: std::env::temp_dir(),
            max_banner_bytes: 1024,
        },
    );
    let me = Principal::user(organizer_user, vec![Role::User, Role::Organizer]);
    let doc: tg_events::document::EventDocument = serde_json::from_value(fixture()).unwrap();
    let created = events.create(&me, doc.clone()).await.unwrap();
    assert_eq!(created.ticketing.tickets_sold, 60, "tickets_sold comes from the bookings service");

    let mut fewer = doc.clone();
    fewer.ticketing.types[2].quantity = 79; // vip: 80 sold or held
    let err = events.replace(&me, "evt-001", fewer).await.unwrap_err();
    assert_eq!(err.errors[0].field, "ticketing.types[2].quantity");
    let mut removed = doc.clone();
    removed.ticketing.types.remove(2);
    let err = events.replace(&me, "evt-001", removed).await.unwrap_err();
    assert_eq!(err.errors[0].field, "ticketing.types");
    let mut exact = doc.clone();
    exact.ticketing.types[2].quantity = 80;
    assert!(events.replace(&me, "evt-001", exact).await.is_ok());
}

#[tokio::test]
async fn the_organizer_block_is_the_organizers_own_profile_whatever_the_client_sends() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    // A document dressed up as another organizer: name, logo and contacts of someone else.
    let mut doc = event_doc(1);
    doc["status"] = json!("draft");
    doc["organizer"] = json!({
        "id": "", "name": "Someone Famous", "logo": "https://evil.example/logo.png",
        "contact_email": "tickets@evil.example", "contact_phone": "+85512000000", "website": "https://evil.example"
    });
    let created: Value = app.post("/api/v1/events", Some(&organizer), &doc).await.json().await.unwrap();
    let own = created["organizer"].clone();
    assert_eq!(own["id"], "org-009");
    assert_eq!(own["name"], "Cambodia Tech Association");
    for field in ["name", "logo", "contact_email", "contact_phone", "website"] {
        assert!(!own[field].as_str().unwrap_or_default().contains("evil") && own[field] != "Someone Famous", "{own}");
    }
    // An edit cannot dress it up either.
    doc["title"] = json!("Edited");
    let res = app.send(Method::PUT, "/api/v1/events/evt-t1", Some(&organizer), &doc).await;
    assert_eq!(res.status(), StatusCode::OK);
    let edited: Value = res.json().await.unwrap();
    assert_eq!(edited["title"], "Edited");
    assert_eq!(edited["organizer"], own);
}
