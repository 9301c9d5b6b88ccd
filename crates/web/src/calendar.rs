//! "Add to calendar": one event as an iCalendar file (RFC 5545), which phone and desktop calendars
//! import. Times are written in UTC, so no time-zone definitions are needed.

use tg_events::document::EventDocument;

/// A TEXT value with `\`, `;`, `,` and line breaks escaped (RFC 5545 §3.3.11); other control
/// characters are dropped, so no value can start a property of its own.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A content line ended by CRLF, folded so that no line is longer than 75 octets (§3.1); folds
/// never split a UTF-8 character (Khmer takes three octets a character).
fn fold(line: &str, out: &mut String) {
    let mut octets = 0;
    for c in line.chars() {
        if octets + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            octets = 1;
        }
        out.push(c);
        octets += c.len_utf8();
    }
    out.push_str("\r\n");
}

fn utc(instant: &str) -> Option<String> {
    let t: jiff::Timestamp = instant.parse().ok()?;
    Some(t.strftime("%Y%m%dT%H%M%SZ").to_string())
}

/// The event as a calendar with one VEVENT linking to `page`; `now` stamps it. An online event's
/// location is `online` (a label): its link is for ticket holders, not for whoever downloads the file.
pub fn ics(e: &EventDocument, page: &str, online: &str, now: jiff::Timestamp) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Ticket Gateway//Events//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@ticket-gateway", text(&e.id)),
        format!("DTSTAMP:{}", now.strftime("%Y%m%dT%H%M%SZ")),
    ];
    if let Some(start) = utc(&e.datetime.start) {
        lines.push(format!("DTSTART:{start}"));
    }
    if let Some(end) = utc(&e.datetime.end) {
        lines.push(format!("DTEND:{end}"));
    }
    lines.push(format!("SUMMARY:{}", text(&e.title)));
    if !e.summary.is_empty() {
        lines.push(format!("DESCRIPTION:{}", text(&e.summary)));
    }
    let v = &e.venue;
    let place: Vec<&str> = [&v.name, &v.address, &v.city].into_iter().flatten().map(String::as_str).collect();
    let location = if place.is_empty() && v.kind != "physical" { online.to_owned() } else { place.join(", ") };
    if !location.is_empty() {
        lines.push(format!("LOCATION:{}", text(&location)));
    }
    if let (Some(lat), Some(lon)) = (v.latitude, v.longitude) {
        lines.push(format!("GEO:{lat};{lon}"));
    }
    let status = match e.status.as_str() {
        "cancelled" => "CANCELLED",
        "draft" => "TENTATIVE",
        _ => "CONFIRMED",
    };
    lines.push(format!("STATUS:{status}"));
    // A URI value, not TEXT: nothing to escape, but no control character may end the line early.
    lines.push(format!("URL:{}", page.replace(|c: char| c.is_control(), "")));
    lines.extend(["END:VEVENT".to_owned(), "END:VCALENDAR".to_owned()]);
    let mut out = String::new();
    for line in &lines {
        fold(line, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> EventDocument {
        serde_json::from_str(include_str!("../../../fixtures/event-tech-conference-2025.json")).unwrap()
    }

    /// Undo folding: a CRLF followed by one space joins the lines.
    fn unfold(ics: &str) -> Vec<String> {
        ics.replace("\r\n ", "").split("\r\n").filter(|l| !l.is_empty()).map(str::to_owned).collect()
    }

    #[test]
    fn values_cannot_break_out_of_their_property() {
        assert_eq!(text("a,b;c\\d\nEND:VEVENT\r"), "a\\,b\\;c\\\\d\\nEND:VEVENT");
    }

    #[test]
    fn the_event_in_utc_with_long_khmer_lines_folded_on_character_boundaries() {
        let mut e = fixture();
        e.datetime.start = "2027-05-01T09:00:00+07:00".into();
        e.datetime.end = "2027-05-01T17:30:00+07:00".into();
        e.title = "សន្និសីទបច្ចេកវិទ្យា ".repeat(6);
        let now: jiff::Timestamp = "2027-01-02T03:04:05Z".parse().unwrap();
        let ics = ics(&e, "https://tickets.example.com/events/x", "Online", now);
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n") && ics.ends_with("END:VCALENDAR\r\n"));
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line}", line.len());
        }
        let lines = unfold(&ics);
        for expected in
            ["DTSTART:20270501T020000Z", "DTEND:20270501T103000Z", "DTSTAMP:20270102T030405Z", "STATUS:CONFIRMED"]
        {
            assert!(lines.iter().any(|l| l == expected), "{expected} in {lines:?}");
        }
        assert!(lines.contains(&format!("SUMMARY:{}", e.title)), "the title survives folding whole");
        assert!(lines.contains(&format!("UID:{}@ticket-gateway", e.id)));
        e.status = "cancelled".into();
        assert!(unfold(&super::ics(&e, "", "Online", now)).contains(&"STATUS:CANCELLED".to_owned()));
    }

    #[test]
    fn an_online_event_gives_no_link_away() {
        let mut e = fixture();
        e.venue.kind = "online".into();
        (e.venue.name, e.venue.address, e.venue.city) = (None, None, None);
        e.venue.online_url = Some("https://meet.example.com/secret-room".into());
        let ics = ics(&e, "", "Online", jiff::Timestamp::UNIX_EPOCH);
        assert!(ics.contains("\r\nLOCATION:Online\r\n") && !ics.contains("secret-room"), "{ics}");
    }
}
