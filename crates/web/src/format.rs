//! Money and dates as people read them.

use jiff::{tz::TimeZone, Timestamp};

use crate::i18n::Lang;

/// Riel per US dollar for the indicative KHR price next to USD prices (the National Bank's rate
/// has stayed close to this for years; payments always use the ticket's own currency).
pub const KHR_PER_USD: f64 = 4_100.0;

fn group_thousands(whole: u64) -> String {
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `$25.00`, `100,000 ៛`, `12.50 EUR`.
pub fn money(amount: f64, currency: &str) -> String {
    let negative = amount < 0.0;
    let sign = if negative { "-" } else { "" };
    let amount = amount.abs();
    match currency {
        "KHR" => format!("{sign}{} ៛", group_thousands(amount.round() as u64)),
        _ => {
            let cents = (amount * 100.0).round() as u64;
            let text = format!("{}.{:02}", group_thousands(cents / 100), cents % 100);
            if currency == "USD" {
                format!("{sign}${text}")
            } else {
                format!("{sign}{text} {currency}")
            }
        }
    }
}

/// A price, with its indicative riel amount for USD: `$25.00 (≈ 102,500 ៛)`.
pub fn price(amount: f64, currency: &str) -> String {
    if currency == "USD" && amount > 0.0 {
        format!("{} (≈ {})", money(amount, currency), money((amount * KHR_PER_USD / 100.0).round() * 100.0, "KHR"))
    } else {
        money(amount, currency)
    }
}

const MONTHS_KM: [&str; 12] = ["មករា", "កុម្ភៈ", "មីនា", "មេសា", "ឧសភា", "មិថុនា", "កក្កដា", "សីហា", "កញ្ញា", "តុលា", "វិច្ឆិកា", "ធ្នូ"];

/// An RFC 3339 instant shown in `tz` (the event's zone), with the zone's abbreviation:
/// `Sat 1 Nov 2025, 09:00 (+07)`. Falls back to the input when it does not parse.
pub fn datetime(rfc3339: &str, tz: &str, lang: Lang) -> String {
    let Ok(ts) = rfc3339.parse::<Timestamp>() else { return rfc3339.to_owned() };
    let zone = TimeZone::get(tz).unwrap_or(TimeZone::UTC);
    let z = ts.to_zoned(zone);
    match lang {
        Lang::En => z.strftime("%a %-d %b %Y, %H:%M (%Z)").to_string(),
        Lang::Km => format!(
            "{} {} {}, {} ({})",
            z.day(),
            MONTHS_KM[(z.month() - 1) as usize],
            z.year(),
            z.strftime("%H:%M"),
            z.strftime("%Z")
        ),
    }
}

/// The date part only, in `tz`.
pub fn date(rfc3339: &str, tz: &str, lang: Lang) -> String {
    let Ok(ts) = rfc3339.parse::<Timestamp>() else { return rfc3339.to_owned() };
    let z = ts.to_zoned(TimeZone::get(tz).unwrap_or(TimeZone::UTC));
    match lang {
        Lang::En => z.strftime("%a %-d %b %Y").to_string(),
        Lang::Km => format!("{} {} {}", z.day(), MONTHS_KM[(z.month() - 1) as usize], z.year()),
    }
}

/// `YYYY-MM-DDTHH:MM` in `tz` (with `:SS` when not zero, so saving the form moves nothing), for
/// `<input type="datetime-local">`.
pub fn local_input(rfc3339: &str, tz: &str) -> String {
    let Ok(ts) = rfc3339.parse::<Timestamp>() else { return String::new() };
    let z = ts.to_zoned(TimeZone::get(tz).unwrap_or(TimeZone::UTC));
    let format = if z.second() == 0 { "%Y-%m-%dT%H:%M" } else { "%Y-%m-%dT%H:%M:%S" };
    z.strftime(format).to_string()
}

/// A `datetime-local` value read in `tz` → RFC 3339 with the zone's offset; `None` when malformed.
pub fn from_local_input(value: &str, tz: &str) -> Option<String> {
    let value = value.trim();
    let civil: jiff::civil::DateTime = value.parse().ok()?;
    let zoned = civil.to_zoned(TimeZone::get(tz).ok()?).ok()?;
    Some(zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
}

/// Unix milliseconds → `YYYY-MM-DD HH:MM` UTC.
pub fn millis(ms: i64) -> String {
    Timestamp::from_millisecond(ms).map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_in_usd_and_riel() {
        assert_eq!(money(25.0, "USD"), "$25.00");
        assert_eq!(money(1234.5, "USD"), "$1,234.50");
        assert_eq!(money(100_000.0, "KHR"), "100,000 ៛");
        assert_eq!(money(12.5, "EUR"), "12.50 EUR");
        assert_eq!(price(25.0, "USD"), "$25.00 (≈ 102,500 ៛)");
        assert_eq!(price(0.0, "USD"), "$0.00");
    }

    #[test]
    fn dates_in_the_event_zone() {
        let at = "2025-11-01T02:00:00Z";
        assert_eq!(datetime(at, "Asia/Phnom_Penh", Lang::En), "Sat 1 Nov 2025, 09:00 (+07)");
        assert_eq!(datetime(at, "Asia/Phnom_Penh", Lang::Km), "1 វិច្ឆិកា 2025, 09:00 (+07)");
        assert_eq!(local_input(at, "Asia/Phnom_Penh"), "2025-11-01T09:00");
        assert_eq!(local_input("2025-10-30T16:59:59Z", "Asia/Phnom_Penh"), "2025-10-30T23:59:59");
        let with_seconds = from_local_input("2025-10-30T23:59:59", "Asia/Phnom_Penh");
        assert_eq!(with_seconds.as_deref(), Some("2025-10-30T23:59:59+07:00"));
        assert_eq!(
            from_local_input("2025-11-01T09:00", "Asia/Phnom_Penh").as_deref(),
            Some("2025-11-01T09:00:00+07:00")
        );
        assert_eq!(from_local_input("yesterday", "Asia/Phnom_Penh"), None);
        assert_eq!(datetime("garbage", "Asia/Phnom_Penh", Lang::En), "garbage");
    }
}
