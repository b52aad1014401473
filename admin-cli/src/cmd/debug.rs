//! `liaisonctl debug`: tools for test deployments, hidden from the main help.
//! `debug clock` moves a node's clock so that tests can pass an agreement's
//! `effective_from` or `effective_until` without waiting; a node refuses it
//! unless its config says `[testing] allow_clock_override = true`.

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, json_line, Detail, Format};
use serde_json::json;

use super::{Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Set how far this node's clock runs from the system clock.
    ///
    /// Test deployments only; the node refuses unless [testing]
    /// allow_clock_override = true. Give exactly one of --offset,
    /// --offset-ms or --reset; the offset replaces the previous one (it does
    /// not add to it). Prints the node's time now and the offset.
    Clock(ClockArgs),
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ClockArgs {
    /// The offset as a duration: a whole number and d, h, m or s, e.g. 400d,
    /// 12h; negative moves back (--offset -1d).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration_ms)]
    offset: Option<i64>,
    /// The offset in milliseconds; negative moves back.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    offset_ms: Option<i64>,
    /// Back to the system clock (offset 0).
    #[arg(long)]
    reset: bool,
}

impl ClockArgs {
    fn request(self) -> pb::DebugClockRequest {
        pb::DebugClockRequest {
            offset_ms: self.offset.or(self.offset_ms).unwrap_or(0),
        }
    }
}

pub async fn run(admin: &mut Admin, format: Format, command: DebugCommand) -> Result<(), Failure> {
    match command {
        DebugCommand::Clock(args) => {
            let clock = admin.debug_clock(args.request()).await?.into_inner();
            match format {
                Format::Json => json_line(
                    "clock",
                    json!({ "now_ms": clock.now_ms, "offset_ms": clock.offset_ms }),
                ),
                Format::Table => output::print_out(&clock_text(&clock)),
            }
        }
    }
    Ok(())
}

const MS_PER_UNIT: [(char, i64); 4] = [
    ('d', 86_400_000),
    ('h', 3_600_000),
    ('m', 60_000),
    ('s', 1_000),
];

/// Parses `400d`, `12h`, `90m`, `45s`, optionally signed, into milliseconds.
fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let usage = || {
        format!(
            "expected a whole number and a unit d, h, m or s, e.g. 400d, 12h or -1d; got `{text}`"
        )
    };
    let trimmed = text.trim();
    let (negative, unsigned) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let unit = unsigned.chars().last().ok_or_else(usage)?;
    let ms_per_unit = MS_PER_UNIT
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, ms)| *ms)
        .ok_or_else(usage)?;
    let digits = &unsigned[..unsigned.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(usage());
    }
    let ms = digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(ms_per_unit))
        .ok_or_else(|| format!("`{text}` is too long a duration"))?;
    Ok(if negative { -ms } else { ms })
}

/// An offset for people: signed days, hours, minutes, seconds (and
/// milliseconds), largest first, zero parts left out.
fn offset_text(offset_ms: i64) -> String {
    if offset_ms == 0 {
        return "0 (the system clock)".into();
    }
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let mut rest = offset_ms.unsigned_abs();
    let mut parts = Vec::new();
    for (unit, ms) in MS_PER_UNIT {
        let ms = ms as u64;
        if rest >= ms {
            parts.push(format!("{}{unit}", rest / ms));
            rest %= ms;
        }
    }
    if rest > 0 {
        parts.push(format!("{rest}ms"));
    }
    format!("{sign}{} ({offset_ms} ms)", parts.join(" "))
}

fn clock_text(clock: &pb::DebugClockResponse) -> String {
    let mut d = Detail::new();
    d.field("now", output::time(clock.now_ms))
        .field("offset", offset_text(clock.offset_ms));
    d.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn clock(args: &[&str]) -> pb::DebugClockRequest {
        let argv: Vec<&str> = ["debug", "clock"].iter().chain(args).copied().collect();
        match parse(&argv) {
            Command::Debug(DebugCommand::Clock(args)) => args.request(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn clock_sets_one_offset() {
        let check = |args: &[&str], offset_ms: i64| {
            assert_eq!(clock(args), pb::DebugClockRequest { offset_ms }, "{args:?}");
        };
        check(&["--offset", "400d"], 400 * 86_400_000);
        check(&["--offset", "-1d"], -86_400_000);
        check(&["--offset=-90m"], -5_400_000);
        check(&["--offset-ms", "1500"], 1500);
        check(&["--offset-ms", "-1500"], -1500);
        check(&["--reset"], 0);
        assert!(refused(&["debug", "clock"]));
        assert!(refused(&["debug", "clock", "--reset", "--offset", "1d"]));
        assert!(refused(&[
            "debug",
            "clock",
            "--offset-ms",
            "1",
            "--offset",
            "1d"
        ]));
        assert!(refused(&["debug", "clock", "--offset", "1w"]));
    }

    #[test]
    fn durations_parse_strictly() {
        let check = |text: &str, want: Option<i64>| {
            assert_eq!(parse_duration_ms(text).ok(), want, "{text}");
        };
        check("30d", Some(30 * 86_400_000));
        check("12h", Some(12 * 3_600_000));
        check("90m", Some(90 * 60_000));
        check("45s", Some(45_000));
        check("+2h", Some(7_200_000));
        check("-0s", Some(0));
        for bad in [
            "",
            "d",
            "-d",
            "1.5d",
            "1d2h",
            "10",
            "1 d",
            "１d",
            "99999999999999999d",
        ] {
            check(bad, None);
        }
        assert!(parse_duration_ms("1w")
            .unwrap_err()
            .contains("d, h, m or s"));
    }

    #[test]
    fn clock_prints_the_offset_in_units() {
        assert_eq!(offset_text(0), "0 (the system clock)");
        assert_eq!(offset_text(400 * 86_400_000), "+400d (34560000000 ms)");
        assert_eq!(
            offset_text(-(86_400_000 + 12 * 3_600_000 + 1)),
            "-1d 12h 1ms (-129600001 ms)"
        );
        let text = clock_text(&pb::DebugClockResponse {
            now_ms: 0,
            offset_ms: -45_000,
        });
        assert_eq!(text, "now     -\noffset  -45s (-45000 ms)\n");
    }

    #[test]
    fn debug_is_hidden_from_the_main_help() {
        use clap::CommandFactory;
        let help = crate::Cli::command().render_help().to_string();
        assert!(!help.contains("debug"), "{help}");
        assert!(
            help.contains("agreement") && help.contains("report"),
            "{help}"
        );
    }
}
