//! Discovery: filters, free text in every language, sorting and cursor pagination without gaps or duplicates.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    events::{demo_organizer, event_doc},
    helpers::{assert_problem, spawn_app, TestApp},
};

const CITIES: [&str; 3] = ["Phnom Penh", "Siem Reap", "Battambang"];

/// 24 published public events with varied attributes, plus a draft, a private and a past-ending one
/// that must never be listed. Returns the ids of the listable ones.
async fn seed(app: &TestApp, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..24 {
        let mut d = event_doc(n);
        d["title"] = json!(format!("Event number {n}"));
        d["category"] = json!({"id": if n % 2 == 0 { "cat-tech" } else { "cat-music" }, "name": if n % 2 == 0 { "Technology" } else { "Music" }});
        d["tags"] = json!(if n % 3 == 0 { vec!["jazz", "live"] } else { vec!["startups"] });
        d["venue"]["city"] = json!(CITIES[n % 3]);
        if n % 4 == 0 {
            d["venue"]["type"] = json!("hybrid");
            d["venue"]["online_url"] = json!("https://stream.example.com/x");
        }
        d["priority"] = json!(n % 5);
        // Some events share a start time, so ordering must fall back to the id.
        let day = 1 + (n / 2) % 28;
        d["datetime"]["start"] = json!(format!("2027-11-{day:02}T09:00:00+07:00"));
        d["datetime"]["end"] = json!(format!("2027-11-{day:02}T17:00:00+07:00"));
        d["datetime"]["booking_end"] = json!("2027-10-30T23:59:59+07:00");
        d["ticketing"]["types"][0]["price"] = json!(n as f64);
        if n == 7 {
            d["localizations"]["km"]["summary"] = json!("តន្ត្រីជប៉ុន");
        }
        if n == 11 {
            d["description"] = json!("A 100% real_event with odd characters");
        }
        let res = app.post("/api/v1/events", Some(token), &d).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
        ids.push(format!("evt-t{n}"));
    }
    let mut draft = event_doc(100);
    draft["status"] = json!("draft");
    let mut private = event_doc(101);
    private["visibility"] = json!("private");
    let mut past = event_doc(102);
    past = serde_json::from_str(&past.to_string().replace("\"2027-", "\"2024-")).unwrap();
    for d in [draft, private, past] {
        assert_eq!(app.post("/api/v1/events", Some(token), &d).await.status(), StatusCode::CREATED);
    }
    ids
}

async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let res = app.get(&format!("/api/v1/events?limit=100&{query}"), None).await;
    assert_eq!(res.status(), StatusCode::OK, "{query}");
    let page: Value = res.json().await.unwrap();
    page["items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn expect(filter: impl Fn(usize) -> bool) -> Vec<String> {
    sorted((0..24).filter(|n| filter(*n)).map(|n| format!("evt-t{n}")).collect())
}

#[tokio::test]
async fn filters_and_search() {
    let app = spawn_app().await;
    let (_, token) = demo_organizer(&app).await;
    let all = seed(&app, &token).await;
    assert_eq!(sorted(ids(&app, "").await), sorted(all));
    assert_eq!(sorted(ids(&app, "category=cat-music").await), expect(|n| n % 2 == 1));
    assert_eq!(sorted(ids(&app, "tag=jazz").await), expect(|n| n % 3 == 0));
    assert_eq!(sorted(ids(&app, "tag=JAZZ").await), expect(|n| n % 3 == 0));
    assert_eq!(sorted(ids(&app, "city=siem%20reap").await), expect(|n| n % 3 == 1));
    assert_eq!(sorted(ids(&app, "venue_type=hybrid").await), expect(|n| n % 4 == 0));
    assert_eq!(sorted(ids(&app, "price_min=5&price_max=9.5").await), expect(|n| (5..=9).contains(&n)));
    // Events overlapping 5–6 November: start days 5 and 6 are n = 8..=11.
    let range = "from=2027-11-05T00:00:00%2B07:00&to=2027-11-06T23:59:59%2B07:00";
    assert_eq!(sorted(ids(&app, range).await), expect(|n| (8..=11).contains(&n)));
    assert_eq!(sorted(ids(&app, "category=cat-tech&tag=jazz&city=phnom%20penh").await), expect(|n| n % 6 == 0));
    // Free text: any language, case-insensitive, LIKE wildcards taken literally.
    assert_eq!(ids(&app, "q=NUMBER%2013").await, ["evt-t13"]);
    assert_eq!(ids(&app, "q=%E1%9E%87%E1%9E%94%E1%9F%89%E1%9E%BB%E1%9E%93").await, ["evt-t7"], "Khmer text");
    assert_eq!(ids(&app, "q=100%25%20real_").await, ["evt-t11"]);
    assert_eq!(ids(&app, "q=%25").await, ["evt-t11"], "% is not a wildcard");
    assert_eq!(ids(&app, "q=_").await, ["evt-t11"], "_ is not a wildcard");
    assert!(ids(&app, "q=nothing%20like%20this").await.is_empty());

    for bad in
        ["sort=random", "limit=0", "limit=101", "venue_type=boat", "from=yesterday", "price_min=-1", "cursor=garbage"]
    {
        let res = app.get(&format!("/api/v1/events?{bad}"), None).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    let cats: Value = app.get("/api/v1/categories", None).await.json().await.unwrap();
    assert_eq!(
        cats,
        json!([{"id": "cat-music", "name": "Music", "events": 12}, {"id": "cat-tech", "name": "Technology", "events": 12}])
    );
    let tags: Value = app.get("/api/v1/tags", None).await.json().await.unwrap();
    assert_eq!(tags[0], json!({"tag": "startups", "events": 16}));
}

#[tokio::test]
async fn paging_has_no_gaps_or_duplicates_in_any_order() {
    let app = spawn_app().await;
    let (_, token) = demo_organizer(&app).await;
    let all = seed(&app, &token).await;
    // Give some events popularity, with ties.
    for (n, views) in [(3, 5), (4, 5), (9, 2), (20, 7)] {
        for _ in 0..views {
            app.get(&format!("/api/v1/events/evt-t{n}"), None).await;
        }
    }
    app.app.events.flush_analytics().await;

    for sort in ["start", "priority", "popularity"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("/api/v1/events?limit=5&sort={sort}");
            if let Some(c) = &cursor {
                path += &format!("&cursor={c}");
            }
            let page: Value = app.get(&path, None).await.json().await.unwrap();
            pages += 1;
            let items = page["items"].as_array().unwrap();
            seen.extend(items.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, 5, "{sort}: 24 events in pages of 5");
        let got: Vec<String> = seen.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len(), "{sort}: duplicates in {got:?}");
        assert_eq!(sorted(got.clone()), sorted(all.clone()), "{sort}: gaps");
        // The order is the one asked for.
        let key = |e: &Value| match sort {
            "start" => (0, e["datetime"]["start"].as_str().unwrap().to_owned()),
            "priority" => (e["priority"].as_i64().unwrap(), e["datetime"]["start"].as_str().unwrap().to_owned()),
            _ => (-e["analytics"]["views"].as_i64().unwrap(), String::new()),
        };
        assert!(seen.windows(2).all(|w| key(&w[0]) <= key(&w[1])), "{sort}: out of order");
    }
    let first: Value = app.get("/api/v1/events?limit=1&sort=popularity", None).await.json().await.unwrap();
    assert_eq!(first["items"][0]["id"], "evt-t20");
}
