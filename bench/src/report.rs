//! Figures, targets and their ratios; the human table and the JSON file.
//!
//! A [`Figure`] is one measured quantity with one sample per repetition;
//! what is shown is the median and the spread (min … max). A [`Target`]
//! compares the median with a limit measured in the same run (or, for the
//! few absolute targets of the issue, with that absolute bound) and says
//! whether it is met. Nothing here asserts: a missed target is printed.

use std::fmt::Write as _;

use serde_json::{json, Value};

/// One measured quantity, one sample per repetition.
#[derive(Debug, Clone)]
pub struct Figure {
    pub scenario: String,
    pub name: String,
    pub unit: String,
    pub samples: Vec<f64>,
    pub target: Option<Target>,
    /// What bounds the figure or how it was measured, in a few words.
    pub note: String,
}

/// How a figure compares with its target.
#[derive(Debug, Clone)]
pub struct Target {
    /// The rule in words, e.g. `≥ 0.5 × min(L_sqlite, L_stream)`.
    pub rule: String,
    /// The limit (or bound) the figure is divided by, with its name.
    pub limit_name: String,
    pub limit_value: f64,
    /// figure / limit.
    pub ratio: f64,
    /// `None` where the issue asks for the ratio only, with no bound.
    pub met: Option<bool>,
}

impl Target {
    /// `value ≥ factor × limit`.
    pub fn at_least(value: f64, factor: f64, limit_name: &str, limit_value: f64) -> Target {
        let ratio = ratio(value, limit_value);
        Target {
            rule: format!("≥ {factor} × {limit_name}"),
            limit_name: limit_name.to_owned(),
            limit_value,
            ratio,
            met: Some(ratio >= factor),
        }
    }

    /// `value ≤ bound` for an absolute bound of the issue (no machine limit
    /// exists for it); the ratio is value / bound.
    pub fn at_most(value: f64, bound: f64, bound_name: &str) -> Target {
        let ratio = ratio(value, bound);
        Target {
            rule: format!("≤ {bound_name}"),
            limit_name: "absolute".to_owned(),
            limit_value: bound,
            ratio,
            met: Some(value <= bound),
        }
    }
}

fn ratio(value: f64, limit: f64) -> f64 {
    if limit > 0.0 {
        value / limit
    } else {
        f64::NAN
    }
}

impl Figure {
    pub fn new(scenario: &str, name: &str, unit: &str, samples: Vec<f64>) -> Figure {
        Figure {
            scenario: scenario.to_owned(),
            name: name.to_owned(),
            unit: unit.to_owned(),
            samples,
            target: None,
            note: String::new(),
        }
    }

    pub fn with_target(mut self, target: Target) -> Figure {
        self.target = Some(target);
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Figure {
        self.note = note.into();
        self
    }

    pub fn median(&self) -> f64 {
        median(&self.samples)
    }

    pub fn min(&self) -> f64 {
        self.samples.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.samples
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// The median of `values` (NaN if empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The `q`-quantile (0..=1) of `values`, nearest rank; NaN if empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Everything one run found: figures, notes, failures, and what is pending.
#[derive(Debug, Default)]
pub struct Report {
    pub figures: Vec<Figure>,
    /// (scenario, text): context worth keeping next to the figures.
    pub notes: Vec<(String, String)>,
    /// (scenario, error): a scenario that could not finish.
    pub errors: Vec<(String, String)>,
    /// (scenario, why): a scenario that cannot run yet.
    pub pending: Vec<(String, String)>,
}

impl Report {
    pub fn add(&mut self, figure: Figure) {
        self.figures.push(figure);
    }

    pub fn note(&mut self, scenario: &str, text: impl Into<String>) {
        self.notes.push((scenario.to_owned(), text.into()));
    }

    /// The human table, grouped by scenario in the order they ran.
    pub fn table(&self) -> String {
        let header = [
            "scenario", "figure", "median", "spread", "n", "target", "limit", "ratio", "",
        ];
        let mut rows: Vec<[String; 9]> = Vec::new();
        for f in &self.figures {
            let (rule, limit, ratio, verdict) = match &f.target {
                Some(t) => (
                    t.rule.clone(),
                    format!("{} = {}", t.limit_name, fmt_num(t.limit_value)),
                    if t.ratio.is_finite() {
                        format!("{:.2}", t.ratio)
                    } else {
                        "-".to_owned()
                    },
                    match t.met {
                        Some(true) => "met",
                        Some(false) => "MISSED",
                        None => "reported",
                    }
                    .to_owned(),
                ),
                None => Default::default(),
            };
            rows.push([
                f.scenario.clone(),
                format!("{} ({})", f.name, f.unit),
                fmt_num(f.median()),
                format!("{} … {}", fmt_num(f.min()), fmt_num(f.max())),
                f.samples.len().to_string(),
                rule,
                limit,
                ratio,
                verdict,
            ]);
        }
        let mut widths = header.map(display_width);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row.iter()) {
                *w = (*w).max(display_width(cell));
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            for (idx, (cell, w)) in cells.iter().zip(widths.iter()).enumerate() {
                let pad = w - display_width(cell);
                // Numbers right-aligned, words left-aligned.
                if matches!(idx, 2 | 4 | 7) {
                    let _ = write!(out, "{}{}  ", " ".repeat(pad), cell);
                } else {
                    let _ = write!(out, "{}{}  ", cell, " ".repeat(pad));
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        };
        line(&mut out, &header.map(str::to_owned));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&mut out, &rule);
        let mut last_scenario = String::new();
        for row in &rows {
            if !last_scenario.is_empty() && row[0] != last_scenario {
                out.push('\n');
            }
            last_scenario = row[0].clone();
            line(&mut out, row);
        }
        for (scenario, why) in &self.pending {
            let _ = writeln!(out, "\n{scenario}: pending: {why}");
        }
        for (scenario, error) in &self.errors {
            let _ = writeln!(out, "\n{scenario}: FAILED: {error}");
        }
        if !self.notes.is_empty() {
            out.push_str("\nNotes:\n");
            for (scenario, text) in &self.notes {
                let _ = writeln!(out, "- {scenario}: {text}");
            }
        }
        out
    }

    /// The same figures as JSON, with the machine and the command.
    pub fn to_json(&self, machine: Value, command: &str, started_at: &str) -> Value {
        let figures: Vec<Value> = self
            .figures
            .iter()
            .map(|f| {
                json!({
                    "scenario": f.scenario,
                    "name": f.name,
                    "unit": f.unit,
                    "median": finite(f.median()),
                    "min": finite(f.min()),
                    "max": finite(f.max()),
                    "samples": f.samples.iter().map(|v| finite(*v)).collect::<Vec<_>>(),
                    "note": f.note,
                    "target": f.target.as_ref().map(|t| json!({
                        "rule": t.rule,
                        "limit_name": t.limit_name,
                        "limit_value": finite(t.limit_value),
                        "ratio": finite(t.ratio),
                        "met": t.met,
                    })),
                })
            })
            .collect();
        let pairs = |list: &[(String, String)], key: &str| -> Vec<Value> {
            list.iter()
                .map(|(s, t)| json!({ "scenario": s, key: t }))
                .collect()
        };
        json!({
            "command": command,
            "started_at": started_at,
            "machine": machine,
            "figures": figures,
            "notes": pairs(&self.notes, "note"),
            "errors": pairs(&self.errors, "error"),
            "pending": pairs(&self.pending, "why"),
        })
    }
}

fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

/// A number with as many digits as it deserves.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_owned();
    }
    let a = v.abs();
    if a >= 10_000.0 {
        group_thousands(v.round() as i64)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (idx, c) in digits.chars().enumerate() {
        if idx > 0 && (digits.len() - idx).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Width on a terminal: CJK characters and the ellipsis count as shown.
fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFF00..=0xFF60 => 2,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quantiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&values, 1.0), 100.0);
    }

    #[test]
    fn targets() {
        let t = Target::at_least(60.0, 0.5, "L", 100.0);
        assert_eq!(t.met, Some(true));
        assert_eq!(t.ratio, 0.6);
        let t = Target::at_most(12.0, 10.0, "10 ms");
        assert_eq!(t.met, Some(false));
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(123_456.4), "123,456");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(0.5), "0.50");
    }
}
