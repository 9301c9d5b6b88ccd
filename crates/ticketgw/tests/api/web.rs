//! The web UI over HTTP, as a browser without JavaScript sees it: cookies, CSRF, forms, redirects,
//! escaping and who may open what. (The browser journeys themselves are in `browser.rs`.)

use std::collections::BTreeMap;

use reqwest::{header, redirect::Policy, Client, StatusCode};
use serde_json::{json, Value};

use crate::{
    bookings::{book, bookable_event, items},
    events::{demo_organizer, event_doc, new_organizer},
    helpers::{spawn_app, spawn_with, TestApp},
    payments::paid,
};

/// A cookie-keeping client that does not follow redirects.
struct Browser {
    http: Client,
    base: String,
    cookies: BTreeMap<String, String>,
    /// The CSRF token of the forms on the last page that had one (signed in, it is bound to the session).
    form_csrf: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        let http = Client::builder().redirect(Policy::none()).build().unwrap();
        Browser { http, base: app.base.clone(), cookies: BTreeMap::new(), form_csrf: None }
    }

    /// The CSRF token forms carry now, as a page shows it (one is fetched when the session changed).
    async fn csrf(&mut self) -> String {
        if self.form_csrf.is_none() {
            self.get("/").await;
        }
        self.form_csrf.clone().unwrap_or_default()
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, res: reqwest::Response) -> Page {
        for c in res.headers().get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            // A new session, or a new cookie token: the forms' token changes.
            self.form_csrf = None;
        }
        let (status, headers) = (res.status(), res.headers().clone());
        let body = res.text().await.unwrap();
        if let Some((_, rest)) = body.split_once("<meta name=\"csrf-token\" content=\"") {
            self.form_csrf = rest.split_once('"').map(|(token, _)| token.to_owned());
        }
        Page { status, headers, body }
    }

    async fn get(&mut self, path: &str) -> Page {
        let res = self.http.get(format!("{}{path}", self.base)).header(header::COOKIE, self.cookie_header());
        let res = res.send().await.unwrap();
        self.finish(res).await
    }

    /// Post a form; the CSRF token is added unless `fields` has its own `csrf`.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        // The sign-out form carries the cookie's own token (it must work after the session ended).
        let csrf = if path == "/logout" {
            self.cookies.iter().find(|(k, _)| k.ends_with("tg_csrf")).map(|(_, v)| v.clone()).unwrap_or_default()
        } else {
            self.csrf().await
        };
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if !fields.iter().any(|(k, _)| *k == "csrf") {
            form.push(("csrf", &csrf));
        }
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header())
            .form(&form)
            .send()
            .await
            .unwrap();
        self.finish(res).await
    }

    async fn sign_in(&mut self, email: &str, password: &str) {
        self.get("/login").await;
        let page = self.post("/login", &[("email", email), ("password", password), ("next", "/tickets")]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location(), "/tickets");
    }
}

async fn user(app: &TestApp) -> (String, String) {
    let email = format!("w{}@example.com", uuid::Uuid::new_v4().simple());
    app.app.users.create_user(&email, "a long password", "Web User", &[]).await.unwrap();
    let token = app.login(&email, "a long password").await["access_token"].as_str().unwrap().to_owned();
    (email, token)
}

#[tokio::test]
async fn pages_carry_security_headers_and_a_csrf_cookie() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    let page = b.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let set_cookie: Vec<_> = page.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
    let csrf = set_cookie.iter().find(|c| c.starts_with("tg_csrf=")).expect("csrf cookie");
    assert!(csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax"), "{csrf}");
    assert!(
        page.body.contains(&format!("value=\"{}\"", b.cookies["tg_csrf"])) || page.body.contains(&b.cookies["tg_csrf"])
    );
    // The cookie is reused, not replaced, on the next page.
    let again = b.get("/events").await;
    assert!(again.headers.get(header::SET_COOKIE).is_none());
    for path in ["/assets/app.css", "/assets/vendor/htmx-2.0.11.min.js", "/sw.js", "/manifest.webmanifest"] {
        assert_eq!(b.get(path).await.status, StatusCode::OK, "{path}");
    }
    assert_eq!(b.get("/assets/../Cargo.toml").await.status, StatusCode::NOT_FOUND);
    // An unknown path: a page for browsers, problem+json for API clients.
    let res = b.http.get(format!("{}/no/such/page", b.base)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("<h1>Not found</h1>"));
    let res = b.http.get(format!("{}/no/such/page", b.base)).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn forms_without_the_csrf_token_change_nothing() {
    let app = spawn_app().await;
    bookable_event(&app, 1, 10).await;
    let (email, token) = user(&app).await;
    let mut b = Browser::new(&app);
    b.get("/login").await;
    let page = b.post("/login", &[("email", &email), ("password", "a long password"), ("csrf", "forged")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("tg_at"), "no session from a forged form");

    b.sign_in(&email, "a long password").await;
    let page =
        b.post("/events/evt-t1/book", &[("event_id", "evt-t1"), ("qty_vip", "1"), ("nonce", "n1"), ("csrf", "")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let mine: Value = app.get("/api/v1/me/bookings", Some(&token)).await.json().await.unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 0, "the forged form booked nothing");
    // The scanner's JSON calls need the token in a header.
    let res = b
        .http
        .post(format!("{}/organizer/events/evt-t1/checkins", b.base))
        .header(header::COOKIE, b.cookie_header())
        .json(&json!({"token": "x", "nonce": "n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sign_in_sets_http_only_cookies_and_sign_out_revokes_the_session() {
    let app = spawn_app().await;
    let (email, _) = user(&app).await;
    let mut b = Browser::new(&app);
    b.get("/login").await;
    let wrong = b.post("/login", &[("email", &email), ("password", "not the password")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong e-mail or password"));
    assert!(wrong.body.contains(&format!("value=\"{email}\"")), "the e-mail is kept");

    let page = b.post("/login", &[("email", &email), ("password", "a long password"), ("next", "/account")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/account");
    for c in page.headers.get_all(header::SET_COOKIE) {
        let c = c.to_str().unwrap();
        if c.starts_with("tg_at=") || c.starts_with("tg_rt=") {
            assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
        }
    }
    let account = b.get("/account").await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account.body.contains("Web User") && account.body.contains(&email));

    // An expired access token is replaced from the refresh token without the user noticing.
    b.cookies.remove("tg_at");
    let account = b.get("/account").await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(b.cookies.contains_key("tg_at"), "a new access token was set");

    let refresh = b.cookies["tg_rt"].clone();
    let out = b.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!b.cookies.contains_key("tg_at") && !b.cookies.contains_key("tg_rt"));
    let res = app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": refresh})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "signing out revoked the refresh token");
    let gone = b.get("/account").await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.location(), "/login?next=%2Faccount");
}

#[tokio::test]
async fn after_sign_in_only_paths_on_this_site_are_followed() {
    let app = spawn_app().await;
    let (email, _) = user(&app).await;
    for next in ["//evil.example/x", "https://evil.example", "/\\evil.example", "/\t/evil.example", "/%09/x\n"] {
        let mut b = Browser::new(&app);
        b.get("/login").await;
        let page = b.post("/login", &[("email", &email), ("password", "a long password"), ("next", next)]).await;
        assert_eq!(page.location(), "/", "next={next}");
    }
}

#[tokio::test]
async fn registration_errors_are_shown_next_to_their_fields() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    b.get("/register").await;
    let page = b.post("/register", &[("display_name", "New"), ("email", "not-an-email"), ("password", "short")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"email-err\""), "{}", page.body);
    assert!(page.body.contains("value=\"New\""), "what was typed is kept");
    let page =
        b.post("/register", &[("display_name", "New"), ("email", "new@example.com"), ("password", "short")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"password-err\""), "{}", page.body);
    let page = b
        .post("/register", &[("display_name", "New"), ("email", "new@example.com"), ("password", "a long password")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "registered and signed in");
    assert!(b.cookies.contains_key("tg_at"));
}

#[tokio::test]
async fn event_texts_are_escaped() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    let mut doc = event_doc(7);
    doc["title"] = json!("<script>alert(1)</script> & \"quotes\"");
    doc["description"] = json!("<img src=x onerror=alert(2)>");
    let res = app.post("/api/v1/events", Some(&organizer), &doc).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    let mut b = Browser::new(&app);
    let page = b.get("/events/test-event-7").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>alert(1)") && !page.body.contains("<img src=x"));
    assert!(page.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;") || page.body.contains("&lt;script&gt;"));
    let list = b.get("/events?q=alert").await;
    assert!(!list.body.contains("<script>alert(1)"));
}

#[tokio::test]
async fn booking_forms_book_once_and_bad_quantities_book_nothing() {
    let app = spawn_app().await;
    bookable_event(&app, 2, 10).await;
    let (email, token) = user(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in(&email, "a long password").await;
    for qty in ["abc", "-1", "0", "999"] {
        let page =
            b.post("/events/test-event-2/book", &[("event_id", "evt-t2"), ("qty_vip", qty), ("nonce", qty)]).await;
        assert!(page.status.is_client_error(), "qty {qty}: {}", page.status);
        assert!(page.body.contains("id=\"book-error\""), "the event page says what went wrong");
    }
    let nul = b.post("/events/test-event-2/book", &[("event_id", "evt-t2\0"), ("qty_vip", "1"), ("nonce", "x")]).await;
    assert_eq!(nul.status, StatusCode::BAD_REQUEST);
    let mine: Value = app.get("/api/v1/me/bookings", Some(&token)).await.json().await.unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 0);

    // The same form sent twice (a double click, a retry) makes one booking.
    let form = [("event_id", "evt-t2"), ("qty_vip", "2"), ("qty_standard", "1"), ("nonce", "same-form")];
    let first = b.post("/events/test-event-2/book", &form).await;
    let second = b.post("/events/test-event-2/book", &form).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location(), second.location());
    let mine: Value = app.get("/api/v1/me/bookings", Some(&token)).await.json().await.unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let page = b.get(first.location()).await;
    assert!(page.body.contains("data-countdown") && page.body.contains("$225.50"), "{}", page.body);

    // Cancelling the hold from its page returns the seats.
    let booking_id = first.location().rsplit('/').next().unwrap().to_owned();
    let page = b.post(&format!("/bookings/{booking_id}/cancel"), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let booking: Value = app.get(&format!("/api/v1/bookings/{booking_id}"), Some(&token)).await.json().await.unwrap();
    assert_eq!(booking["status"], "cancelled");
    // Someone else's booking page is not found.
    let (other, _) = user(&app).await;
    let mut c = Browser::new(&app);
    c.sign_in(&other, "a long password").await;
    assert_eq!(c.get(&format!("/bookings/{booking_id}")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_are_only_for_those_allowed() {
    let app = spawn_app().await;
    bookable_event(&app, 3, 10).await;
    let admin = app.user_with(&[tg_platform::auth::Role::Admin]).await.1;
    let (_, other_org) = new_organizer(&app, &admin).await;
    let other_email: Value = app.get("/api/v1/me", Some(&other_org)).await.json().await.unwrap();
    let mut anonymous = Browser::new(&app);
    for path in ["/tickets", "/account", "/organizer", "/admin", "/organizer/events/evt-t3"] {
        let page = anonymous.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(page.location().starts_with("/login?next="), "{path}");
    }
    let (email, _) = user(&app).await;
    let mut attendee = Browser::new(&app);
    attendee.sign_in(&email, "a long password").await;
    for path in ["/admin", "/admin/audit", "/admin/events", "/organizer/events/evt-t3", "/organizer/events/evt-t3/edit"]
    {
        assert_eq!(attendee.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let page = attendee.post("/organizer/events/evt-t3/lifecycle", &[("action", "cancel")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let mut organizer = Browser::new(&app);
    organizer.sign_in(other_email["email"].as_str().unwrap(), "a long password").await;
    assert_eq!(
        organizer.get("/organizer/events/evt-t3").await.status,
        StatusCode::FORBIDDEN,
        "another organizer's event"
    );
    let csv = organizer.get("/organizer/events/evt-t3/attendees.csv").await;
    assert_eq!(csv.status, StatusCode::FORBIDDEN);
    let event: Value = app.get("/api/v1/events/evt-t3", None).await.json().await.unwrap();
    assert_eq!(event["status"], "published", "nothing was cancelled");
}

#[tokio::test]
async fn availability_and_sales_follow_bookings() {
    let app = spawn_app().await;
    let organizer = bookable_event(&app, 4, 10).await;
    let (_, buyer) = app.user_with(&[]).await;
    let res = book(&app, &buyer, "k1", &items("evt-t4", &[("vip", 2), ("standard", 1)])).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let usd: Value = res.json().await.unwrap();
    let res = book(&app, &buyer, "k2", &items("evt-t4", &[("riel", 1)])).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let khr: Value = res.json().await.unwrap();

    let avail: Value = app.get("/api/v1/events/evt-t4/availability", None).await.json().await.unwrap();
    let vip = avail["types"].as_array().unwrap().iter().find(|t| t["ticket_type_id"] == "vip").unwrap();
    assert_eq!(vip["available"], 8, "held seats are not available");
    assert_eq!(avail["total_available"], 310 - 4);

    for b in [&usd, &khr] {
        app.app.bookings.confirm(b["id"].as_str().unwrap()).await.unwrap();
    }
    let sales: Value = app.get("/api/v1/events/evt-t4/sales", Some(&organizer)).await.json().await.unwrap();
    assert_eq!(sales["sold"], 4);
    let revenue: Vec<(String, f64)> = sales["revenue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["currency"].as_str().unwrap().to_owned(), m["amount"].as_f64().unwrap()))
        .collect();
    assert!(revenue.contains(&("USD".into(), 225.5)) && revenue.contains(&("KHR".into(), 40000.0)), "{revenue:?}");
    let vip = sales["types"].as_array().unwrap().iter().find(|t| t["ticket_type_id"] == "vip").unwrap();
    assert_eq!((vip["sold"].as_i64(), vip["held"].as_i64()), (Some(2), Some(0)));
    // The fixture's event is in Asia/Phnom_Penh: the day is its day there.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Phnom_Penh").unwrap())
        .strftime("%Y-%m-%d")
        .to_string();
    assert!(sales["daily"].as_array().unwrap().iter().any(|d| d["date"] == today.as_str() && d["tickets"] == 2));

    assert_eq!(app.get("/api/v1/events/evt-t4/sales", Some(&buyer)).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/events/evt-t4/sales", None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/events/nope/availability", None).await.status(), StatusCode::NOT_FOUND);
    // Private events are not sold, so they show no availability (nor that they exist).
    let mut private = event_doc(9);
    private["visibility"] = json!("private");
    assert_eq!(app.post("/api/v1/events", Some(&organizer), &private).await.status(), StatusCode::CREATED);
    assert_eq!(app.get("/api/v1/events/evt-t9/availability", None).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_event_form_writes_every_field_and_keeps_what_it_does_not_show() {
    let app = spawn_app().await;
    demo_organizer(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in("organizer@example.com", "ticketgw-demo-organizer").await;
    let form = [
        ("title", "Form Festival"),
        ("summary", "Made with the form"),
        ("description", "Line one\nLine two"),
        ("slug", "form-festival"),
        ("language", "en"),
        ("visibility", "public"),
        ("priority", "2"),
        ("category_id", "cat-music"),
        ("category_name", "Music"),
        ("tags", "Music, Outdoor"),
        ("l10n_title", "ពិធីបុណ្យ"),
        ("l10n_summary", ""),
        ("l10n_description", ""),
        ("venue_type", "hybrid"),
        ("venue_name", "Olympic Stadium"),
        ("venue_city", "Phnom Penh"),
        ("venue_address", "Charles de Gaulle Blvd"),
        ("latitude", "11.558"),
        ("longitude", "104.911"),
        ("online_url", "https://stream.example.com/ff"),
        ("timezone", "Asia/Phnom_Penh"),
        ("start", "2031-02-01T18:00"),
        ("end", "2031-02-01T23:30"),
        ("booking_start", "2030-12-01T09:00"),
        ("booking_end", "2031-01-31T20:00"),
        ("max_per_user", "4"),
        ("capacity", "1000"),
        ("tt_id", "ga"),
        ("tt_name", "General"),
        ("tt_price", "12.5"),
        ("tt_currency", "usd"),
        ("tt_quantity", "900"),
        ("tt_refundable", "false"),
        ("tt_from", ""),
        ("tt_until", "2031-01-31T20:00"),
        ("tt_benefits", "Entry\n\nPoster"),
        ("tt_id", ""),
        ("tt_name", ""),
        ("tt_price", ""),
        ("tt_currency", "USD"),
        ("tt_quantity", ""),
        ("tt_refundable", "true"),
        ("tt_from", ""),
        ("tt_until", ""),
        ("tt_benefits", ""),
        ("banner", "https://cdn.example.com/ff.jpg"),
        ("gallery", "https://cdn.example.com/1.jpg\nhttps://cdn.example.com/2.jpg"),
        ("video", ""),
        ("checkin_method", "qr_code"),
        ("access_control", "jwt_rbac"),
        ("terms", "https://example.com/terms"),
    ];
    let page = b.post("/organizer/events/new", &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let id = page.location().rsplit('/').next().unwrap().to_owned();
    // Drafts are only visible to their managers.
    let organizer = app.login("organizer@example.com", "ticketgw-demo-organizer").await;
    let token = organizer["access_token"].as_str().unwrap();
    assert_eq!(app.get(&format!("/api/v1/events/{id}"), None).await.status(), StatusCode::NOT_FOUND);
    let doc: Value = app.get(&format!("/api/v1/events/{id}"), Some(token)).await.json().await.unwrap();
    assert_eq!(doc["status"], "draft");
    assert_eq!(doc["title"], "Form Festival");
    assert_eq!(doc["description"], "Line one\nLine two");
    assert_eq!(doc["priority"], 2);
    assert_eq!(doc["tags"], json!(["music", "outdoor"]));
    assert_eq!(doc["localizations"]["km"]["title"], "ពិធីបុណ្យ");
    assert_eq!(
        doc["venue"],
        json!({"type": "hybrid", "name": "Olympic Stadium", "address": "Charles de Gaulle Blvd",
        "city": "Phnom Penh", "latitude": 11.558, "longitude": 104.911, "online_url": "https://stream.example.com/ff"})
    );
    assert_eq!(doc["datetime"]["start"], "2031-02-01T18:00:00+07:00", "read in the event's time zone");
    assert_eq!(doc["datetime"]["duration_minutes"], 330);
    let types = doc["ticketing"]["types"].as_array().unwrap();
    assert_eq!(types.len(), 1, "the blank row is not a ticket type");
    assert_eq!(types[0]["currency"], "USD");
    assert_eq!(types[0]["refundable"], false);
    assert_eq!(types[0]["benefits"], json!(["Entry", "Poster"]));
    assert_eq!(types[0]["available_from"], Value::Null);
    assert_eq!(doc["media"]["gallery"].as_array().unwrap().len(), 2);
    assert_eq!(doc["security"]["terms_and_conditions"], "https://example.com/terms");

    // Edit: the form shows the stored values and saving changes only what changed.
    let edit = b.get(&format!("/organizer/events/{id}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("value=\"2031-02-01T18:00\"") && edit.body.contains("Olympic Stadium"));
    let mut changed: Vec<(&str, &str)> = form.iter().filter(|(k, _)| !k.starts_with("tt_")).copied().collect();
    changed.retain(|(k, _)| *k != "title");
    changed.push(("title", "Form Festival II"));
    for (k, v) in [
        ("tt_id", "ga"),
        ("tt_name", "General"),
        ("tt_price", "15"),
        ("tt_currency", "USD"),
        ("tt_quantity", "900"),
        ("tt_refundable", "true"),
        ("tt_from", ""),
        ("tt_until", ""),
        ("tt_benefits", "Entry"),
    ] {
        changed.push((k, v));
    }
    let page = b.post(&format!("/organizer/events/{id}/edit"), &changed).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let after: Value = app.get(&format!("/api/v1/events/{id}"), Some(token)).await.json().await.unwrap();
    assert_eq!(after["title"], "Form Festival II");
    assert_eq!(after["ticketing"]["types"][0]["price"], 15.0);
    assert_eq!(after["audit"]["created_at"], doc["audit"]["created_at"], "server fields are kept");

    // Values that are not numbers or dates come back to the form, with what was typed.
    let mut bad: Vec<(&str, &str)> = changed.iter().filter(|(k, _)| *k != "start").copied().collect();
    bad.push(("start", "soon"));
    let page = b.post(&format!("/organizer/events/{id}/edit"), &bad).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"f-start-err\"") && page.body.contains("value=\"soon\""), "{}", page.body);
}

#[tokio::test]
async fn khmer_is_chosen_by_cookie_or_browser_language() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    let res = b.http.get(format!("{}/", b.base)).header("accept-language", "km-KH,km;q=0.9").send().await.unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("<html lang=\"km\">") && body.contains("ព្រឹត្តិការណ៍"));
    let switch = b.get("/lang/km?next=/events").await;
    assert_eq!(switch.location(), "/events");
    assert_eq!(b.cookies["tg_lang"], "km");
    assert!(b.get("/events").await.body.contains("<html lang=\"km\">"));
    assert_eq!(b.get("/lang/fr").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signing_out_after_the_access_token_expired_ends_the_session() {
    let app = spawn_app().await;
    let (email, _) = user(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in(&email, "a long password").await;
    // The browser dropped the access cookie (its max-age is the token's lifetime).
    b.cookies.remove("tg_at");
    let refresh = b.cookies["tg_rt"].clone();
    let out = b.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!b.cookies.contains_key("tg_at") && !b.cookies.contains_key("tg_rt"), "no new session: {:?}", b.cookies);
    let res = app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": refresh})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(b.get("/account").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_loaded_together_share_one_refresh_and_keep_the_session() {
    let app = spawn_app().await;
    let (email, _) = user(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in(&email, "a long password").await;
    b.cookies.remove("tg_at");
    // Several tabs at once, all with the same refresh token: the API would take a second use of a
    // rotated refresh token for theft and end the session.
    let cookies = b.cookie_header();
    let loads = (0..6).map(|_| {
        let (http, url, cookies) = (b.http.clone(), format!("{}/account", b.base), cookies.clone());
        tokio::spawn(async move { http.get(url).header(header::COOKIE, cookies).send().await.unwrap() })
    });
    let mut last = None;
    for load in loads {
        let res = load.await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        last = Some(res);
    }
    b.finish(last.unwrap()).await;
    let later = b.get("/account").await;
    assert_eq!(later.status, StatusCode::OK, "the session survived");
    b.cookies.remove("tg_at");
    assert_eq!(b.get("/account").await.status, StatusCode::OK, "and its refresh token still works");
}

#[tokio::test]
async fn organizers_upload_a_banner_from_the_dashboard() {
    let app = spawn_app().await;
    bookable_event(&app, 5, 10).await;
    let png: &[u8] = include_bytes!("../../../web/assets/icon-192.png");
    let mut b = Browser::new(&app);
    b.sign_in("organizer@example.com", "ticketgw-demo-organizer").await;
    let session_csrf = b.csrf().await;
    let upload = |csrf: String, cookies: String| {
        b.http
            .put(format!("{}/organizer/events/evt-t5/banner", b.base))
            .header(header::COOKIE, cookies)
            .header(header::CONTENT_TYPE, "image/png")
            .header("x-csrf-token", csrf)
            .body(png.to_vec())
            .send()
    };
    let res = upload("forged".into(), b.cookie_header()).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The signed-in page's token, not the cookie's: forms of a session carry its own.
    let res = upload(b.cookies["tg_csrf"].clone(), b.cookie_header()).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "the cookie's token alone is not the session's");
    let res = upload(session_csrf, b.cookie_header()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = app.get("/api/v1/events/evt-t5", None).await.json().await.unwrap();
    let banner = doc["media"]["banner"].as_str().unwrap();
    assert!(banner.contains("/media/events/evt-t5/"), "{banner}");
    let page = b.get("/organizer/events/evt-t5").await;
    assert!(page.body.contains(banner), "the dashboard shows the new banner");

    // Someone else's event: the API refuses, whatever the UI lets through.
    let (email, _) = user(&app).await;
    let mut other = Browser::new(&app);
    other.sign_in(&email, "a long password").await;
    let csrf = other.csrf().await;
    let res = other
        .http
        .put(format!("{}/organizer/events/evt-t5/banner", other.base))
        .header(header::COOKIE, other.cookie_header())
        .header(header::CONTENT_TYPE, "image/png")
        .header("x-csrf-token", csrf)
        .body(png.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn notice_channels_and_door_staff_are_set_from_their_forms() {
    let app = spawn_with(crate::accounts::offering_telegram_and_sms).await;
    bookable_event(&app, 6, 10).await;
    let (email, token) = user(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in(&email, "a long password").await;
    let page = b.post("/account/channels", &[("telegram_chat_id", "12345"), ("phone", "012 345")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"ch-phone-err\"") && page.body.contains("value=\"012 345\""), "{}", page.body);
    let page = b.post("/account/channels", &[("telegram_chat_id", "12345"), ("phone", "+85512345678")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let channels: Value = app.get("/api/v1/me/notification-channels", Some(&token)).await.json().await.unwrap();
    assert_eq!(
        channels,
        json!({"telegram_chat_id": "12345", "telegram_confirmed": false, "phone": "+85512345678", "phone_confirmed": false})
    );
    // Each waits for the code sent there; a wrong one is shown on the page.
    let page = b.get("/account").await;
    assert!(page.body.contains("id=\"code-telegram\"") && page.body.contains("id=\"code-sms\""), "{}", page.body);
    let page = b.post("/account/channels/confirm", &[("channel", "telegram"), ("code", "not-it")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The organizer appoints this user as door staff; the scanner then accepts their scans.
    let mut organizer = Browser::new(&app);
    organizer.sign_in("organizer@example.com", "ticketgw-demo-organizer").await;
    let page = organizer.post("/organizer/events/evt-t6/staff", &[("emails", &format!("{email}\n"))]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(organizer.get("/organizer/events/evt-t6").await.body.contains(&email));
    let csrf = b.csrf().await;
    let scan = b
        .http
        .post(format!("{}/organizer/events/evt-t6/checkins", b.base))
        .header(header::COOKIE, b.cookie_header())
        .header("x-csrf-token", csrf)
        .json(&json!({"token": "not-a-ticket", "nonce": "n-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(scan.status(), StatusCode::OK, "staff may scan");
    let result: Value = scan.json().await.unwrap();
    assert_eq!(result["result"], "forged", "an answer from the check-in itself");
    // Staff cannot manage the event.
    let page = b.post("/organizer/events/evt-t6/staff", &[("emails", "me@example.com")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn paying_with_khqr_shows_the_code_and_polls() {
    let app = spawn_with(|s| {
        s.khqr_account_id = Some("ticketgw@devb".into());
        // Nothing answers here: the page must still show the pending payment.
        s.bakong_api_url = Some("http://127.0.0.1:9".into());
        s.payments_sandbox = Some(true);
    })
    .await;
    bookable_event(&app, 8, 10).await;
    let (email, _) = user(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in(&email, "a long password").await;
    let booked =
        b.post("/events/test-event-8/book", &[("event_id", "evt-t8"), ("qty_riel", "2"), ("nonce", "k1")]).await;
    assert_eq!(booked.status, StatusCode::SEE_OTHER);
    let booking = b.get(booked.location()).await;
    assert!(booking.body.contains("value=\"sandbox\" checked"), "the sandbox is offered first");
    assert!(booking.body.contains("value=\"khqr\""));
    assert!(booking.body.contains("80,000 ៛"), "riel total: {}", booking.body);
    let booking_id = booked.location().rsplit('/').next().unwrap().to_owned();
    let pay = b.post(&format!("/bookings/{booking_id}/pay"), &[("provider", "khqr"), ("nonce", "p1")]).await;
    assert_eq!(pay.status, StatusCode::SEE_OTHER, "{}", pay.body);
    assert!(pay.location().starts_with("/payments/"), "{}", pay.location());
    let page = b.get(pay.location()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg") && page.body.contains("Bakong KHQR banking app"), "{}", page.body);
    assert!(page.body.contains("hx-trigger=\"every 3s\""), "the page polls while pending");
    // The same form again (a double click) does not start a second payment.
    let again = b.post(&format!("/bookings/{booking_id}/pay"), &[("provider", "khqr"), ("nonce", "p1")]).await;
    assert_eq!(again.location(), pay.location());
}

#[tokio::test]
async fn admins_moderate_drafts_and_private_events_too() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    let mut private_draft = event_doc(1);
    private_draft["status"] = json!("draft");
    private_draft["visibility"] = json!("private");
    private_draft["title"] = json!("Secret Rehearsal");
    for d in [&private_draft, &event_doc(2)] {
        assert_eq!(app.post("/api/v1/events", Some(&organizer), d).await.status(), StatusCode::CREATED);
    }
    app.app
        .users
        .create_user("mod@example.com", "a long password", "Moderator", &[tg_platform::auth::Role::Admin])
        .await
        .unwrap();
    let mut admin = Browser::new(&app);
    admin.sign_in("mod@example.com", "a long password").await;

    let all = admin.get("/admin/events").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.body.contains("Secret Rehearsal") && all.body.contains("Tech Conference 2025"), "{}", all.body);
    assert!(all.body.contains("Private (invite only)"));
    let drafts = admin.get("/admin/events?status=draft").await;
    assert!(drafts.body.contains("Secret Rehearsal") && !drafts.body.contains("Tech Conference 2025"));
    // A draft can be cancelled but not unpublished.
    assert!(drafts.body.contains(r#"value="cancel""#) && !drafts.body.contains(r#"value="unpublish""#));

    let done = admin.post("/organizer/events/evt-t1/lifecycle", &[("action", "cancel"), ("back", "admin")]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, "/admin/events"));
    let event: Value = app.get("/api/v1/events/evt-t1", Some(&organizer)).await.json().await.unwrap();
    assert_eq!(event["status"], "cancelled");
    let cancelled = admin.get("/admin/events?status=cancelled").await;
    assert!(cancelled.body.contains("Secret Rehearsal") && !cancelled.body.contains(r#"value="cancel""#));
}

#[tokio::test]
async fn attendees_refund_chosen_tickets_from_the_booking_page() {
    let app = spawn_app().await;
    bookable_event(&app, 7, 10).await;
    let (email, token) = user(&app).await;
    let hold: Value =
        book(&app, &token, "r1", &items("evt-t7", &[("vip", 2), ("standard", 1)])).await.json().await.unwrap();
    let booking_id = hold["id"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&app);
    b.sign_in(&email, "a long password").await;
    // Before payment there is nothing to refund yet.
    assert!(!b.get(&format!("/bookings/{booking_id}")).await.body.contains("/refund"));
    paid(&app, &token, &hold).await;
    let tickets: Value = app.get("/api/v1/me/tickets", Some(&token)).await.json().await.unwrap();
    let id_of = |type_id: &str| -> Vec<String> {
        tickets["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["ticket_type_id"] == type_id)
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (vip, standard) = (id_of("vip"), id_of("standard"));

    let page = b.get(&format!("/bookings/{booking_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    // Only the refundable tickets can be chosen; the standard one says why not.
    for id in &vip {
        assert!(page.body.contains(&format!(r#"name="ticket" value="{id}""#)), "{}", page.body);
    }
    assert!(!page.body.contains(&format!(r#"value="{}""#, standard[0])));
    assert!(page.body.contains("Not refundable"));

    // Nothing chosen: told so next to the list, nothing changes.
    let none = b.post(&format!("/bookings/{booking_id}/refund"), &[]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.body.contains(r#"id="refund-error""#) && none.body.contains("Choose the tickets to refund."));
    // A non-refundable ticket smuggled into the form is refused by the API, and nothing is refunded.
    let sneaky =
        b.post(&format!("/bookings/{booking_id}/refund"), &[("ticket", &vip[0]), ("ticket", &standard[0])]).await;
    assert_eq!(sneaky.status, StatusCode::CONFLICT, "{}", sneaky.body);
    assert!(sneaky.body.contains(r#"id="refund-error""#));
    let still: Value = app.get("/api/v1/me/tickets", Some(&token)).await.json().await.unwrap();
    assert!(still["items"].as_array().unwrap().iter().all(|t| t["status"] == "valid"));

    let done = b.post(&format!("/bookings/{booking_id}/refund"), &[("ticket", &vip[0])]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, format!("/bookings/{booking_id}").as_str()));
    let after: Value = app.get("/api/v1/me/tickets", Some(&token)).await.json().await.unwrap();
    let status_of =
        |id: &str| after["items"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap()["status"].clone();
    assert_eq!(
        (status_of(&vip[0]), status_of(&vip[1]), status_of(&standard[0])),
        (json!("cancelled"), json!("valid"), json!("valid"))
    );
    // The page shows the refund once the provider has paid it, and offers only the remaining VIP ticket.
    let mut page = b.get(&format!("/bookings/{booking_id}")).await;
    for _ in 0..50 {
        if page.body.contains("Refunded: $100.00") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        page = b.get(&format!("/bookings/{booking_id}")).await;
    }
    assert!(page.body.contains("Refunded: $100.00"), "{}", page.body);
    assert!(
        !page.body.contains(&format!(r#"value="{}""#, vip[0])) && page.body.contains(&format!(r#"value="{}""#, vip[1]))
    );

    // Another user cannot refund this booking's tickets through the page.
    let (other, _) = user(&app).await;
    let mut stranger = Browser::new(&app);
    stranger.sign_in(&other, "a long password").await;
    let res = stranger.post(&format!("/bookings/{booking_id}/refund"), &[("ticket", &vip[1])]).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let last: Value = app.get("/api/v1/me/tickets", Some(&token)).await.json().await.unwrap();
    assert_eq!(last["items"].as_array().unwrap().iter().filter(|t| t["status"] == "valid").count(), 2);
}

#[tokio::test]
async fn events_go_into_calendars_for_those_who_may_see_them() {
    let app = spawn_app().await;
    let (_, organizer) = demo_organizer(&app).await;
    let mut private = event_doc(2);
    private["visibility"] = json!("private");
    for d in [&event_doc(1), &private] {
        assert_eq!(app.post("/api/v1/events", Some(&organizer), d).await.status(), StatusCode::CREATED);
    }
    let mut anonymous = Browser::new(&app);
    assert!(anonymous.get("/events/test-event-1").await.body.contains("/events/test-event-1/calendar.ics"));
    let ics = anonymous.get("/events/test-event-1/calendar.ics").await;
    assert_eq!(ics.status, StatusCode::OK);
    assert_eq!(ics.headers[header::CONTENT_TYPE], "text/calendar; charset=utf-8");
    assert_eq!(ics.headers[header::CONTENT_DISPOSITION], "attachment; filename=\"test-event-1.ics\"");
    assert!(ics.body.contains("\r\nSUMMARY:Tech Conference 2025\r\n"), "{}", ics.body);
    assert!(ics.body.contains("\r\nUID:evt-t1@ticket-gateway\r\n"));
    assert!(ics.body.contains(&format!("\r\nURL:{}/events/test-event-1\r\n", app.base)), "links back to the page");
    let private_ics = anonymous.get("/events/test-event-2/calendar.ics").await;
    assert_eq!(private_ics.status, StatusCode::NOT_FOUND);
    assert!(!private_ics.body.contains("BEGIN:VCALENDAR"));
}

#[tokio::test]
async fn the_account_page_pages_through_older_messages() {
    let app = spawn_app().await;
    crate::notifications::holder_with_notices(&app, "reader@example.com", 12).await;
    let mut b = Browser::new(&app);
    b.get("/login").await;
    let page = b.post("/login", &[("email", "reader@example.com"), ("password", "a long password")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);

    let newest = b.get("/account").await;
    assert_eq!(newest.status, StatusCode::OK);
    assert_eq!(newest.body.matches("class=\"message\"").count(), 10, "ten per page");
    // Newest first: the ten latest event changes, not the welcome or the confirmation.
    assert_eq!(newest.body.matches("has changed").count(), 10);
    // The link to the older page: the only href on the line of its label.
    let line = newest.body.lines().find(|l| l.contains("Older messages")).expect("an older messages link");
    let href = line.split("href=\"").nth(1).and_then(|h| h.split('"').next()).unwrap();
    let href = href.replace("&#x2f;", "/").replace("&#x3d;", "=").replace("&amp;", "&").replace("&#x23;", "#");
    assert!(href.starts_with("/account?messages="), "{href}");
    let older = b.get(&href).await;
    assert_eq!(older.status, StatusCode::OK);
    assert_eq!(older.body.matches("class=\"message\"").count(), 4, "the other four");
    assert_eq!(older.body.matches("has changed").count(), 2);
    assert!(older.body.contains("Your tickets for") && older.body.contains("Welcome to Ticket Gateway"));
    assert!(!older.body.contains("Older messages"), "the last page");

    // A stale or made-up cursor shows the newest messages.
    let bad = b.get("/account?messages=not-a-cursor").await;
    assert_eq!(bad.status, StatusCode::OK);
    assert_eq!(bad.body.matches("class=\"message\"").count(), 10);
}

#[tokio::test]
async fn admins_list_and_replay_dead_letters_from_their_page() {
    let app = spawn_app().await;
    let db = &app.app.db;
    // A message the notifications consumer gave up on (for a user who no longer exists, say).
    let message = json!({"id": "m-1", "routing_key": "user.registered", "occurred_at": "2026-11-29T00:00:00Z",
                         "payload": {"user_id": "nobody", "email": "gone@example.com", "display_name": "Gone", "language": "en"}});
    tg_messaging::dead_letters::record(
        db,
        "notifications",
        "m-1",
        "user.registered",
        &message.to_string(),
        "poison message: <b>x</b>",
    )
    .await
    .unwrap();
    app.app
        .users
        .create_user("ops@example.com", "a long password", "Ops", &[tg_platform::auth::Role::Admin])
        .await
        .unwrap();
    let (email, _) = user(&app).await;
    let mut attendee = Browser::new(&app);
    attendee.sign_in(&email, "a long password").await;
    assert_eq!(attendee.get("/admin/dead-letters").await.status, StatusCode::FORBIDDEN);
    let refused = attendee.post("/admin/dead-letters/replay", &[("consumer", "notifications"), ("id", "m-1")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mut admin = Browser::new(&app);
    admin.sign_in("ops@example.com", "a long password").await;
    let page = admin.get("/admin/dead-letters").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("user.registered") && page.body.contains("m-1"), "{}", page.body);
    assert!(page.body.contains("poison message:") && !page.body.contains("<b>x</b>"), "the error is escaped");
    let done = admin.post("/admin/dead-letters/replay", &[("consumer", "notifications"), ("id", "m-1")]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, "/admin/dead-letters"));
    // Back with its consumer: gone from the list, waiting (due now) for its next attempt.
    assert_eq!(tg_messaging::dead_letters::count(db).await.unwrap(), 0);
    let empty = admin.get("/admin/dead-letters").await;
    assert!(empty.body.contains("No dead letters"), "{}", empty.body);
}

#[tokio::test]
async fn a_banner_upload_is_refused_before_its_body_is_read_and_cut_at_the_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(|s| s.max_banner_bytes = Some(64 * 1024)).await;
    bookable_event(&app, 5, 10).await;
    // A request announcing 30 MB without a session or a token is answered at once: the server does
    // not wait for (or read) the body first.
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /organizer/events/evt-t5/banner HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/png\r\n\
         Content-Length: 30000000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&[0u8; 1024]).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut answer))
        .await
        .expect("answered before the body was sent")
        .unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 403"), "{}", String::from_utf8_lossy(&answer));

    // Signed in with the token, a body over MAX_BANNER_BYTES is refused and the banner stays as it was.
    let before: Value = app.get("/api/v1/events/evt-t5", None).await.json().await.unwrap();
    let mut b = Browser::new(&app);
    b.sign_in("organizer@example.com", "ticketgw-demo-organizer").await;
    let csrf = b.csrf().await;
    let res = b
        .http
        .put(format!("{}/organizer/events/evt-t5/banner", b.base))
        .header(header::COOKIE, b.cookie_header())
        .header(header::CONTENT_TYPE, "image/png")
        .header("x-csrf-token", csrf)
        .body(vec![0u8; 64 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let after: Value = app.get("/api/v1/events/evt-t5", None).await.json().await.unwrap();
    assert_eq!(after["media"], before["media"]);
}

#[tokio::test]
async fn mailed_links_are_used_by_their_form_not_by_opening_them() {
    use crate::helpers::{account_mail, link_token};
    let app = spawn_app().await;
    let mut bus = app.app.bus.subscribe();
    app.register("linked@example.com", "a long password", "Linked").await;
    let token = link_token(&account_mail(&mut bus, "verify_email").await);
    let mut b = Browser::new(&app);
    let page = b.get(&format!("/account/verify-email?token={token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("value=\"{token}\"")), "{}", page.body);
    // Opening the link (a mail scanner, a preview) used nothing up: the form does.
    let page = b.post("/account/verify-email", &[("token", &token)]).await;
    assert!(page.body.contains("Your address is verified"), "{}", page.body);
    let page = b.post("/account/verify-email", &[("token", &token)]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "used once");

    let page = b.post("/account/forgot-password", &[("email", "linked@example.com")]).await;
    assert!(page.body.contains("the link is on its way"), "{}", page.body);
    let token = link_token(&account_mail(&mut bus, "reset_password").await);
    let page = b.post("/account/reset-password", &[("token", &token), ("password", "short")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = b.post("/account/reset-password", &[("token", &token), ("password", "a newer long password")]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/login?reset=1"));
    b.sign_in("linked@example.com", "a newer long password").await;

    // The data export holds the account and its sessions, as a download.
    let res = b.http.get(format!("{}/account/export.json", b.base)).header(header::COOKIE, b.cookie_header());
    let res = res.send().await.unwrap();
    assert!(res.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().starts_with("attachment"));
    let export: Value = res.json().await.unwrap();
    assert_eq!(export["account"]["email"], "linked@example.com");
    assert_eq!(export["account"]["email_verified"], true);
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    assert!(export["bookings"].is_array() && export["notices"].is_array() && export["tickets"].is_object());
    assert!(export["payments"].is_array());
}

/// Over HTTPS the cookies take the `__Host-` prefix (secure origin only, this host only, path `/`).
#[tokio::test]
async fn cookies_are_host_only_and_secure_over_https() {
    let app = spawn_with(|s| s.public_url = Some("https://tickets.example".into())).await;
    let (email, _) = user(&app).await;
    let mut b = Browser::new(&app);
    let page = b.get("/login").await;
    let set: Vec<&str> = page.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
    assert!(
        set.iter().any(|c| c.starts_with("__Host-tg_csrf=") && c.contains("Secure") && c.contains("Path=/")),
        "{set:?}"
    );
    assert!(!set.iter().any(|c| c.starts_with("tg_")), "no unprefixed cookie: {set:?}");
    b.sign_in(&email, "a long password").await;
    assert!(b.cookies.contains_key("__Host-tg_at") && b.cookies.contains_key("__Host-tg_rt"), "{:?}", b.cookies);
    let page = b.get("/account").await;
    assert_eq!(page.status, StatusCode::OK, "the prefixed cookies carry the session");
    // The same values under the plain names are not read.
    let plain: String = b
        .cookies
        .iter()
        .map(|(k, v)| format!("{}={v}", k.trim_start_matches("__Host-")))
        .collect::<Vec<_>>()
        .join("; ");
    let res = b.http.get(format!("{}/account", b.base)).header(header::COOKIE, plain).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "signed out: {:?}", res.headers().get(header::LOCATION));
}
