//! `liaisonctl demo roster`: a synthetic roster of Pingliang's mobile members
//! (流动党员), as the CSV that `member import` reads.
//!
//! Shaped like the figures of the Pingliang study: 7,074 mobile
//! members by default; destinations Lanzhou and Baiyin in the province,
//! Beijing, Tianjin, Yinchuan, Wuzhong, Urumqi and Xi'an outside it; the
//! "four more, four fewer" profile (四多四少: more men, young, low education,
//! rural); hosts' industries mostly construction, commerce and catering. The
//! weights are ours (the study gives no breakdown); every person is invented.
//!
//! The file is a pure function of (count, seed, as-of date): one `StdRng`
//! seeded with the seed draws every value in a fixed order, so the same
//! arguments give the same bytes (with the `rand` version in Cargo.lock).
//! Departure dates are counted back from the as-of date, so that, with no
//! contact recorded yet, the members who left more than six months before
//! show as lost (失联) and those who left three to six months before as
//! overdue.

use std::collections::HashSet;

use chrono::{Datelike, Days, NaiveDate};
use liaison_types::validate::national_id_check_char;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A home branch at Pingliang that holds members' organizational
/// relationship (组织关系): one per county, created by the demo before the
/// import (`org add`).
#[derive(Debug, Clone, Copy)]
pub struct HomeBranch {
    pub org_id: &'static str,
    pub name: &'static str,
    /// The county (区/县/市) and its code, which leads the ID numbers of
    /// the people registered there.
    pub county: &'static str,
    pub county_code: &'static str,
    weight: u32,
}

/// Pingliang's seven counties, weighted roughly by population.
pub const HOME_BRANCHES: [HomeBranch; 7] = [
    HomeBranch {
        org_id: "pl-kongtong",
        name: "崆峒区农村第一党支部",
        county: "崆峒区",
        county_code: "620802",
        weight: 22,
    },
    HomeBranch {
        org_id: "pl-jingning",
        name: "静宁县农村第一党支部",
        county: "静宁县",
        county_code: "620826",
        weight: 20,
    },
    HomeBranch {
        org_id: "pl-zhuanglang",
        name: "庄浪县农村第一党支部",
        county: "庄浪县",
        county_code: "620825",
        weight: 19,
    },
    HomeBranch {
        org_id: "pl-jingchuan",
        name: "泾川县农村第一党支部",
        county: "泾川县",
        county_code: "620821",
        weight: 13,
    },
    HomeBranch {
        org_id: "pl-huating",
        name: "华亭市农村第一党支部",
        county: "华亭市",
        county_code: "620881",
        weight: 10,
    },
    HomeBranch {
        org_id: "pl-lingtai",
        name: "灵台县农村第一党支部",
        county: "灵台县",
        county_code: "620822",
        weight: 10,
    },
    HomeBranch {
        org_id: "pl-chongxin",
        name: "崇信县农村第一党支部",
        county: "崇信县",
        county_code: "620823",
        weight: 6,
    },
];

/// A destination city; members go to one of its county-level places.
#[derive(Debug, Clone, Copy)]
pub struct City {
    pub name: &'static str,
    pub name_zh: &'static str,
    /// The city's own code (e.g. 620100), and the prefix its places share.
    pub code: &'static str,
    pub prefix: &'static str,
    weight: u32,
    places: &'static [&'static str],
}

/// The eight destinations of the study, with our weights (per cent).
pub const DESTINATIONS: [City; 8] = [
    City {
        name: "Lanzhou",
        name_zh: "兰州",
        code: "620100",
        prefix: "6201",
        weight: 32,
        places: &[
            "620102", "620103", "620104", "620105", "620111", "620121", "620122", "620123",
        ],
    },
    City {
        name: "Baiyin",
        name_zh: "白银",
        code: "620400",
        prefix: "6204",
        weight: 9,
        places: &["620402", "620403", "620421", "620422", "620423"],
    },
    City {
        name: "Xi'an",
        name_zh: "西安",
        code: "610100",
        prefix: "6101",
        weight: 14,
        places: &[
            "610102", "610103", "610104", "610111", "610112", "610113", "610114", "610116",
        ],
    },
    City {
        name: "Beijing",
        name_zh: "北京",
        code: "110000",
        prefix: "11",
        weight: 8,
        places: &[
            "110101", "110102", "110105", "110106", "110108", "110112", "110114", "110115",
        ],
    },
    City {
        name: "Tianjin",
        name_zh: "天津",
        code: "120000",
        prefix: "12",
        weight: 6,
        places: &[
            "120101", "120102", "120104", "120110", "120111", "120113", "120116",
        ],
    },
    City {
        name: "Yinchuan",
        name_zh: "银川",
        code: "640100",
        prefix: "6401",
        weight: 13,
        places: &["640104", "640105", "640106", "640121", "640122", "640181"],
    },
    City {
        name: "Wuzhong",
        name_zh: "吴忠",
        code: "640300",
        prefix: "6403",
        weight: 7,
        places: &["640302", "640303", "640323", "640324", "640381"],
    },
    City {
        name: "Urumqi",
        name_zh: "乌鲁木齐",
        code: "650100",
        prefix: "6501",
        weight: 11,
        places: &["650102", "650103", "650104", "650105", "650106", "650109"],
    },
];

/// The city a place code belongs to, if it is one of the destinations.
pub fn city_of(place: &str) -> Option<&'static City> {
    DESTINATIONS.iter().find(|c| place.starts_with(c.prefix))
}

/// The columns written, as `member import` names them (English headers, as
/// `member export` writes them).
const HEADER: [&str; 21] = [
    "name",
    "gender",
    "birth_date",
    "ethnicity",
    "native_place",
    "national_id",
    "education",
    "occupation",
    "origin",
    "party_status",
    "joined_on",
    "full_member_on",
    "home_branch",
    "phone",
    "destination_place",
    "departed_on",
    "outflow_reason",
    "fixed_location",
    "direction",
    "certificate_no",
    "card_no",
];

/// One member of the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub gender: &'static str,
    pub birth_date: NaiveDate,
    pub ethnicity: &'static str,
    pub native_place: String,
    pub national_id: String,
    pub education: &'static str,
    pub occupation: &'static str,
    pub origin: &'static str,
    pub party_status: &'static str,
    pub joined_on: NaiveDate,
    pub full_member_on: Option<NaiveDate>,
    pub home_branch: &'static str,
    pub phone: String,
    pub destination_place: &'static str,
    pub departed_on: NaiveDate,
    pub outflow_reason: &'static str,
    pub fixed_location: bool,
    pub direction: &'static str,
    pub certificate_no: String,
    pub card_no: String,
}

impl Row {
    fn cells(&self) -> [String; 21] {
        [
            self.name.clone(),
            self.gender.into(),
            self.birth_date.to_string(),
            self.ethnicity.into(),
            self.native_place.clone(),
            self.national_id.clone(),
            self.education.into(),
            self.occupation.into(),
            self.origin.into(),
            self.party_status.into(),
            self.joined_on.to_string(),
            self.full_member_on
                .map(|d| d.to_string())
                .unwrap_or_default(),
            self.home_branch.into(),
            self.phone.clone(),
            self.destination_place.into(),
            self.departed_on.to_string(),
            self.outflow_reason.into(),
            if self.fixed_location { "是" } else { "否" }.into(),
            self.direction.into(),
            self.certificate_no.clone(),
            self.card_no.clone(),
        ]
    }
}

/// Days away counted back from the as-of date: with no contact recorded,
/// up to 92 days is "in contact", up to 183 "overdue", beyond "lost"
/// (the node's thresholds); the ranges keep clear of those edges.
const DEPARTURES: [(u32, u64, u64); 3] = [(64, 1, 88), (20, 96, 178), (16, 190, 1460)];

const AGES: [(u32, i32, i32); 7] = [
    (34, 20, 30),
    (21, 31, 35),
    (17, 36, 40),
    (11, 41, 45),
    (8, 46, 50),
    (6, 51, 55),
    (3, 56, 60),
];

const EDUCATION: [(u32, &str); 7] = [
    (6, "小学"),
    (30, "初中"),
    (20, "高中"),
    (12, "中专"),
    (18, "大专"),
    (13, "大学本科"),
    (1, "研究生"),
];

/// 党内统计 occupation categories, students apart.
const OCCUPATIONS: [(u32, &str); 5] = [
    (36, "农牧渔民"),
    (31, "工人(工勤技能人员)"),
    (19, "其他职业人员"),
    (8, "专业技术人员"),
    (6, "管理人员"),
];

/// The kind of unit or trade at the destination (流向单位类型).
const DIRECTIONS: [(u32, &str); 7] = [
    (32, "建筑业"),
    (22, "商贸"),
    (18, "餐饮"),
    (10, "制造业"),
    (8, "运输物流"),
    (5, "家政服务"),
    (5, "其他"),
];

const REASONS: [(u32, &str); 3] = [(72, "务工"), (21, "经商"), (7, "随迁")];

const HAN_SURNAMES: [(u32, &str); 30] = [
    (9, "王"),
    (8, "李"),
    (7, "张"),
    (6, "刘"),
    (5, "杨"),
    (3, "陈"),
    (3, "赵"),
    (3, "马"),
    (2, "朱"),
    (2, "何"),
    (2, "郭"),
    (2, "吴"),
    (2, "周"),
    (2, "徐"),
    (2, "孙"),
    (2, "胡"),
    (2, "高"),
    (2, "梁"),
    (2, "柳"),
    (2, "景"),
    (1, "宋"),
    (1, "郑"),
    (1, "谢"),
    (1, "韩"),
    (1, "唐"),
    (1, "冯"),
    (1, "董"),
    (1, "魏"),
    (1, "苏"),
    (1, "任"),
];

const HUI_SURNAMES: [(u32, &str); 9] = [
    (40, "马"),
    (8, "丁"),
    (6, "海"),
    (5, "穆"),
    (5, "杨"),
    (5, "李"),
    (4, "白"),
    (4, "苏"),
    (3, "哈"),
];

const MALE_CHARS: &[&str] = &[
    "建", "国", "军", "伟", "强", "明", "磊", "涛", "斌", "鹏", "辉", "勇", "杰", "峰", "刚", "平",
    "亮", "华", "文", "宏", "志", "海", "东", "林", "波", "龙", "飞", "鑫", "浩", "宇", "博", "俊",
    "超", "宁", "成", "兵", "虎", "荣", "江", "晓", "学", "忠", "福", "生", "祥", "瑞",
];

const FEMALE_CHARS: &[&str] = &[
    "芳", "娟", "霞", "丽", "敏", "静", "燕", "艳", "红", "梅", "琴", "玲", "婷", "娜", "雪", "莉",
    "萍", "慧", "洁", "丹", "兰", "英", "秀", "晶", "倩", "悦", "瑶", "欣", "怡", "花", "小", "春",
];

const PHONE_PREFIXES: [&str; 16] = [
    "130", "131", "133", "135", "136", "137", "138", "139", "150", "151", "153", "158", "177",
    "180", "181", "189",
];

/// A roster and the counts the demo narrates.
#[derive(Debug, Clone)]
pub struct Roster {
    pub rows: Vec<Row>,
    pub as_of: NaiveDate,
}

impl Roster {
    /// The roster as CSV: a header row, then one row per member; `\n` line
    /// ends, UTF-8 without a byte-order mark.
    pub fn csv(&self) -> String {
        let mut out = String::with_capacity(self.rows.len() * 220);
        out.push_str(&HEADER.join(","));
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row.cells().iter().map(|c| csv_field(c)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// How many members go to each destination city, in [`DESTINATIONS`] order.
    pub fn by_city(&self) -> Vec<(&'static City, usize)> {
        DESTINATIONS
            .iter()
            .map(|city| {
                let n = self
                    .rows
                    .iter()
                    .filter(|r| r.destination_place.starts_with(city.prefix))
                    .count();
                (city, n)
            })
            .collect()
    }

    /// The "four more" shares, in per cent: men, aged 35 or less, education
    /// up to senior secondary (高中/中专), rural household.
    pub fn profile(&self) -> [(&'static str, f64); 4] {
        let n = self.rows.len().max(1) as f64;
        let share = |pred: &dyn Fn(&Row) -> bool| {
            self.rows.iter().filter(|r| pred(r)).count() as f64 * 100.0 / n
        };
        let as_of = self.as_of;
        [
            ("men (男)", share(&|r| r.gender == "男")),
            (
                "aged 35 or less (青年)",
                share(&|r| as_of.years_since(r.birth_date).unwrap_or(0) <= 35),
            ),
            (
                "senior secondary school or less (高中及以下)",
                share(&|r| matches!(r.education, "小学" | "初中" | "高中" | "中专")),
            ),
            ("rural household (农村户籍)", share(&|r| r.origin == "农村")),
        ]
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn pick<'a, T: ?Sized>(rng: &mut StdRng, table: &'a [(u32, &'a T)]) -> &'a T {
    let total: u32 = table.iter().map(|(w, _)| w).sum();
    let mut r = rng.random_range(0..total);
    for (w, item) in table {
        if r < *w {
            return item;
        }
        r -= w;
    }
    table[table.len() - 1].1
}

fn pick_index(rng: &mut StdRng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut r = rng.random_range(0..total);
    for (idx, w) in weights.enumerate() {
        if r < w {
            return idx;
        }
        r -= w;
    }
    0
}

fn chance(rng: &mut StdRng, per_cent: u32) -> bool {
    rng.random_range(0..100) < per_cent
}

fn days_before(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_sub_days(Days::new(days)).unwrap_or(date)
}

fn days_after(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(Days::new(days)).unwrap_or(date)
}

fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    // Days are at most 28, so every (year, month, day) exists.
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default()
}

/// `count` members drawn from `seed`, departure dates counted back from
/// `as_of` (the day of the import, Beijing time).
pub fn generate(count: usize, seed: u64, as_of: NaiveDate) -> Roster {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ids: HashSet<String> = HashSet::with_capacity(count);
    let mut certificate_seq = [0u32; HOME_BRANCHES.len()];
    let mut card_seq = [0u32; HOME_BRANCHES.len()];
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        let branch_idx = pick_index(&mut rng, HOME_BRANCHES.iter().map(|b| b.weight));
        let branch = &HOME_BRANCHES[branch_idx];
        let male = chance(&mut rng, 78);
        let gender = if male { "男" } else { "女" };
        let hui = chance(&mut rng, 9);
        let ethnicity = if hui {
            "回族"
        } else if chance(&mut rng, 1) {
            "满族"
        } else {
            "汉族"
        };
        let surname = pick(
            &mut rng,
            if hui {
                &HUI_SURNAMES[..]
            } else {
                &HAN_SURNAMES[..]
            },
        );
        let chars = if male { MALE_CHARS } else { FEMALE_CHARS };
        let mut name = surname.to_owned();
        let given_len = if chance(&mut rng, 25) { 1 } else { 2 };
        for _ in 0..given_len {
            name.push_str(chars[rng.random_range(0..chars.len())]);
        }

        let &(_, lo, hi) = &AGES[pick_index(&mut rng, AGES.iter().map(|a| a.0))];
        let age = rng.random_range(lo..=hi);
        let birth_date = ymd(
            as_of.year() - age,
            rng.random_range(1..=12),
            rng.random_range(1..=28),
        );
        let national_id = loop {
            let sequence =
                rng.random_range(0..100u32) * 10 + 2 * rng.random_range(0..5u32) + u32::from(male);
            let first17 = format!(
                "{}{}{sequence:03}",
                branch.county_code,
                birth_date.format("%Y%m%d")
            );
            let check = national_id_check_char(&first17).unwrap_or('0');
            let id = format!("{first17}{check}");
            if ids.insert(id.clone()) {
                break id;
            }
        };

        let education = pick(&mut rng, &EDUCATION);
        let student = age <= 24 && chance(&mut rng, 8);
        let occupation = if student {
            "学生"
        } else {
            pick(&mut rng, &OCCUPATIONS)
        };
        let origin = if chance(&mut rng, 72) {
            "农村"
        } else {
            "城镇"
        };

        // Joined at 18 or later; a full member a year after joining.
        let eighteenth = ymd(birth_date.year() + 18, birth_date.month(), birth_date.day());
        let earliest = days_after(eighteenth, 30);
        let latest_full = days_before(as_of, 400);
        let probationary = chance(&mut rng, 4) || earliest > latest_full;
        let (party_status, joined_on, full_member_on) = if probationary {
            let joined = days_before(as_of, rng.random_range(20..=330)).max(earliest);
            ("预备", joined, None)
        } else {
            let max_join_age = (age - 2).clamp(18, 45);
            let join_age = rng.random_range(18..=max_join_age);
            let joined = days_after(
                ymd(
                    birth_date.year() + join_age,
                    birth_date.month(),
                    birth_date.day(),
                ),
                rng.random_range(30..=330),
            )
            .clamp(earliest, latest_full);
            ("正式", joined, Some(days_after(joined, 365)))
        };
        let phone = format!(
            "{}{:08}",
            PHONE_PREFIXES[rng.random_range(0..PHONE_PREFIXES.len())],
            rng.random_range(0..100_000_000u32)
        );

        let city = &DESTINATIONS[pick_index(&mut rng, DESTINATIONS.iter().map(|c| c.weight))];
        let destination_place = city.places[rng.random_range(0..city.places.len())];
        let &(_, lo, hi) = &DEPARTURES[pick_index(&mut rng, DEPARTURES.iter().map(|d| d.0))];
        let away_days = rng.random_range(lo..=hi);
        let departed_on = days_before(as_of, away_days).max(days_after(eighteenth, 1));
        let outflow_reason = if student {
            "求学"
        } else {
            pick(&mut rng, &REASONS)
        };
        let direction = if student {
            "高校"
        } else {
            pick(&mut rng, &DIRECTIONS)
        };
        let fixed_location = chance(&mut rng, 60);
        let county = branch.county_code;
        let certificate_no = if chance(&mut rng, 88) {
            certificate_seq[branch_idx] += 1;
            format!(
                "PL{county}{}{:05}",
                departed_on.year(),
                certificate_seq[branch_idx]
            )
        } else {
            String::new()
        };
        let card_no = if chance(&mut rng, 80) {
            card_seq[branch_idx] += 1;
            format!("LK{county}{:05}", card_seq[branch_idx])
        } else {
            String::new()
        };
        let county_short = branch.county.trim_end_matches(['区', '县', '市']);
        rows.push(Row {
            name,
            gender,
            birth_date,
            ethnicity,
            native_place: format!("甘肃{county_short}"),
            national_id,
            education,
            occupation,
            origin,
            party_status,
            joined_on,
            full_member_on,
            home_branch: branch.org_id,
            phone,
            destination_place,
            departed_on,
            outflow_reason,
            fixed_location,
            direction,
            certificate_no,
            card_no,
        });
    }
    Roster { rows, as_of }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaison_types::validate;

    fn as_of() -> NaiveDate {
        ymd(2026, 11, 25)
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = generate(500, 7, as_of()).csv();
        let b = generate(500, 7, as_of()).csv();
        let c = generate(500, 8, as_of()).csv();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.lines().count(), 501);
        assert!(a.starts_with("name,gender,birth_date,"));
    }

    #[test]
    fn rows_pass_the_nodes_checks() {
        let roster = generate(3000, 1, as_of());
        let mut ids = HashSet::new();
        for row in &roster.rows {
            validate::name(&row.name).unwrap();
            validate::national_id(&row.national_id, row.birth_date).unwrap();
            assert!(ids.insert(row.national_id.clone()), "duplicate ID");
            let eighteenth = ymd(
                row.birth_date.year() + 18,
                row.birth_date.month(),
                row.birth_date.day(),
            );
            assert!(row.joined_on >= eighteenth, "{row:?}");
            assert!(row.joined_on <= as_of());
            assert!(row.departed_on <= as_of() && row.departed_on > row.birth_date);
            if let Some(full) = row.full_member_on {
                assert!(full >= row.joined_on && full <= as_of(), "{row:?}");
            }
            validate::phone(&row.phone).unwrap();
            assert!(city_of(row.destination_place).is_some());
            assert!(row.education.chars().count() <= 20);
            assert!(row.occupation.chars().count() <= 30);
            assert!(row.certificate_no.len() <= 40);
        }
    }

    #[test]
    fn the_profile_is_four_more() {
        let roster = generate(7074, 2018, as_of());
        for (what, share) in roster.profile() {
            assert!(share > 50.0, "{what}: {share:.1}%");
        }
        let by_city = roster.by_city();
        assert_eq!(by_city.iter().map(|(_, n)| n).sum::<usize>(), 7074);
        assert!(by_city.iter().all(|(_, n)| *n > 0));
        // Lanzhou is the largest destination.
        let lanzhou = by_city[0].1;
        assert!(by_city.iter().all(|(_, n)| *n <= lanzhou));
    }

    #[test]
    fn some_members_are_lost_some_overdue_most_in_contact() {
        let roster = generate(2000, 3, as_of());
        let days = |r: &Row| (as_of() - r.departed_on).num_days();
        let lost = roster.rows.iter().filter(|r| days(r) > 183).count();
        let overdue = roster
            .rows
            .iter()
            .filter(|r| (93..=183).contains(&days(r)))
            .count();
        assert!(lost > 100 && overdue > 100 && lost + overdue < 1000);
    }

    #[test]
    fn fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("平凉"), "平凉");
    }
}
