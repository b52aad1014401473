//! Places (GB/T 2260 administrative divisions) as clerks type and read
//! them: a code, a name (`兰州`, `兰州市`) or a path (`甘肃省兰州市城关区`)
//! in; the name with its code out (`兰州市 (620100)`).

use liaison_types::places;

use super::Failure;

/// The code the node stores and matches for a place typed as code, name
/// or path ([`places::code_of`]). An unknown or ambiguous place is refused
/// (exit 1) with the candidates.
pub fn code(text: &str) -> Result<String, Failure> {
    places::code_of(text).map_err(|e| Failure::Refused(e.to_string()))
}

/// [`code`] for each of `texts`.
pub fn codes(texts: &[String]) -> Result<Vec<String>, Failure> {
    texts.iter().map(|t| code(t)).collect()
}

/// A place code as people read it: `兰州市 (6201)`; `-` for none.
pub fn show(code: &str) -> String {
    match places::label(code) {
        label if label.is_empty() => "-".into(),
        label => label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_the_codes_the_node_matches() {
        assert_eq!(code("兰州").unwrap(), "6201");
        assert_eq!(code("甘肃省").unwrap(), "62");
        assert_eq!(code("甘肃省兰州市城关区").unwrap(), "620102");
        assert_eq!(code("620102").unwrap(), "620102");
        assert_eq!(code("6201").unwrap(), "6201");
        assert_eq!(code("兰州市城关区 (620102)").unwrap(), "620102");
        assert_eq!(code("兰州市（6201）").unwrap(), "6201");
        assert!(matches!(code("999999"), Err(Failure::Refused(_))));
        let Err(Failure::Refused(message)) = code("朝阳区") else {
            panic!("朝阳区 is ambiguous")
        };
        assert!(
            message.contains("110105") && message.contains("220104"),
            "{message}"
        );
    }

    #[test]
    fn codes_show_with_their_names() {
        assert_eq!(show("6201"), "兰州市 (6201)");
        assert_eq!(show("620102"), "兰州市城关区 (620102)");
        assert_eq!(show(""), "-");
        assert!(show("620199").contains("unknown code"));
    }
}
