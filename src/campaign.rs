//! `schedule = "campaign"` throughput targets: a measuring campaign by the
//! BNetzA sampling rules that the report's "Against the contract" section
//! judges ([`crate::report::contract`]): 10 tests on a measuring day, at
//! least 5 minutes apart, at least 3 hours between the 5th and the 6th.
//!
//! A day's plan is a pure function of (date, time zone, seed)
//! ([`day_plan`]): 5 tests in a morning block that starts at a random time
//! between 09:00 and 10:00 local time, 5 in an evening block that starts
//! between 19:00 and 20:00 (inside the FCC peak hours 19-23), each test
//! 8 to 15 minutes after the one before. So the 5th test is at 11:00 at the
//! latest and the 6th at 19:00 at the earliest (≥ 8 h of wall time, ≥ 7 h
//! across a DST change), the last at 21:00 at the latest, and two tests are
//! never closer than 8 min: a test that starts up to 3 min late (waiting for
//! another throughput target's test) still keeps the 5-minute rule.
//!
//! The block starts are local wall-clock times; the steps inside a block are
//! real durations, so the spacing holds on a day whose clocks change.
//!
//! The seed is the same on every start of the daemon on one machine
//! ([`seed`]: the machine id or host name and the target's name), so a
//! restart in the middle of a day keeps the day's plan, and two homes with
//! the same configuration do not test one server at the same minute.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// Tests on one measuring day: BNetzA's 30 tests over 3 days (a campaign
/// collects the BNetzA sample; custom criteria count their own share of it).
pub use crate::config::TESTS_PER_DAY;

/// Tests per block (morning, evening).
const PER_BLOCK: usize = TESTS_PER_DAY / 2;
/// The earliest local start of the morning and the evening block (hour).
const MORNING_HOUR: i8 = 9;
const EVENING_HOUR: i8 = 19;
/// A block starts up to this long after its hour.
const BLOCK_JITTER_SECONDS: u64 = 3600;
/// The step from one test to the next in a block: 8 min plus up to 7 min.
const STEP_MIN_SECONDS: u64 = 8 * 60;
const STEP_JITTER_SECONDS: u64 = 7 * 60;

/// SplitMix64: a small, fixed generator, so a plan depends on nothing but
/// its inputs (not on a library's choice of algorithm).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` seconds (n > 0; the tiny modulo bias is harmless).
    fn seconds(&mut self, n: u64) -> i64 {
        i64::try_from(self.next() % n).unwrap_or(0)
    }
}

/// The 10 test times of `date` in time zone `tz` for a target with `seed`,
/// in order. `None` only for a date at the edge of the supported range.
pub fn day_plan(date: Date, tz: &TimeZone, seed: u64) -> Option<[Timestamp; TESTS_PER_DAY]> {
    let day =
        i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day());
    let mut rng = SplitMix(seed ^ (day as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let mut plan = [Timestamp::UNIX_EPOCH; TESTS_PER_DAY];
    for (block, hour) in [MORNING_HOUR, EVENING_HOUR].into_iter().enumerate() {
        let start = date
            .at(hour, 0, 0, 0)
            .to_zoned(tz.clone())
            .ok()?
            .timestamp();
        let mut at = start
            .checked_add(SignedDuration::from_secs(rng.seconds(BLOCK_JITTER_SECONDS)))
            .ok()?;
        for k in 0..PER_BLOCK {
            if k > 0 {
                let step = STEP_MIN_SECONDS as i64 + rng.seconds(STEP_JITTER_SECONDS);
                at = at.checked_add(SignedDuration::from_secs(step)).ok()?;
            }
            plan[block * PER_BLOCK + k] = at;
        }
    }
    Some(plan)
}

/// The first planned test strictly after `after`.
pub fn next_after(after: Timestamp, tz: &TimeZone, seed: u64) -> Option<Timestamp> {
    let mut date = after.to_zoned(tz.clone()).date().yesterday().ok()?;
    // A plan ends by 21:00 local: at most tomorrow's holds the next test.
    for _ in 0..3 {
        if let Some(t) = day_plan(date, tz, seed)?.into_iter().find(|t| *t > after) {
            return Some(t);
        }
        date = date.tomorrow().ok()?;
    }
    None
}

/// The seed of target `name` on this machine: the same on every start.
pub fn seed(name: &str) -> u64 {
    let machine = ["/etc/machine-id", "/proc/sys/kernel/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    seed_of(machine.trim(), name)
}

/// FNV-1a of the machine and the target name.
fn seed_of(machine: &str, name: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in machine.bytes().chain([0]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01B3);
    }
    h
}

/// Today's plan as local `HH:MM` times, for `linkwatch check` and the log.
pub fn describe(plan: &[Timestamp], tz: &TimeZone) -> String {
    plan.iter()
        .map(|t| t.to_zoned(tz.clone()).strftime("%H:%M").to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FIFTH_TO_SIXTH_SECONDS, MIN_SPACING_SECONDS};

    #[test]
    fn a_day_of_the_campaign_is_a_day_of_the_bnetza_sample() {
        assert_eq!(
            TESTS_PER_DAY,
            crate::config::CriteriaSet::BNETZA.tests_per_day()
        );
    }

    /// The rules the report counts by, checked on one plan.
    fn meets_the_rules(date: Date, tz: &TimeZone, plan: &[Timestamp; TESTS_PER_DAY]) {
        for w in plan.windows(2) {
            let gap = w[1].as_second() - w[0].as_second();
            assert!(gap >= MIN_SPACING_SECONDS, "{date} {tz:?}: {w:?}");
            // The margin for a late start.
            assert!(gap >= 8 * 60, "{date}: {w:?}");
        }
        let fifth_to_sixth = plan[5].as_second() - plan[4].as_second();
        assert!(
            fifth_to_sixth >= FIFTH_TO_SIXTH_SECONDS,
            "{date}: {fifth_to_sixth} s"
        );
        for t in plan {
            assert_eq!(t.to_zoned(tz.clone()).date(), date, "{t} not on {date}");
        }
        // The evening block is inside the FCC peak hours.
        for t in &plan[5..] {
            let hour = t.to_zoned(tz.clone()).hour();
            assert!(crate::config::FCC_PEAK.contains(&hour), "{t}");
        }
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    #[test]
    fn every_plan_meets_the_sampling_rules() {
        let zones = [
            TimeZone::UTC,
            tz("Europe/Berlin"),
            tz("America/New_York"),
            tz("Australia/Lord_Howe"),
            tz("Asia/Kathmandu"),
            // Clocks change at midnight there.
            tz("America/Santiago"),
        ];
        let mut date = Date::constant(2026, 1, 1);
        for _ in 0..400 {
            for (k, zone) in zones.iter().enumerate() {
                for seed in [0, 1, u64::MAX, 0xDEAD_BEEF ^ k as u64] {
                    let plan = day_plan(date, zone, seed).unwrap();
                    meets_the_rules(date, zone, &plan);
                    // Greedy counting in the report keeps all 10.
                    assert!(plan.windows(2).all(|w| w[0] < w[1]));
                }
            }
            date = date.tomorrow().unwrap();
        }
    }

    #[test]
    fn dst_days_keep_the_rules_in_real_time() {
        let berlin = tz("Europe/Berlin");
        // 23-hour and 25-hour days.
        for date in [Date::constant(2026, 3, 29), Date::constant(2026, 10, 25)] {
            for seed in 0..500 {
                let plan = day_plan(date, &berlin, seed).unwrap();
                meets_the_rules(date, &berlin, &plan);
                // Blocks start at their local hours, whatever the offset.
                let first = plan[0].to_zoned(berlin.clone());
                assert_eq!(first.hour(), 9, "{first}");
                let sixth = plan[5].to_zoned(berlin.clone());
                assert_eq!(sixth.hour(), 19, "{sixth}");
            }
        }
        // The spring day: 09:00 is UTC+2 already.
        let plan = day_plan(Date::constant(2026, 3, 29), &berlin, 7).unwrap();
        assert!(plan[0] >= "2026-03-29T07:00:00Z".parse().unwrap());
        assert!(plan[0] < "2026-03-29T08:00:00Z".parse().unwrap());
    }

    #[test]
    fn a_plan_is_a_function_of_its_inputs_and_varies_with_them() {
        let berlin = tz("Europe/Berlin");
        let d = Date::constant(2026, 12, 7);
        assert_eq!(day_plan(d, &berlin, 42), day_plan(d, &berlin, 42));
        assert_ne!(day_plan(d, &berlin, 42), day_plan(d, &berlin, 43));
        assert_ne!(
            day_plan(d, &berlin, 42),
            day_plan(d.tomorrow().unwrap(), &berlin, 42)
                .map(|p| p.map(|t| t.checked_sub(SignedDuration::from_hours(24)).unwrap()))
        );
        // Spread: the first test's minute differs over many seeds.
        let mut minutes: Vec<i8> = (0..200)
            .map(|s| {
                day_plan(d, &berlin, s).unwrap()[0]
                    .to_zoned(berlin.clone())
                    .minute()
            })
            .collect();
        minutes.sort();
        minutes.dedup();
        assert!(minutes.len() > 30, "{minutes:?}");
        assert_ne!(seed_of("a", "x"), seed_of("b", "x"));
        assert_ne!(seed_of("a", "x"), seed_of("a", "y"));
        assert_ne!(seed_of("ab", "c"), seed_of("a", "bc"));
    }

    #[test]
    fn next_after_walks_through_the_days() {
        let berlin = tz("Europe/Berlin");
        let d = Date::constant(2026, 12, 7);
        let today = day_plan(d, &berlin, 5).unwrap();
        let tomorrow = day_plan(d.tomorrow().unwrap(), &berlin, 5).unwrap();
        // Before the first: the first; on a test: the one after it.
        let midnight = d
            .at(0, 0, 0, 0)
            .to_zoned(berlin.clone())
            .unwrap()
            .timestamp();
        assert_eq!(next_after(midnight, &berlin, 5), Some(today[0]));
        for k in 0..9 {
            assert_eq!(next_after(today[k], &berlin, 5), Some(today[k + 1]));
        }
        // After the last: tomorrow's first.
        assert_eq!(next_after(today[9], &berlin, 5), Some(tomorrow[0]));
        assert_eq!(describe(&today[..1], &berlin).len(), 5);
    }
}
