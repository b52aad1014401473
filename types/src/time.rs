//! Time as people read it.

use chrono::FixedOffset;

/// China Standard Time: the dates people type and read (birth dates,
/// departures, contacts) are Beijing dates.
pub fn china_time() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}
