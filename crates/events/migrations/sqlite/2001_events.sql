-- Events service tables. The event document is stored whole (JSON text); the columns beside it are
-- derived from it for filtering, sorting and access checks, plus the server-owned counters.
CREATE TABLE events_events (
    id               TEXT PRIMARY KEY,
    slug             TEXT NOT NULL UNIQUE,
    organizer_id     TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('draft', 'published', 'cancelled', 'completed')),
    visibility       TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
    priority         BIGINT NOT NULL,
    category_id      TEXT NOT NULL,
    category_name    TEXT NOT NULL,
    city             TEXT,
    venue_type       TEXT NOT NULL,
    start_at         BIGINT NOT NULL,
    end_at           BIGINT NOT NULL,
    min_price        DOUBLE PRECISION NOT NULL,
    max_price        DOUBLE PRECISION NOT NULL,
    search_text      TEXT NOT NULL,            -- lower-case title/summary/description in every language
    document         TEXT NOT NULL,
    views            BIGINT NOT NULL DEFAULT 0,
    clicks           BIGINT NOT NULL DEFAULT 0,
    share_facebook   BIGINT NOT NULL DEFAULT 0,
    share_telegram   BIGINT NOT NULL DEFAULT 0,
    share_twitter    BIGINT NOT NULL DEFAULT 0,
    popularity       BIGINT NOT NULL DEFAULT 0, -- views + 5 * clicks + 10 * shares
    rating_sum       BIGINT NOT NULL DEFAULT 0,
    rating_count     BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_by       TEXT NOT NULL
);
CREATE INDEX events_listing_start ON events_events (start_at, id) WHERE status = 'published' AND visibility = 'public';
CREATE INDEX events_listing_priority ON events_events (priority, start_at, id) WHERE status = 'published' AND visibility = 'public';
CREATE INDEX events_listing_popularity ON events_events (popularity, id) WHERE status = 'published' AND visibility = 'public';
CREATE INDEX events_by_organizer ON events_events (organizer_id, id);
CREATE INDEX events_by_category ON events_events (category_id, start_at);
CREATE INDEX events_by_city ON events_events (city, start_at);

CREATE TABLE events_tags (
    event_id TEXT NOT NULL REFERENCES events_events(id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    PRIMARY KEY (event_id, tag)
);
CREATE INDEX events_tags_by_tag ON events_tags (tag, event_id);

CREATE TABLE events_ratings (
    event_id   TEXT NOT NULL REFERENCES events_events(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    stars      BIGINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
    rated_at   BIGINT NOT NULL,
    PRIMARY KEY (event_id, user_id)
);

-- Who may see a private event, by e-mail.
CREATE TABLE events_invites (
    event_id TEXT NOT NULL REFERENCES events_events(id) ON DELETE CASCADE,
    email    TEXT NOT NULL,
    PRIMARY KEY (event_id, email)
);
