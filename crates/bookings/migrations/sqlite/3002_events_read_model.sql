-- Bookings' own copy of the event documents it sells, when the events service runs in another process:
-- filled on first use and kept current by event.published / event.updated / event.cancelled, so the
-- hold path never calls the events service.
CREATE TABLE bookings_events (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL,
    document   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX bookings_events_slug ON bookings_events (slug);
