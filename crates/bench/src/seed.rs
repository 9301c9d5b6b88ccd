//! Synthetic catalog: N published public events built from the repository's fixture, varied so that every
//! filter and the free-text search have realistic selectivity, validated like the API validates them and
//! inserted through the events service's own store.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use jiff::{tz::TimeZone, Timestamp};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use tg_events::{
    analytics::Delta,
    document::{EventDocument, Localization, TicketType},
    store::Store,
};

/// Word that occurs in about 1% of events (descriptions).
pub const WORD_COMMON: &str = "saxophone";
/// Word that occurs in about 0.01% of events (every 10,000th event, so at least one at any size ≥ 8).
pub const WORD_RARE: &str = "zanzibar";
/// Khmer word ("boat racing") in the `km` localization of about 1% of events.
pub const WORD_KHMER: &str = "អុំទូក";
/// An ordinary vocabulary word, used with filters in the combined query.
pub const WORD_PLAIN: &str = "festival";
/// Ids of the events that carry [`WORD_RARE`].
const RARE_EVERY: usize = 10_000;
const RARE_AT: usize = 7;

pub const CATEGORIES: [(&str, &str, &str); 12] = [
    ("cat-tech", "Technology", "បច្ចេកវិទ្យា"),
    ("cat-music", "Music", "តន្ត្រី"),
    ("cat-arts", "Arts", "សិល្បៈ"),
    ("cat-sports", "Sports", "កីឡា"),
    ("cat-food", "Food & Drink", "ម្ហូបអាហារ"),
    ("cat-business", "Business", "ពាណិជ្ជកម្ម"),
    ("cat-education", "Education", "ការអប់រំ"),
    ("cat-health", "Health", "សុខភាព"),
    ("cat-film", "Film", "ភាពយន្ត"),
    ("cat-community", "Community", "សហគមន៍"),
    ("cat-travel", "Travel", "ទេសចរណ៍"),
    ("cat-charity", "Charity", "សប្បុរសធម៌"),
];

/// (city, latitude, longitude)
pub const CITIES: [(&str, f64, f64); 30] = [
    ("Phnom Penh", 11.5564, 104.9282),
    ("Siem Reap", 13.3633, 103.8564),
    ("Battambang", 13.0957, 103.2022),
    ("Sihanoukville", 10.6253, 103.5234),
    ("Kampot", 10.6104, 104.1815),
    ("Kep", 10.4829, 104.3167),
    ("Kampong Cham", 11.9934, 105.4635),
    ("Takeo", 10.9908, 104.7850),
    ("Kratie", 12.4881, 106.0188),
    ("Pursat", 12.5388, 103.9192),
    ("Bangkok", 13.7563, 100.5018),
    ("Chiang Mai", 18.7883, 98.9853),
    ("Hanoi", 21.0278, 105.8342),
    ("Ho Chi Minh City", 10.8231, 106.6297),
    ("Da Nang", 16.0544, 108.2022),
    ("Vientiane", 17.9757, 102.6331),
    ("Luang Prabang", 19.8856, 102.1347),
    ("Yangon", 16.8409, 96.1735),
    ("Kuala Lumpur", 3.1390, 101.6869),
    ("Penang", 5.4164, 100.3327),
    ("Singapore", 1.3521, 103.8198),
    ("Jakarta", -6.2088, 106.8456),
    ("Denpasar", -8.6705, 115.2126),
    ("Manila", 14.5995, 120.9842),
    ("Cebu", 10.3157, 123.8854),
    ("Tokyo", 35.6762, 139.6503),
    ("Seoul", 37.5665, 126.9780),
    ("Taipei", 25.0330, 121.5654),
    ("Hong Kong", 22.3193, 114.1694),
    ("Sydney", -33.8688, 151.2093),
];

/// English vocabulary of titles, summaries and descriptions. None of them contains [`WORD_COMMON`] or
/// [`WORD_RARE`]; [`WORD_PLAIN`] is one of them.
const WORDS: &str = "
annual summit conference workshop meetup festival concert exhibition fair market night day weekend morning
evening session series tour class course bootcamp hackathon forum symposium expo gala party showcase launch
retreat camp clinic seminar webinar panel talk lecture screening premiere recital jam open mic comedy theatre
opera ballet dance salsa tango yoga pilates running marathon cycling swimming football basketball volleyball
tennis badminton boxing chess poker trivia quiz karaoke cooking baking coffee tea wine craft beer street food
vegan organic farmers night lantern river mountain island beach temple garden park rooftop riverside downtown
village city national regional international global local community youth family kids students women founders
developers designers artists makers writers photographers musicians chefs investors leaders volunteers startup
startups innovation technology digital data cloud security blockchain robotics science space climate energy
solar green sustainable ocean wildlife nature health wellness mindfulness fitness nutrition medicine finance
banking marketing sales leadership career networking mentoring education language english khmer culture
heritage history tradition modern classic vintage contemporary art painting sculpture photography film cinema
documentary animation music jazz blues rock pop folk electronic acoustic orchestra choir band live stage show
stories poetry books reading library charity fundraiser auction benefit awareness walk run ride race challenge
cup league championship tournament finals opening closing grand special exclusive free premium limited first
second third new year spring summer autumn winter harvest moon water light sound color colour spirit friends
together join us for an unforgettable experience with speakers exhibitors guests hands-on sessions discover
learn meet celebrate explore enjoy share build create connect inspire grow play taste listen watch local and
the of in at all ages welcome tickets limited seats early bird vip lounge drinks snacks prizes certificates
partners sponsors program agenda keynote demo pitch awards ceremony
";

/// Khmer vocabulary of the `km` localizations (without [`WORD_KHMER`]).
const KHMER_WORDS: &str = "
ព្រឹត្តិការណ៍ សន្និសីទ ពិព័រណ៍ ការប្រគុំតន្ត្រី វគ្គបណ្តុះបណ្តាល ថ្ងៃ រាត្រី ប្រចាំឆ្នាំ អន្តរជាតិ យុវជន
គ្រួសារ សិស្ស ឥតគិតថ្លៃ ពិធីបុណ្យ ការប្រកួត ការរត់ សិក្ខាសាលា វប្បធម៌ ប្រពៃណី ទំនើប ច្នៃប្រឌិត អ្នកនិយាយ
ការជួបជុំ ទីផ្សារ សៀវភៅ របាំ ចម្រៀង រូបថត បរិស្ថាន សុខុមាលភាព កាហ្វេ ក្មេង ស្ត្រី ឌីជីថល ហិរញ្ញវត្ថុ សូមចូលរួម
ជាមួយ និង សម្រាប់ ទាំងអស់គ្នា
";

/// How many distinct tags there are (`tag-000` … `tag-199` plus a few real words).
pub const TAGS: usize = 200;

pub fn tag_name(i: usize) -> String {
    const NAMED: [&str; 10] = [
        "tech",
        "conference",
        "innovation",
        "startups",
        "music",
        "outdoor",
        "family",
        "free-entry",
        "networking",
        "art",
    ];
    NAMED.get(i).map(|s| (*s).to_owned()).unwrap_or_else(|| format!("tag-{i:03}"))
}

/// Everything needed to build event `i`.
pub struct Generator {
    base: EventDocument,
    words: Vec<&'static str>,
    khmer: Vec<&'static str>,
    now_ms: i64,
    tz: TimeZone,
    seed: u64,
}

fn vocabulary(words: &'static str) -> Vec<&'static str> {
    words.split_whitespace().collect()
}

fn pick(rng: &mut StdRng, vocabulary: &[&'static str], n: usize) -> Vec<&'static str> {
    (0..n).map(|_| *vocabulary.choose(rng).expect("vocabulary")).collect()
}

fn sentence(rng: &mut StdRng, vocabulary: &[&'static str], n: usize) -> String {
    let mut s = pick(rng, vocabulary, n).join(" ");
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s.push('.');
    s
}

fn title_case(ws: &[&str]) -> String {
    ws.iter()
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Generator {
    pub fn new(now_ms: i64, seed: u64) -> anyhow::Result<Self> {
        let (words, khmer) = (vocabulary(WORDS), vocabulary(KHMER_WORDS));
        for w in words.iter().chain(&khmer) {
            anyhow::ensure!(
                ![WORD_COMMON, WORD_RARE, WORD_KHMER].iter().any(|m| w.contains(m)),
                "vocabulary word {w:?} hides a marker"
            );
        }
        let base: EventDocument =
            serde_json::from_value(ticketgw::demo::fixture_shifted(1)).context("the fixture is an event document")?;
        let tz = TimeZone::get(&base.datetime.timezone).context("fixture time zone")?;
        Ok(Generator { base, words, khmer, now_ms, tz, seed })
    }

    fn instant(&self, ms: i64) -> String {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_zoned(self.tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
            .unwrap_or_default()
    }

    /// Event `i`: same output for the same seed and index.
    pub fn event(&self, i: usize) -> EventDocument {
        let mut rng = StdRng::seed_from_u64(self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut d = self.base.clone();
        d.id = format!("evt-bench-{i:07}");
        d.priority = rng.gen_range(0..10);
        d.status = "published".into();
        d.visibility = "public".into();

        let (cat_id, cat_name, cat_km) = CATEGORIES[rng.gen_range(0..CATEGORIES.len())];
        d.category.id = cat_id.into();
        d.category.name = cat_name.into();

        let n_title = rng.gen_range(2..=5);
        let mut title_words = pick(&mut rng, &self.words, n_title);
        title_words.push(cat_name.split(' ').next().unwrap_or(cat_name));
        d.title = title_case(&title_words);
        d.slug = format!(
            "{}-{i}",
            title_words.iter().map(|w| w.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "")).fold(
                String::new(),
                |mut acc, w| {
                    if !w.is_empty() {
                        if !acc.is_empty() {
                            acc.push('-');
                        }
                        acc.push_str(&w);
                    }
                    acc
                }
            )
        );
        let n_summary = rng.gen_range(8..=20);
        d.summary = sentence(&mut rng, &self.words, n_summary);
        if i % RARE_EVERY == RARE_AT {
            d.summary = format!("{} Straight from {WORD_RARE}.", d.summary);
        }
        let sentences = rng.gen_range(4..=12);
        let mut description: Vec<String> = (0..sentences)
            .map(|_| {
                let n = rng.gen_range(6..=14);
                sentence(&mut rng, &self.words, n)
            })
            .collect();
        if rng.gen_bool(0.01) {
            description.push(format!("Featuring a live {WORD_COMMON} quartet."));
        }
        d.description = description.join(" ");

        d.localizations = BTreeMap::new();
        if rng.gen_bool(0.6) {
            let n_title = rng.gen_range(2..=4);
            let n_summary = rng.gen_range(5..=12);
            let n_desc = rng.gen_range(15..=40);
            d.localizations.insert(
                "km".into(),
                Localization {
                    title: Some(format!("{cat_km} {}", pick(&mut rng, &self.khmer, n_title).join(" "))),
                    summary: Some(pick(&mut rng, &self.khmer, n_summary).join(" ")),
                    // 1/60 of the 60% localized: about 1% of all events.
                    description: Some(if rng.gen_bool(1.0 / 60.0) {
                        format!("{} {WORD_KHMER}", pick(&mut rng, &self.khmer, n_desc).join(" "))
                    } else {
                        pick(&mut rng, &self.khmer, n_desc).join(" ")
                    }),
                },
            );
        }

        let n_tags = rng.gen_range(2..=6);
        let mut tags: Vec<String> = Vec::with_capacity(n_tags);
        while tags.len() < n_tags {
            let t = tag_name(rng.gen_range(0..TAGS));
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        d.tags = tags;

        let (city, lat, lon) = CITIES[rng.gen_range(0..CITIES.len())];
        let kind = match rng.gen_range(0..100) {
            0..10 => "online",
            10..15 => "hybrid",
            _ => "physical",
        };
        d.venue.kind = kind.into();
        let physical = kind != "online";
        d.venue.name = physical.then(|| format!("{} Hall", title_case(&pick(&mut rng, &self.words, 2))));
        d.venue.address =
            physical.then(|| format!("{} Street {}, {city}", rng.gen_range(1..400), rng.gen_range(1..99)));
        d.venue.city = physical.then(|| city.to_owned());
        d.venue.latitude = physical.then_some(lat);
        d.venue.longitude = physical.then_some(lon);
        d.venue.online_url = (kind != "physical").then(|| format!("https://stream.example.org/{}", d.id));

        // Start within the next two years, on the hour; one hour to three days long.
        const HOUR: i64 = 3_600_000;
        let start = (self.now_ms / HOUR + rng.gen_range(2..=2 * 365 * 24)) * HOUR;
        let hours = *[1i64, 2, 3, 4, 8, 24, 48, 72].choose(&mut rng).expect("durations");
        let end = start + hours * HOUR;
        let t = &mut d.datetime;
        t.start = self.instant(start);
        t.end = self.instant(end);
        t.duration_minutes = hours * 60;
        t.booking_start = self.instant(self.now_ms - 30 * 24 * HOUR);
        t.booking_end = self.instant(start - HOUR);

        // Prices 0–200: about 10% free events; up to three ticket types.
        let base_price = if rng.gen_bool(0.1) { 0.0 } else { f64::from(rng.gen_range(2..=400u32)) / 2.0 };
        let n_types = rng.gen_range(1..=3);
        let names = ["Standard", "Premium", "VIP"];
        d.ticketing.types = (0..n_types)
            .map(|k| TicketType {
                id: names[k].to_lowercase(),
                name: names[k].into(),
                price: (base_price * (1.0 + k as f64)).min(200.0),
                currency: "USD".into(),
                quantity: rng.gen_range(20..=500),
                benefits: vec!["Access to all sessions".into()],
                refundable: rng.gen_bool(0.5),
                available_from: None,
                available_until: None,
            })
            .collect();
        d.ticketing.total_capacity = d.ticketing.types.iter().map(|t| t.quantity).sum();
        d.ticketing.tickets_sold = 0;

        d.media.banner = Some(format!("https://cdn.example.org/events/{}/banner.jpg", d.id));
        d.media.gallery = vec![];
        d.organizer.id = "org-bench".into();
        d.organizer.name = "Bench Organizer".into();
        d
    }

    /// Views and clicks of event `i`: a quarter of the events have been seen, heavy-tailed, so that
    /// `sort=popularity` has a real order; the rest have none (and cost no update while seeding).
    pub fn analytics(&self, i: usize) -> Delta {
        let mut rng = StdRng::seed_from_u64(!self.seed ^ i as u64);
        if !rng.gen_bool(0.25) {
            return Delta::default();
        }
        let views = (rng.gen::<f64>() * 9.0).exp() as i64;
        Delta { views, clicks: views / rng.gen_range(5..50), ..Delta::default() }
    }
}

/// Insert events `0..n` with `parallel` concurrent inserts; returns the time it took.
///
/// While it runs, the tables are analyzed each time their size has doubled (from 256 events on), as
/// autovacuum would: otherwise the connections keep the plans they made for an empty table (sequential scans
/// for the insert's id/slug check) and seeding turns quadratic where autovacuum is off.
pub async fn seed(
    store: Store,
    db_url: &str,
    gen: Arc<Generator>,
    n: usize,
    parallel: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let analyzer = tokio::spawn(analyze_while_seeding(next.clone(), n, db_url.to_owned()));
    for _ in 0..parallel.max(1) {
        let (store, gen, next) = (store.clone(), gen.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let doc = gen.event(i);
                let derived = doc.validate().map_err(|e| anyhow::anyhow!("generated event {i} is invalid: {e:?}"))?;
                store
                    .insert(&doc, &derived, "bench", None)
                    .await
                    .map_err(|e| anyhow::anyhow!("inserting event {i}: {e:?}"))?;
                let delta = gen.analytics(i);
                if delta != Delta::default() {
                    store.add_analytics(&doc.id, &delta).await.with_context(|| format!("analytics of event {i}"))?;
                }
                if (i + 1) % 20_000 == 0 {
                    eprintln!("  … {} events", i + 1);
                }
            }
        });
    }
    let mut outcome = Ok(());
    while let Some(res) = tasks.join_next().await {
        if let Err(e) = res.context("seeding task panicked").and_then(|r| r) {
            outcome = Err(e);
            tasks.abort_all();
        }
    }
    analyzer.abort();
    if let Ok(res) = analyzer.await {
        res.context("analyzing while seeding")?;
    }
    outcome.map(|()| started.elapsed())
}

/// `ANALYZE` the catalog tables each time the number of events claimed by the seeders has doubled.
async fn analyze_while_seeding(next: Arc<AtomicUsize>, n: usize, db_url: String) -> anyhow::Result<()> {
    // A pool of one rather than a connection: a `&mut PgConnection` executor does not make a `Send` future here.
    let db = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&db_url).await?;
    let mut at = 256;
    while at < n {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if next.load(Ordering::Relaxed) >= at {
            sqlx::raw_sql("ANALYZE events_events").execute(&db).await?;
            sqlx::raw_sql("ANALYZE events_tags").execute(&db).await?;
            at *= 2;
        }
    }
    db.close().await;
    Ok(())
}
