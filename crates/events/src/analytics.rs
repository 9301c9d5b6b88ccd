//! Views, clicks and shares are counted in memory and written in batches, so counting never adds a
//! database write to a read. A crash loses at most one flush interval of counts.

use std::{collections::HashMap, sync::Mutex};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub views: i64,
    pub clicks: i64,
    pub facebook: i64,
    pub telegram: i64,
    pub twitter: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

#[derive(Default)]
pub struct Counter {
    pending: Mutex<HashMap<String, Delta>>,
}

impl Counter {
    fn bump(&self, event_id: &str, f: impl FnOnce(&mut Delta)) {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(event_id.to_owned()).or_default());
    }
    pub fn view(&self, event_id: &str) {
        self.bump(event_id, |d| d.views += 1);
    }
    pub fn click(&self, event_id: &str) {
        self.bump(event_id, |d| d.clicks += 1);
    }
    pub fn share(&self, event_id: &str, channel: Channel) {
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
