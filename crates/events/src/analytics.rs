//! Views, clicks and shares are counted in memory and written in batches, so counting never adds a
//! database write to a read. A crash loses at most one flush interval of counts.
//!
//! A visitor (a signed-in user, else a client address) counts at most once per event, kind and
//! [`WINDOW`], so repeating a call cannot move an event up the popularity order. What is remembered
//! is bounded ([`MAX_REMEMBERED`]); under a flood of new visitors nothing new is counted until the
//! window frees room.

use std::{
    collections::{hash_map::Entry, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long a visitor's view, click or share of an event is remembered.
pub const WINDOW: Duration = Duration::from_secs(30 * 60);
/// Most (event, kind, visitor) triples remembered at once.
pub const MAX_REMEMBERED: usize = 200_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub views: i64,
    pub clicks: i64,
    pub facebook: i64,
    pub telegram: i64,
    pub twitter: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Facebook,
    Telegram,
    Twitter,
}

impl std::str::FromStr for Channel {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "facebook" => Ok(Channel::Facebook),
            "telegram" => Ok(Channel::Telegram),
            "twitter" => Ok(Channel::Twitter),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    View,
    Click,
    Share(Channel),
}

#[derive(Default)]
pub struct Counter {
    pending: Mutex<HashMap<String, Delta>>,
    /// When each (event, kind, visitor) was last counted.
    seen: Mutex<HashMap<(String, Kind, String), Instant>>,
}

impl Counter {
    fn bump(&self, event_id: &str, f: impl FnOnce(&mut Delta)) {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(event_id.to_owned()).or_default());
    }

    /// Whether `visitor` is not yet counted for `event_id` and `kind` within the window (and is now).
    fn first_in_window(&self, event_id: &str, kind: Kind, visitor: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, at| at.elapsed() < WINDOW);
            if seen.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        match seen.entry((event_id.to_owned(), kind, visitor.to_owned())) {
            Entry::Occupied(e) if e.get().elapsed() < WINDOW => false,
            Entry::Occupied(mut e) => {
                e.insert(Instant::now());
                true
            }
            Entry::Vacant(e) => {
                e.insert(Instant::now());
                true
            }
        }
    }

    /// `visitor` names who looks: `user:<id>` or `ip:<address>`.
    pub fn view(&self, event_id: &str, visitor: &str) {
        if self.first_in_window(event_id, Kind::View, visitor) {
            self.bump(event_id, |d| d.views += 1);
        }
    }
    pub fn click(&self, event_id: &str, visitor: &str) {
        if self.first_in_window(event_id, Kind::Click, visitor) {
            self.bump(event_id, |d| d.clicks += 1);
        }
    }
    pub fn share(&self, event_id: &str, channel: Channel, visitor: &str) {
        if !self.first_in_window(event_id, Kind::Share(channel), visitor) {
            return;
        }
        self.bump(event_id, |d| match channel {
            Channel::Facebook => d.facebook += 1,
            Channel::Telegram => d.telegram += 1,
            Channel::Twitter => d.twitter += 1,
        });
    }
    /// Take everything counted so far.
    pub fn drain(&self) -> HashMap<String, Delta> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
    /// Put counts back after a failed write, so they are not lost.
    pub fn restore(&self, event_id: &str, d: Delta) {
        self.bump(event_id, |p| {
            p.views += d.views;
            p.clicks += d.clicks;
            p.facebook += d.facebook;
            p.telegram += d.telegram;
            p.twitter += d.twitter;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visitor_counts_once_per_event_kind_and_window() {
        let c = Counter::default();
        for _ in 0..60 {
            c.view("ev1", "ip:192.0.2.1");
            c.click("ev1", "ip:192.0.2.1");
            c.share("ev1", Channel::Telegram, "ip:192.0.2.1");
        }
        c.view("ev1", "user:u1");
        c.view("ev2", "ip:192.0.2.1");
        c.share("ev1", Channel::Facebook, "ip:192.0.2.1");
        let counted = c.drain();
        assert_eq!(counted["ev1"], Delta { views: 2, clicks: 1, facebook: 1, telegram: 1, twitter: 0 });
        assert_eq!(counted["ev2"].views, 1);
        // Still within the window: nothing more.
        c.view("ev1", "ip:192.0.2.1");
        assert!(c.drain().is_empty());
    }
}
