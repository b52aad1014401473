//! Time as people read it: the node's zone (`time_zone` in node.toml,
//! default Asia/Shanghai), in which a node shows times and counts its
//! calendar days; and China Standard Time, the zone of the wall-clock
//! times records carry between nodes (contact times).

use chrono::FixedOffset;
pub use chrono_tz::Tz;

/// The zone a node shows times in unless its configuration names another.
pub const DEFAULT_ZONE: Tz = chrono_tz::Asia::Shanghai;

/// China Standard Time: the zone of wall-clock times carried between
/// nodes (a contact's time), so every node reads them alike.
pub fn china_time() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// The zone of an IANA name (`Asia/Shanghai`, `Asia/Urumqi`).
pub fn zone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("`{name}` is not a time zone name: use an IANA name such as Asia/Shanghai")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_by_name() {
        assert_eq!(zone("Asia/Shanghai").unwrap(), DEFAULT_ZONE);
        assert!(zone("Asia/Urumqi").is_ok());
        assert!(zone("Beijing").unwrap_err().contains("IANA"));
    }
}
