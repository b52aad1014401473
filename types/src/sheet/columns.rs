//! The columns of the spreadsheets operators import and export: the roster
//! of members (DOMAIN §5.2 and §5.4) and the tree of organizations (§5.1),
//! each column with its English name, the Chinese header an office writes,
//! the other headers met in the wild, what it holds, and an example.

/// What a column holds, which decides how a cell is read as text and which
/// drop-down list the template offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// Free text, with the usual values offered as a list (other values
    /// are accepted).
    Suggested(&'static [&'static str]),
    /// One of a few words (or their English forms); the template offers
    /// them as a list.
    Choice(&'static [&'static str]),
    /// A calendar date: `2026-03-01`, `2026/3/1`, `2026年3月1日`,
    /// `20260301`, or a cell formatted as a date.
    Date,
    /// A national ID number: 18 characters, kept as text. A number cell
    /// has lost its last digits (a spreadsheet keeps 15).
    IdNumber,
    /// Digits kept as text (a phone number): a number cell is read without
    /// a decimal point.
    Digits,
    /// An organization of this node: its code, its full name, or both as
    /// exported (`崆峒区农村第一党支部 (pl-kt-01)`).
    Org,
    /// A place: its code, its name, or both as exported
    /// (`兰州市城关区 (620102)`).
    Place,
    /// 是 or 否 (yes or no).
    YesNo,
    /// A member id, as this node exported it.
    MemberId,
}

/// One column of a spreadsheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The English name: the header of `member export --headers en`, and
    /// the name the node knows the field by.
    pub key: &'static str,
    /// The Chinese header, as exported and in the template.
    pub header: &'static str,
    /// Other headers that mean this column.
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    /// Whether a new record needs it.
    pub required: bool,
    /// What goes in it, for the sheet that explains the columns.
    pub note: &'static str,
    /// The template's example.
    pub example: &'static str,
}

impl Column {
    /// Whether a header cell, as typed, names this column: the English
    /// name (any case), the Chinese header or an alias, ignoring spaces
    /// (`姓　名`), a required-mark `*` and a trailing note in brackets
    /// (`出生日期（年-月-日）`).
    pub fn is_named(&self, header: &str) -> bool {
        let header = normal_header(header);
        !header.is_empty()
            && (header == self.key
                || header == normal_header(self.header)
                || self.aliases.iter().any(|a| header == normal_header(a)))
    }
}

/// A header as compared: no spaces or marks, no bracketed note, ASCII in
/// lower case.
fn normal_header(header: &str) -> String {
    let mut text: String = header
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\u{feff}' | '*' | '＊'))
        .collect();
    for (open, close) in [('(', ')'), ('（', '）')] {
        if text.ends_with(close) {
            if let Some(at) = text.rfind(open) {
                if at > 0 {
                    text.truncate(at);
                }
            }
        }
    }
    text.to_ascii_lowercase()
}

pub const GENDERS: [&str; 2] = ["男", "女"];
pub const PARTY_STATUSES: [&str; 2] = ["正式", "预备"];
pub const ORIGINS: [&str; 2] = ["农村", "城镇"];
pub const MEMBERSHIP_STATES: [&str; 3] = ["正常", "停止党籍", "除名"];
pub const YES_NO: [&str; 2] = ["是", "否"];

/// A membership state as stored (`normal`, `suspended`, `removed`) the
/// way the Chinese sheets write it.
pub fn membership_state_label(state: &str) -> &str {
    match state {
        "normal" => "正常",
        "suspended" => "停止党籍",
        "removed" => "除名",
        other => other,
    }
}

/// Education (学历) as offices record it, lowest first.
pub const EDUCATION: [&str; 7] = ["小学", "初中", "高中", "中专", "大专", "大学本科", "研究生"];

/// Person categories of the party statistics (党内统计, DOMAIN §8).
pub const OCCUPATIONS: [&str; 8] = [
    "工人(工勤技能人员)",
    "农牧渔民",
    "专业技术人员",
    "管理人员",
    "党政机关工作人员",
    "学生",
    "其他职业人员",
    "离退休人员",
];

/// Destination unit types of the outflow registration (DOMAIN §5.4).
pub const DIRECTIONS: [&str; 13] = [
    "机关",
    "事业单位",
    "人才服务中心",
    "公有经济控制港澳台商/外商投资企业",
    "民办非企业单位",
    "私营企业",
    "非公有经济控制港澳台商/外商投资企业",
    "个体工商户",
    "城市社区（居委会）",
    "乡镇社区（居委会）",
    "建制村",
    "其他",
    "不掌握流向",
];

const fn column(
    key: &'static str,
    header: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    note: &'static str,
    example: &'static str,
) -> Column {
    Column {
        key,
        header,
        aliases,
        kind,
        required: false,
        note,
        example,
    }
}

const fn required(column: Column) -> Column {
    Column {
        required: true,
        ..column
    }
}

/// The roster (党员信息库): a member's home section and the open outflow
/// registration (流出登记), in export order.
pub const MEMBER_COLUMNS: [Column; 26] = [
    column(
        "member_id",
        "成员编号",
        &["编号"],
        Kind::MemberId,
        "本节点导出时写入，用于更新；新成员留空",
        "",
    ),
    required(column(
        "name",
        "姓名",
        &[],
        Kind::Text,
        "与身份证一致",
        "王宇",
    )),
    required(column(
        "gender",
        "性别",
        &[],
        Kind::Choice(&GENDERS),
        "男 或 女",
        "男",
    )),
    required(column(
        "birth_date",
        "出生日期",
        &["出生年月日"],
        Kind::Date,
        "日期，如 1990-05-17、1990/5/17 或 1990年5月17日",
        "1990-05-17",
    )),
    column("ethnicity", "民族", &[], Kind::Text, "如 汉族", "汉族"),
    column(
        "native_place",
        "籍贯",
        &[],
        Kind::Text,
        "不向其他节点共享",
        "甘肃平凉",
    ),
    column(
        "national_id",
        "公民身份号码",
        &["身份证号", "身份证号码", "公民身份证号码", "身份证"],
        Kind::IdNumber,
        "18位，末位可为X；此列须设为文本格式，否则表格软件会把号码变成数字并丢掉末几位。用于 --update 时匹配已有党员；不向其他节点共享",
        "620802199005170010",
    ),
    column(
        "education",
        "学历",
        &["文化程度"],
        Kind::Suggested(&EDUCATION),
        "如 初中、高中、大专、大学本科",
        "大专",
    ),
    column(
        "occupation",
        "人员类别",
        &["职业"],
        Kind::Suggested(&OCCUPATIONS),
        "党内统计的人员类别",
        "工人(工勤技能人员)",
    ),
    column(
        "origin",
        "城乡",
        &["户籍类别"],
        Kind::Choice(&ORIGINS),
        "农村 或 城镇（户籍）",
        "农村",
    ),
    required(column(
        "party_status",
        "党员类别",
        &["党员身份"],
        Kind::Choice(&PARTY_STATUSES),
        "正式 或 预备",
        "正式",
    )),
    column(
        "joined_on",
        "入党日期",
        &["入党时间"],
        Kind::Date,
        "日期",
        "2012-07-01",
    ),
    column(
        "full_member_on",
        "转正日期",
        &["转正时间"],
        Kind::Date,
        "日期；预备党员留空",
        "2013-07-01",
    ),
    required(column(
        "home_branch",
        "所在支部",
        &["所在党支部", "党支部", "所在党组织"],
        Kind::Org,
        "本节点的党组织：组织代码或全称（org list 列出）",
        "崆峒区农村第一党支部",
    )),
    column(
        "phone",
        "联系电话",
        &["电话", "手机", "手机号码", "联系方式"],
        Kind::Digits,
        "手机或固定电话",
        "13800000000",
    ),
    column(
        "home_address",
        "家庭住址",
        &[],
        Kind::Text,
        "不向其他节点共享",
        "平凉市崆峒区某村",
    ),
    column(
        "membership_state",
        "党籍状态",
        &[],
        Kind::Choice(&MEMBERSHIP_STATES),
        "正常、停止党籍 或 除名；留空为正常",
        "",
    ),
    column(
        "destination_place",
        "去向地",
        &["去向地代码", "流向地", "流向地代码", "流入地"],
        Kind::Place,
        "外出党员的去向：行政区划名称或代码，如 兰州市城关区 或 620102；在家党员留空",
        "兰州市城关区",
    ),
    column(
        "destination_node",
        "服务节点",
        &[],
        Kind::Text,
        "为去向地服务的节点；留空则按去向地自动确定",
        "",
    ),
    column(
        "departed_on",
        "外出日期",
        &["流出日期", "外出时间", "流出时间"],
        Kind::Date,
        "日期；有去向地时必填",
        "2026-03-01",
    ),
    column(
        "expected_return",
        "预计返回日期",
        &[],
        Kind::Date,
        "日期",
        "",
    ),
    column(
        "outflow_reason",
        "外出原因",
        &["流出原因"],
        Kind::Text,
        "如 务工、经商",
        "务工",
    ),
    column(
        "fixed_location",
        "固定地点",
        &["是否固定地点"],
        Kind::YesNo,
        "是 或 否：在外是否有相对固定的居所",
        "否",
    ),
    column(
        "direction",
        "流向单位类型",
        &["流向"],
        Kind::Suggested(&DIRECTIONS),
        "如 私营企业、个体工商户、不掌握流向",
        "私营企业",
    ),
    column(
        "certificate_no",
        "活动证编号",
        &["流动党员活动证编号"],
        Kind::Text,
        "《流动党员活动证》编号",
        "PL-2026-001",
    ),
    column(
        "card_no",
        "联络卡编号",
        &[],
        Kind::Text,
        "流动党员联络卡编号",
        "",
    ),
];

/// The organizations (党组织) of a node, a parent before its children.
pub const ORG_COLUMNS: [Column; 7] = [
    required(column(
        "code",
        "组织代码",
        &["org_id", "代码", "编码"],
        Kind::Text,
        "字母、数字、- 或 _，最长40位",
        "pl-kt-01",
    )),
    required(column(
        "name",
        "组织名称",
        &["名称"],
        Kind::Text,
        "全称，与印章一致",
        "崆峒区农村第一党支部",
    )),
    required(column(
        "level",
        "层级",
        &["组织类别", "类别"],
        Kind::Choice(&["党委", "党总支", "党支部", "临时支部", "流动党员党组织"]),
        "党委、党总支、党支部、临时支部 或 流动党员党组织",
        "党支部",
    )),
    column(
        "parent",
        "上级组织",
        &["parent_org", "上级", "上级党组织"],
        Kind::Org,
        "组织代码或全称；须在本表上方或已在本节点",
        "崆峒区委",
    ),
    column(
        "form",
        "组建方式",
        &[],
        Kind::Choice(&["同企", "同业", "同乡"]),
        "流动党员党组织：同企、同业 或 同乡",
        "",
    ),
    column("contact_person", "联系人", &[], Kind::Text, "", "王建国"),
    column(
        "phone",
        "联系电话",
        &["电话"],
        Kind::Digits,
        "",
        "0933-8211234",
    ),
];

/// The column of `table` whose English name is `key`.
pub fn by_key(table: &'static [Column], key: &str) -> Option<&'static Column> {
    table.iter().find(|c| c.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_named_as_offices_type_them() {
        let name = by_key(&MEMBER_COLUMNS, "name").unwrap();
        for typed in [
            "姓名",
            "姓　名",
            " 姓 名 ",
            "*姓名",
            "姓名*",
            "name",
            "NAME",
            "\u{feff}姓名",
        ] {
            assert!(name.is_named(typed), "{typed}");
        }
        assert!(!name.is_named("姓名拼音"));
        let birth = by_key(&MEMBER_COLUMNS, "birth_date").unwrap();
        assert!(birth.is_named("出生日期（年-月-日）"));
        assert!(birth.is_named("出生日期(yyyy-mm-dd)"));
        assert!(!birth.is_named(""));
        let id = by_key(&MEMBER_COLUMNS, "national_id").unwrap();
        assert!(id.is_named("身份证号码"));
    }

    /// docs/spreadsheets.md lists the columns: the table says what this
    /// one does.
    #[test]
    fn the_documented_columns_are_these() {
        let doc = include_str!("../../../docs/spreadsheets.md");
        let rows: Vec<Vec<&str>> = doc
            .lines()
            .skip_while(|l| !l.starts_with("| Header | English"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
            .collect();
        assert_eq!(rows.len(), MEMBER_COLUMNS.len());
        for (row, column) in rows.iter().zip(&MEMBER_COLUMNS) {
            let aliases: Vec<&str> = match row[3] {
                "" => Vec::new(),
                listed => listed.split(", ").collect(),
            };
            assert_eq!(
                (row[0], row[1], row[2] == "yes", aliases.as_slice()),
                (column.header, column.key, column.required, column.aliases),
                "docs/spreadsheets.md, column {}",
                column.key
            );
        }
    }

    #[test]
    fn no_header_names_two_columns() {
        for table in [&MEMBER_COLUMNS[..], &ORG_COLUMNS[..]] {
            for a in table {
                let names = std::iter::once(a.key)
                    .chain([a.header])
                    .chain(a.aliases.iter().copied());
                for name in names {
                    let named: Vec<&str> = table
                        .iter()
                        .filter(|c| c.is_named(name))
                        .map(|c| c.key)
                        .collect();
                    assert_eq!(named, [a.key], "`{name}`");
                }
            }
        }
    }
}
