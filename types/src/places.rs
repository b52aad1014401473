//! Places: the administrative divisions of GB/T 2260 (province, city,
//! county), looked up by code or by name.
//!
//! The table is `types/data/divisions.tsv`, generated from a registry
//! package (`types/data/README.md` says which, of what date, and what is
//! left out) and compiled into the binary, so every node and `liaisonctl`
//! know the same places without a download. It is parsed once, on first use.
//!
//! Operators type names; outputs show names with codes (docs/authority.md "Places"):
//! - [`resolve`] takes a code, a name with or without its suffix
//!   (`兰州市`, `兰州`), or a path from the province down (`甘肃兰州城关区`,
//!   `甘肃 兰州 城关区`), and says which places a name could mean when it
//!   means more than one;
//! - [`display`] gives `兰州市 (620100)`, with as many of the place's
//!   parents in front as tell it from the other places of that name
//!   (`兰州市城关区 (620102)`), and marks a code the table does not have;
//! - [`full_name`] gives the whole path, `甘肃省兰州市城关区`.
//!
//! Two kinds of rows only group counties and are not places anyone names on
//! their own: a municipality's 市辖区 (`110100`) and 县 (`500200`), and a
//! province's 省直辖县级行政区划 (`429000`; 自治区直辖… in Xinjiang), which
//! holds the counties directly under the province (仙桃市 `429004`). They
//! stay in the table, because GB/T 2260 has their codes, but a path skips
//! them: 北京市朝阳区, 湖北省仙桃市.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// The table: `code<TAB>name<TAB>parent code`, one place a line.
const TABLE: &str = include_str!("../data/divisions.tsv");

/// The level of a place in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// 省级: province, autonomous region, municipality (`620000`).
    Province,
    /// 地级: prefecture-level city, prefecture, league, autonomous
    /// prefecture (`620100`), and the grouping rows (`110100`, `429000`).
    City,
    /// 县级: district, county, county-level city, banner (`620102`).
    County,
}

/// One administrative division.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// Six digits: `620000`, `620100`, `620102`.
    pub code: &'static str,
    /// The official name: `兰州市`, `临夏回族自治州`, `市辖区`.
    pub name: &'static str,
    pub level: Level,
    /// The code of the place above; none for a province.
    pub parent: Option<&'static str>,
}

/// The names of the rows that only group counties (see the module's doc).
const GROUPING: [&str; 4] = [
    "市辖区",
    "县",
    "省直辖县级行政区划",
    "自治区直辖县级行政区划",
];

impl Place {
    /// Whether this row only groups counties (市辖区, 县, 省直辖县级行政区划):
    /// paths and names leave it out.
    pub fn is_grouping(&self) -> bool {
        self.level == Level::City && GROUPING.contains(&self.name)
    }
}

/// A place a name could mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub code: String,
    /// The official name: `城关区`.
    pub name: String,
    /// From the province down: `甘肃省兰州市城关区`.
    pub full_name: String,
    /// The shortest tail of that path that names this place only
    /// (`兰州市城关区`), as [`display`] shows it.
    pub shortest: String,
}

/// A place that operator input does not name, or names more than one of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("{}", unknown_message(input))]
    Unknown { input: String },
    #[error("{}", ambiguous_message(input, candidates))]
    Ambiguous {
        input: String,
        /// Every place the input could mean, in code order.
        candidates: Vec<Candidate>,
    },
}

fn unknown_message(input: &str) -> String {
    if input.is_empty() {
        "no place given: type a province, city or county by name (甘肃, 兰州市, 甘肃兰州城关区) or by its code (620102)".into()
    } else if input.bytes().all(|b| b.is_ascii_digit()) {
        format!(
            "place code `{input}` is not in the administrative-division table (GB/T 2260): give 2 digits for a province (62), 4 for a city (6201) or 6 for any place (620102), or type the place's name (兰州市)"
        )
    } else {
        format!(
            "no place is called `{input}` in the administrative-division table (GB/T 2260): type a province, city or county by its official name (兰州市, 城关区) or without its suffix (兰州), from the province down where a name is not enough (甘肃兰州城关区), or give its code (620102)"
        )
    }
}

fn ambiguous_message(input: &str, candidates: &[Candidate]) -> String {
    let listed: Vec<String> = candidates
        .iter()
        .map(|c| format!("{} ({})", c.full_name, c.code))
        .collect();
    // An example with a parent in front of the name: the first
    // candidate's shortest unique path that has one, else its full path.
    let example = candidates
        .iter()
        .find(|c| c.shortest != c.name)
        .map(|c| &c.shortest)
        .or(candidates.first().map(|c| &c.full_name))
        .map_or("", String::as_str);
    format!(
        "`{input}` could be {} places: {}; type the one you mean as listed or with its city or province in front (e.g. {example}), or give its code",
        candidates.len(),
        listed.join(", ")
    )
}

/// The administrative-division table with its indexes.
#[derive(Debug)]
pub struct Divisions {
    /// In code order.
    places: Vec<Place>,
    by_code: HashMap<&'static str, usize>,
    /// The index of each place's parent.
    parents: Vec<Option<usize>>,
    /// Every name a place answers to (see `names_of`), and the places.
    names: HashMap<String, Vec<usize>>,
    /// The longest name in `names`, in bytes: no longer prefix of the
    /// input needs looking up.
    longest_name: usize,
    /// The shortest tail of each place's path that no other place has
    /// (`城关区` → `兰州市城关区`), for [`Divisions::display`].
    labels: Vec<String>,
}

/// The table shipped in this crate, parsed on first use.
pub fn divisions() -> &'static Divisions {
    static DIVISIONS: OnceLock<Divisions> = OnceLock::new();
    DIVISIONS.get_or_init(|| {
        Divisions::parse(TABLE).unwrap_or_else(|e| {
            panic!("types/data/divisions.tsv: {e} (the crate's tests check this file)")
        })
    })
}

/// [`Divisions::by_code`] in the shipped table.
pub fn by_code(code: &str) -> Option<&'static Place> {
    divisions().by_code(code)
}

/// [`Divisions::resolve`] in the shipped table.
pub fn resolve(text: &str) -> Result<&'static Place, PlaceError> {
    divisions().resolve(text)
}

/// The code a node stores for a place typed as a code, a name or a path,
/// or as outputs show it (`兰州市城关区 (620102)`, the code deciding): 2
/// digits for a province, 4 for a city, 6 for a county, so that a province
/// or a city also covers the places under it.
pub fn code_of(text: &str) -> Result<String, PlaceError> {
    let text = text.trim();
    let shown_code = text
        .strip_suffix(')')
        .and_then(|t| t.rsplit_once('('))
        .or_else(|| text.strip_suffix('）').and_then(|t| t.rsplit_once('（')))
        .map(|(_, code)| code.trim())
        .filter(|code| !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()));
    let place = match shown_code {
        Some(code) => by_code(code).ok_or_else(|| PlaceError::Unknown {
            input: code.to_owned(),
        })?,
        None => resolve(text)?,
    };
    Ok(match place.level {
        Level::Province => place.code[..2].to_owned(),
        Level::City => place.code[..4].to_owned(),
        Level::County => place.code.to_owned(),
    })
}

/// A place code as people read it, the name with the code as stored:
/// `兰州市 (6201)`, `兰州市城关区 (620102)`; text that is no code (a place
/// written out on an older record) as written; empty for none.
pub fn label(code: &str) -> String {
    let code = code.trim();
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return code.to_owned();
    }
    let shown = display(code);
    match by_code(code) {
        Some(place) => shown.replace(&format!("({})", place.code), &format!("({code})")),
        None => shown,
    }
}

/// [`Divisions::full_name`] in the shipped table.
pub fn full_name(code: &str) -> Option<String> {
    divisions().full_name(code)
}

/// [`Divisions::display`] in the shipped table.
pub fn display(code: &str) -> String {
    divisions().display(code)
}

impl Divisions {
    /// Reads a table of `code<TAB>name<TAB>parent code` lines and checks it:
    /// six-digit codes, each once, whose level the code says (`xx0000` a
    /// province, `xxxx00` a city, else a county), each under the place its
    /// code says (`620102` under `620100`, `620100` under `620000`).
    fn parse(table: &'static str) -> Result<Divisions, String> {
        let mut places = Vec::new();
        let mut codes = HashSet::new();
        for (number, line) in table.lines().enumerate() {
            let at = |what: String| format!("line {}: {what}", number + 1);
            let fields: Vec<&'static str> = line.split('\t').collect();
            let [code, name, parent] = fields[..] else {
                return Err(at(format!("{} fields, not 3", fields.len())));
            };
            if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(at(format!("code `{code}` is not 6 digits")));
            }
            if name.is_empty() {
                return Err(at(format!("{code} has no name")));
            }
            let (level, expected_parent) = if code.ends_with("0000") {
                (Level::Province, String::new())
            } else if code.ends_with("00") {
                (Level::City, format!("{}0000", &code[..2]))
            } else {
                (Level::County, format!("{}00", &code[..4]))
            };
            if parent != expected_parent {
                return Err(at(format!(
                    "{code} {name} is under `{parent}`, its code says `{expected_parent}`"
                )));
            }
            if !codes.insert(code) {
                return Err(at(format!("{code} {name} is listed twice")));
            }
            places.push(Place {
                code,
                name,
                level,
                parent: (!parent.is_empty()).then_some(parent),
            });
        }
        places.sort_by_key(|p| p.code);
        let by_code: HashMap<&'static str, usize> = places
            .iter()
            .enumerate()
            .map(|(i, p)| (p.code, i))
            .collect();
        let mut parents = Vec::with_capacity(places.len());
        for place in &places {
            parents.push(match place.parent {
                None => None,
                Some(parent) => Some(*by_code.get(parent).ok_or_else(|| {
                    format!(
                        "{} {}: its parent {parent} is not in the table",
                        place.code, place.name
                    )
                })?),
            });
        }
        let mut divisions = Divisions {
            places,
            by_code,
            parents,
            names: HashMap::new(),
            longest_name: 0,
            labels: Vec::new(),
        };
        for index in 0..divisions.places.len() {
            for name in divisions.names_of(index) {
                divisions.longest_name = divisions.longest_name.max(name.len());
                divisions.names.entry(name).or_default().push(index);
            }
        }
        divisions.labels = divisions.labels();
        Ok(divisions)
    }

    /// Every place, in code order.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// The place of a code: 6 digits for any place, or 2 for a province
    /// (`62` is `620000`) and 4 for a city (`6201` is `620100`), as
    /// operators and the peers' place prefixes write them.
    pub fn by_code(&self, code: &str) -> Option<&Place> {
        self.index_of(code.trim()).map(|i| &self.places[i])
    }

    fn index_of(&self, code: &str) -> Option<usize> {
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (code, level) = match code.len() {
            2 => (format!("{code}0000"), Some(Level::Province)),
            4 => (format!("{code}00"), Some(Level::City)),
            6 => (code.to_owned(), None),
            _ => return None,
        };
        let index = *self.by_code.get(code.as_str())?;
        // `6200` is no city's code: a short code names its own level only.
        level
            .is_none_or(|level| self.places[index].level == level)
            .then_some(index)
    }

    /// Whether the place `code` is `area` or lies within it (both codes as
    /// [`Divisions::by_code`] takes them); false if either is not in the table.
    pub fn is_within(&self, code: &str, area: &str) -> bool {
        match (self.index_of(code.trim()), self.index_of(area.trim())) {
            (Some(place), Some(area)) => place == area || self.is_below(place, area),
            _ => false,
        }
    }

    /// The place that operator input names: a code (see
    /// [`Divisions::by_code`]), an official name (`兰州市`), a name without
    /// its suffix (`兰州`, `临夏`, `临夏州`), or a path of such names from
    /// the province down, with or without spaces or commas between them
    /// (`甘肃省兰州市城关区`, `甘肃 兰州 城关区`, `兰州城关`).
    ///
    /// Input that can be read as more than one place (`朝阳区`, `吉林`:
    /// the province and the city) is ambiguous, and the error lists every
    /// reading; nothing is picked for the operator.
    pub fn resolve(&self, text: &str) -> Result<&Place, PlaceError> {
        // Full-width digits are what a Chinese input method types.
        let text: String = text
            .trim()
            .chars()
            .map(|c| match c {
                '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
                _ => c,
            })
            .collect();
        let unknown = || PlaceError::Unknown {
            input: text.clone(),
        };
        if text.is_empty() {
            return Err(unknown());
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return self.by_code(&text).ok_or_else(unknown);
        }
        let segments: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || ",，、/-".contains(c))
            .filter(|s| !s.is_empty())
            .collect();
        let Some((first, rest)) = segments.split_first() else {
            return Err(unknown());
        };
        let mut found = Vec::new();
        self.read(first, rest, None, &mut found);
        found.sort_unstable();
        found.dedup();
        match found[..] {
            [] => Err(unknown()),
            [one] => Ok(&self.places[one]),
            _ => Err(PlaceError::Ambiguous {
                input: text.clone(),
                candidates: found
                    .into_iter()
                    .map(|i| Candidate {
                        code: self.places[i].code.to_owned(),
                        name: self.places[i].name.to_owned(),
                        full_name: self.path(i),
                        shortest: self.labels[i].clone(),
                    })
                    .collect(),
            }),
        }
    }

    /// Collects in `out` the place of every way to read `rest` and then
    /// the segments `more` as names of places, each below the one before
    /// (`above`). A name never runs across the end of a segment.
    fn read(&self, rest: &str, more: &[&str], above: Option<usize>, out: &mut Vec<usize>) {
        if rest.is_empty() {
            match (more.split_first(), above) {
                (Some((next, more)), _) => self.read(next, more, above, out),
                (None, Some(place)) => out.push(place),
                (None, None) => {}
            }
            return;
        }
        let ends = rest.char_indices().skip(1).map(|(i, _)| i);
        for end in ends.chain([rest.len()]) {
            if end > self.longest_name {
                break;
            }
            let Some(places) = self.names.get(&rest[..end]) else {
                continue;
            };
            for &place in places {
                if above.is_none_or(|above| self.is_below(place, above)) {
                    self.read(&rest[end..], more, Some(place), out);
                }
            }
        }
    }

    /// Whether `place` lies strictly below `above`.
    fn is_below(&self, place: usize, above: usize) -> bool {
        let mut at = self.parents[place];
        while let Some(parent) = at {
            if parent == above {
                return true;
            }
            at = self.parents[parent];
        }
        false
    }

    /// The place's path from its province down, grouping rows left out
    /// (`甘肃省兰州市城关区`, `北京市朝阳区`, `湖北省仙桃市`); a grouping
    /// row itself is named with its province (`北京市市辖区`).
    pub fn full_name(&self, code: &str) -> Option<String> {
        self.index_of(code.trim()).map(|i| self.path(i))
    }

    fn path(&self, index: usize) -> String {
        let mut path: Vec<&str> = self
            .named_ancestors(index)
            .into_iter()
            .map(|i| self.places[i].name)
            .collect();
        path.reverse();
        path.push(self.places[index].name);
        path.concat()
    }

    /// The place's ancestors that are not grouping rows, nearest first.
    fn named_ancestors(&self, index: usize) -> Vec<usize> {
        let mut ancestors = Vec::new();
        let mut at = self.parents[index];
        while let Some(parent) = at {
            if !self.places[parent].is_grouping() {
                ancestors.push(parent);
            }
            at = self.parents[parent];
        }
        ancestors
    }

    /// How outputs show a place: its name and code, `兰州市 (620100)`, the
    /// name preceded by as many of its parents as tell it from the other
    /// places of that name (`兰州市城关区 (620102)`, `北京市朝阳区
    /// (110105)`). A code not in the table shows as itself, marked:
    /// `620199 (unknown code)`.
    pub fn display(&self, code: &str) -> String {
        match self.index_of(code.trim()) {
            Some(i) => format!("{} ({})", self.labels[i], self.places[i].code),
            None => format!("{} (unknown code)", code.trim()),
        }
    }

    /// For each place, the shortest tail of its path that no other place
    /// has: start from the name and, while others share it, put the next
    /// named ancestor in front. Each round adds an ancestor, so it ends; full
    /// paths are unique (a test checks), so every label is.
    fn labels(&self) -> Vec<String> {
        let ancestors: Vec<Vec<usize>> = (0..self.places.len())
            .map(|i| self.named_ancestors(i))
            .collect();
        let mut labels: Vec<String> = self.places.iter().map(|p| p.name.to_owned()).collect();
        let mut depth = vec![0; self.places.len()];
        // A grouping row is nothing without its province.
        for (i, place) in self.places.iter().enumerate() {
            if place.is_grouping() {
                labels[i] = self.path(i);
                depth[i] = ancestors[i].len();
            }
        }
        loop {
            let mut count: HashMap<&str, usize> = HashMap::new();
            for label in &labels {
                *count.entry(label.as_str()).or_default() += 1;
            }
            let shared: Vec<usize> = (0..labels.len())
                .filter(|&i| count[labels[i].as_str()] > 1 && depth[i] < ancestors[i].len())
                .collect();
            if shared.is_empty() {
                return labels;
            }
            for i in shared {
                let ancestor = self.places[ancestors[i][depth[i]]].name;
                labels[i] = format!("{ancestor}{}", labels[i]);
                depth[i] += 1;
            }
        }
    }

    /// The names a place answers to: its official name, and the names
    /// without its suffix (see `stems`). A grouping row answers only to its
    /// name after its province's (`北京市市辖区`), since `市辖区` alone is
    /// four places and `县` is no name.
    fn names_of(&self, index: usize) -> Vec<String> {
        let place = &self.places[index];
        if place.is_grouping() {
            return vec![self.path(index)];
        }
        let mut names = vec![place.name.to_owned()];
        names.extend(stems(place.name));
        names
    }
}

/// The peoples (民族) that name autonomous places, without 族; 各 is 各族,
/// "all peoples" (龙胜各族自治县).
const PEOPLES: &str = "\
    蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 \
    佤 畲 高山 拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 \
    普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺 各";

/// The names a place is called by without the suffix that says its kind:
/// 甘肃省 → 甘肃, 兰州市 → 兰州, 和田地区 → 和田, 锡林郭勒盟 → 锡林郭勒.
///
/// - An autonomous place drops its peoples too, and is also called with
///   the kind's last character: 临夏回族自治州 → 临夏 and 临夏州,
///   积石山保安族东乡族撒拉族自治县 → 积石山 and 积石山县, 新疆维吾尔自治区
///   → 新疆.
/// - 新区, 林区 and 特区 are a kind only sometimes (浦东新区, 神农架林区,
///   六枝特区, but 清新区, 碑林区), so such a name gives both stems.
/// - A stem of one character is no name (沛县 is not called 沛, 矿区 not 矿).
fn stems(name: &str) -> Vec<String> {
    const AUTONOMOUS: [(&str, &str); 4] = [
        ("自治区", ""),
        ("自治州", "州"),
        ("自治县", "县"),
        ("自治旗", "旗"),
    ];
    const WHOLE: [&str; 2] = ["特别行政区", "地区"];
    const SOMETIMES: [&str; 3] = ["新区", "林区", "特区"];
    const ONE: [&str; 6] = ["省", "市", "区", "县", "旗", "盟"];

    let mut stems = Vec::new();
    if let Some((stem, kind)) = AUTONOMOUS
        .iter()
        .find_map(|(suffix, kind)| name.strip_suffix(suffix).map(|stem| (stem, kind)))
    {
        let stem = without_peoples(stem);
        stems.push(stem.to_owned());
        if !kind.is_empty() {
            stems.push(format!("{stem}{kind}"));
        }
    } else if let Some(stem) = WHOLE.iter().find_map(|s| name.strip_suffix(s)) {
        stems.push(stem.to_owned());
    } else {
        for suffix in SOMETIMES.iter().chain(&ONE) {
            if let Some(stem) = name.strip_suffix(suffix) {
                stems.push(stem.to_owned());
            }
        }
    }
    stems.retain(|stem| stem.chars().count() >= 2 && stem != name);
    stems
}

/// 临夏回族 → 临夏, 积石山保安族东乡族撒拉族 → 积石山, 新疆维吾尔 → 新疆:
/// drops the peoples that end the stem while two characters or more are
/// left; a stem that is a people and nothing else keeps it without 族
/// (东乡族自治县 is 东乡, 鄂伦春自治旗 鄂伦春).
fn without_peoples(stem: &str) -> &str {
    let mut stem = stem;
    loop {
        // A people of one character counts only with 族: 水 may end a name.
        let rest = PEOPLES
            .split_whitespace()
            .filter_map(|people| {
                let with_zu = stem.strip_suffix('族').and_then(|s| s.strip_suffix(people));
                let bare = (people.chars().count() > 1)
                    .then(|| stem.strip_suffix(people))
                    .flatten();
                with_zu.or(bare)
            })
            .min_by_key(|rest| rest.len());
        match rest {
            Some(rest) if rest.chars().count() >= 2 => stem = rest,
            Some("") => return stem.strip_suffix('族').unwrap_or(stem),
            _ => return stem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> &'static str {
        match resolve(text) {
            Ok(place) => place.code,
            Err(e) => panic!("`{text}`: {e}"),
        }
    }

    fn candidates(text: &str) -> Vec<String> {
        match resolve(text) {
            Err(PlaceError::Ambiguous { candidates, .. }) => {
                candidates.into_iter().map(|c| c.code).collect()
            }
            other => panic!("`{text}` is not ambiguous: {other:?}"),
        }
    }

    #[test]
    fn the_table_parses_with_each_code_once_and_every_parent_present() {
        let table = divisions();
        let lines = TABLE.lines().count();
        assert_eq!(table.places().len(), lines, "a code is listed twice");
        let mut codes = std::collections::HashSet::new();
        for place in table.places() {
            assert!(codes.insert(place.code), "{} twice", place.code);
            if let Some(parent) = place.parent {
                let parent = by_code(parent).expect("parse checks parents");
                assert!(
                    parent.level < place.level,
                    "{} under {}",
                    place.code,
                    parent.code
                );
            }
        }
        let count = |level| table.places().iter().filter(|p| p.level == level).count();
        // The mainland's 31 provincial units; some 340 cities and 2,800
        // counties (README.md has the numbers of this version).
        assert_eq!(count(Level::Province), 31);
        assert!((330..360).contains(&count(Level::City)));
        assert!((2800..2900).contains(&count(Level::County)));
        // Full paths tell every place apart, which display's labels need.
        let mut paths = std::collections::HashMap::new();
        for place in table.places() {
            let path = full_name(place.code).unwrap();
            if let Some(other) = paths.insert(path.clone(), place.code) {
                panic!("{other} and {} are both {path}", place.code);
            }
        }
        // Statistics-only units (README.md) are not in it, and a city
        // without counties is there once, as a city.
        for code in ["620171", "620201", "232761", "632857"] {
            assert!(by_code(code).is_none(), "{code}");
        }
        assert_eq!(by_code("441900").unwrap().level, Level::City);
        assert!(!table.places().iter().any(|p| p.parent == Some("441900")));
    }

    #[test]
    fn parse_refuses_a_broken_table() {
        let refused = |table: &'static str, says: &str| {
            let e = Divisions::parse(table).unwrap_err();
            assert!(e.contains(says), "{e}");
        };
        refused("620000\t甘肃省\t\n620000\t甘肃省\t\n", "listed twice");
        refused("620100\t兰州市\t620000\n", "not in the table");
        refused(
            "620000\t甘肃省\t\n620102\t城关区\t620000\n",
            "its code says `620100`",
        );
        refused("62000\t甘肃省\t\n", "not 6 digits");
        refused("620000\t甘肃省\n", "2 fields");
        refused("620000\t\t\n", "no name");
        assert!(Divisions::parse("620000\t甘肃省\t\n620100\t兰州市\t620000\n").is_ok());
    }

    #[test]
    fn codes_of_six_four_and_two_digits() {
        assert_eq!(by_code("620102").unwrap().name, "城关区");
        assert_eq!(by_code("620102").unwrap().level, Level::County);
        assert_eq!(by_code("620102").unwrap().parent, Some("620100"));
        assert_eq!(by_code("62").unwrap().code, "620000");
        assert_eq!(by_code("62").unwrap().level, Level::Province);
        assert_eq!(by_code("6201").unwrap().code, "620100");
        assert_eq!(by_code("6201").unwrap().level, Level::City);
        // A short code names its own level only.
        assert!(by_code("6200").is_none());
        for bad in ["999999", "620199", "62010", "6", "", "62a102", "６２"] {
            assert!(by_code(bad).is_none(), "{bad}");
        }
        assert_eq!(code("620102"), "620102");
        assert_eq!(code("62"), "620000");
        assert_eq!(code(" 6201 "), "620100");
        assert_eq!(code("６２０１０２"), "620102");
    }

    #[test]
    fn names_with_and_without_suffix() {
        assert_eq!(code("兰州市"), "620100");
        assert_eq!(code("兰州"), "620100");
        assert_eq!(code("甘肃"), "620000");
        assert_eq!(code("甘肃省"), "620000");
        assert_eq!(code("平凉"), "620800");
        assert_eq!(code("静宁县"), "620826");
        assert_eq!(code("静宁"), "620826");
        assert_eq!(code("华亭"), "620881");
        assert_eq!(code("锡林郭勒盟"), "152500");
        assert_eq!(code("锡林郭勒"), "152500");
        assert_eq!(code("大兴安岭"), "232700");
        assert_eq!(code("神农架"), "429021");
        assert_eq!(code("浦东新区"), "310115");
        assert_eq!(code("浦东"), "310115");
        assert_eq!(code("碑林"), "610103");
        assert_eq!(code("六枝"), "520203");
        // A one-character stem is no name.
        assert!(matches!(resolve("沛"), Err(PlaceError::Unknown { .. })));
        assert_eq!(code("沛县"), "320322");
    }

    #[test]
    fn autonomous_places_by_their_names() {
        assert_eq!(code("新疆"), "650000");
        assert_eq!(code("新疆维吾尔自治区"), "650000");
        assert_eq!(code("广西"), "450000");
        assert_eq!(code("内蒙古"), "150000");
        assert_eq!(code("宁夏"), "640000");
        assert_eq!(code("西藏"), "540000");
        assert_eq!(code("临夏回族自治州"), "622900");
        assert_eq!(code("临夏州"), "622900");
        assert_eq!(code("积石山"), "622927");
        assert_eq!(code("积石山县"), "622927");
        assert_eq!(code("积石山保安族东乡族撒拉族自治县"), "622927");
        assert_eq!(code("东乡族自治县"), "622926");
        assert_eq!(code("东乡县"), "622926");
        assert_eq!(code("龙胜"), "450328");
        assert_eq!(code("伊犁"), "654000");
        assert_eq!(code("鄂温克族自治旗"), "150724");
        assert_eq!(code("鄂温克旗"), "150724");
        // 东乡 is also 抚州's 东乡区: the path tells them apart.
        assert_eq!(candidates("东乡"), ["361003", "622926"]);
        assert_eq!(code("临夏东乡"), "622926");
        // 临夏 is the prefecture, its city and its county.
        assert_eq!(candidates("临夏"), ["622900", "622901", "622921"]);
        assert_eq!(code("临夏市"), "622901");
        assert_eq!(code("临夏县"), "622921");
    }

    #[test]
    fn paths_with_and_without_separators() {
        assert_eq!(code("甘肃省兰州市城关区"), "620102");
        assert_eq!(code("甘肃 兰州 城关区"), "620102");
        assert_eq!(code("甘肃，兰州，城关区"), "620102");
        assert_eq!(code("甘肃/兰州/城关区"), "620102");
        assert_eq!(code("甘肃兰州"), "620100");
        assert_eq!(code("兰州城关"), "620102");
        assert_eq!(code("兰州市城关区"), "620102");
        assert_eq!(code("甘肃城关区"), "620102");
        assert_eq!(code("平凉 静宁"), "620826");
        assert_eq!(code("济南市中区"), "370103");
        // 吉林 is the province and its city; the suffix or the path tells.
        assert_eq!(code("吉林市"), "220200");
        assert_eq!(code("吉林省"), "220000");
        assert_eq!(code("吉林吉林"), "220200");
        assert_eq!(candidates("吉林"), ["220000", "220200"]);
        // A separator is a boundary: no name runs across it.
        assert!(matches!(resolve("兰 州"), Err(PlaceError::Unknown { .. })));
        // A path goes down; a place outside the one before is refused.
        assert!(matches!(
            resolve("甘肃朝阳区"),
            Err(PlaceError::Unknown { .. })
        ));
        assert!(matches!(
            resolve("城关区兰州"),
            Err(PlaceError::Unknown { .. })
        ));
    }

    #[test]
    fn ambiguous_names_list_every_candidate_and_how_to_narrow() {
        assert_eq!(candidates("朝阳区"), ["110105", "220104"]);
        let e = resolve("朝阳区").unwrap_err().to_string();
        assert!(e.contains("北京市朝阳区 (110105)"), "{e}");
        assert!(e.contains("吉林省长春市朝阳区 (220104)"), "{e}");
        assert!(e.contains("(e.g. 北京市朝阳区), or give its code"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let cities = candidates("城关区");
        assert!(
            cities.len() >= 2 && cities.contains(&"620102".to_owned()),
            "{cities:?}"
        );
        // 朝阳 is also a city and a county in Liaoning.
        assert_eq!(candidates("朝阳"), ["110105", "211300", "211321", "220104"]);
        assert_eq!(code("长春朝阳"), "220104");
    }

    #[test]
    fn unknown_places_are_refused_saying_what_to_type() {
        for text in [
            "999999",
            "620199",
            "6200",
            "62010",
            "火星",
            "甘肃火星",
            "",
            "  ",
        ] {
            let e = resolve(text).unwrap_err();
            assert!(matches!(e, PlaceError::Unknown { .. }), "{text}: {e:?}");
            let e = e.to_string();
            assert!(e.contains("620102") && !e.contains('\n'), "{e}");
        }
        let e = resolve("999999").unwrap_err().to_string();
        assert!(e.starts_with("place code `999999` is not in"), "{e}");
        let e = resolve("火星").unwrap_err().to_string();
        assert!(e.starts_with("no place is called `火星`"), "{e}");
        assert!(resolve("")
            .unwrap_err()
            .to_string()
            .starts_with("no place given"));
    }

    #[test]
    fn municipalities() {
        assert_eq!(code("北京"), "110000");
        assert_eq!(code("北京市"), "110000");
        assert_eq!(code("110000"), "110000");
        assert_eq!(code("11"), "110000");
        assert_eq!(code("北京朝阳"), "110105");
        assert_eq!(code("北京市朝阳区"), "110105");
        assert_eq!(code("北京市市辖区朝阳区"), "110105");
        assert_eq!(code("天津滨海新区"), "120116");
        assert_eq!(code("重庆城口"), "500229");
        assert_eq!(code("1101"), "110100");
        // 市辖区 and 县 alone are no place.
        assert!(matches!(resolve("市辖区"), Err(PlaceError::Unknown { .. })));
        assert!(matches!(resolve("县"), Err(PlaceError::Unknown { .. })));
        assert_eq!(full_name("110105").unwrap(), "北京市朝阳区");
        assert_eq!(full_name("500229").unwrap(), "重庆市城口县");
        assert_eq!(full_name("110100").unwrap(), "北京市市辖区");
        assert_eq!(display("110100"), "北京市市辖区 (110100)");
        assert_eq!(display("500200"), "重庆市县 (500200)");
        assert!(by_code("110100").unwrap().is_grouping());
        assert!(divisions().is_within("110105", "11"));
        assert!(divisions().is_within("110105", "110100"));
    }

    #[test]
    fn counties_directly_under_a_province() {
        assert_eq!(code("仙桃"), "429004");
        assert_eq!(code("仙桃市"), "429004");
        assert_eq!(code("湖北仙桃"), "429004");
        assert_eq!(code("湖北省仙桃市"), "429004");
        assert_eq!(code("4290"), "429000");
        assert_eq!(by_code("429004").unwrap().parent, Some("429000"));
        assert_eq!(full_name("429004").unwrap(), "湖北省仙桃市");
        assert_eq!(full_name("429000").unwrap(), "湖北省省直辖县级行政区划");
        assert_eq!(display("429004"), "仙桃市 (429004)");
        assert_eq!(display("429000"), "湖北省省直辖县级行政区划 (429000)");
        assert_eq!(code("石河子"), "659001");
        assert!(divisions().is_within("429004", "42"));
        assert!(!divisions().is_within("429004", "62"));
    }

    #[test]
    fn names_for_outputs() {
        assert_eq!(full_name("620102").unwrap(), "甘肃省兰州市城关区");
        assert_eq!(full_name("6201").unwrap(), "甘肃省兰州市");
        assert_eq!(full_name("620199"), None);
        assert_eq!(display("620100"), "兰州市 (620100)");
        assert_eq!(display("62"), "甘肃省 (620000)");
        assert_eq!(display("620826"), "静宁县 (620826)");
        // A name others share shows with its parents until it is unique.
        assert_eq!(display("620102"), "兰州市城关区 (620102)");
        assert_eq!(display("110105"), "北京市朝阳区 (110105)");
        assert_eq!(display("370103"), "济南市市中区 (370103)");
        assert_eq!(display("620199"), "620199 (unknown code)");
        assert_eq!(display("999999"), "999999 (unknown code)");
        // Every label is unique.
        let labels: std::collections::HashSet<_> = divisions().labels.iter().collect();
        assert_eq!(labels.len(), divisions().places().len());
    }
}
