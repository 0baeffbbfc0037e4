//! `date`: the cluster clock rendered in UTC, by `+FORMAT` or busybox's default formats.

use chrono::{DateTime, Datelike, Timelike};

use super::super::interp::{Fds, Interp};

impl Interp<'_> {
    pub(super) fn cmd_date(&mut self, args: &[String], fds: &Fds) -> i32 {
        let mut format = "%a %b %e %H:%M:%S %Z %Y".to_string();
        for a in args {
            if let Some(f) = a.strip_prefix('+') {
                format = f.to_string();
            } else if a == "-u" || a == "--utc" {
            } else if a == "-R" {
                format = "%a, %d %b %Y %H:%M:%S +0000".to_string();
            } else if a == "-I" {
                format = "%Y-%m-%d".to_string();
            } else {
                self.err(fds, &format!("date: invalid date '{a}'\n"));
                return 1;
            }
        }
        let mut line = strftime(&format, self.shell.now_unix());
        line.push('\n');
        self.out(fds, line.as_bytes());
        0
    }
}

/// Seconds in 400 Gregorian years (146,097 days, a whole number of weeks): the calendar,
/// weekdays included, repeats after them.
const CYCLE_SECS: i64 = 146_097 * 86_400;

/// A `date +FORMAT` rendering, in UTC.
pub(super) fn strftime(fmt: &str, ts: i64) -> String {
    // Keep the arithmetic far from overflow: years beyond +-10^11 are not dates anyone prints.
    let ts = ts.clamp(-(1i64 << 52), 1i64 << 52);
    // chrono's calendar spans some 262,000 years each way: it reads the date within the 400-year
    // cycle that starts in 1970, and the whole cycles go back into the year.
    let cycles = ts.div_euclid(CYCLE_SECS);
    let t = DateTime::from_timestamp(ts.rem_euclid(CYCLE_SECS), 0).unwrap_or(DateTime::UNIX_EPOCH);
    let y = i64::from(t.year()) + cycles * 400;
    let (m, d, yday) = (t.month(), t.day(), t.ordinal());
    let (hh, mm, ss) = (t.hour(), t.minute(), t.second());
    let wd = t.weekday().num_days_from_sunday();
    let weekday = t.format("%A").to_string();
    let month = t.format("%B").to_string();
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('I') => out.push_str(&format!("{:02}", if hh % 12 == 0 { 12 } else { hh % 12 })),
            Some('p') => out.push_str(if hh < 12 { "AM" } else { "PM" }),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('s') => out.push_str(&ts.to_string()),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('T') => out.push_str(&format!("{hh:02}:{mm:02}:{ss:02}")),
            Some('R') => out.push_str(&format!("{hh:02}:{mm:02}")),
            Some('F') => out.push_str(&format!("{y}-{m:02}-{d:02}")),
            Some('D') => out.push_str(&format!("{m:02}/{d:02}/{:02}", y.rem_euclid(100))),
            Some('a') => out.push_str(weekday.get(..3).unwrap_or(&weekday)),
            Some('A') => out.push_str(&weekday),
            Some('b' | 'h') => out.push_str(month.get(..3).unwrap_or(&month)),
            Some('B') => out.push_str(&month),
            Some('u') => out.push_str(&(if wd == 0 { 7 } else { wd }).to_string()),
            Some('w') => out.push_str(&wd.to_string()),
            Some('Z') => out.push_str("UTC"),
            Some('z') => out.push_str("+0000"),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::strftime;

    #[test]
    fn strftime_leap_day_and_before_the_epoch() {
        assert_eq!(strftime("%F %a", 951_782_400), "2000-02-29 Tue");
        assert_eq!(strftime("%F %T", -1), "1969-12-31 23:59:59");
    }
}
