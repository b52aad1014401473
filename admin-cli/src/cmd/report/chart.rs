//! The outflow and trend reports as SVG charts (plotters), for a
//! year-end report: members away by destination city as bars, and the
//! year-end counts as a line with the growth formula under it.
//!
//! The labels stay text in the SVG (`<text>`), so they are sharp at any
//! size and searchable; the viewer draws them with the first font of
//! [`FONT`] it has, a list that every system with Chinese fonts matches
//! (Noto/Source Han, WenQuanYi, Microsoft YaHei, PingFang, SimHei). No font
//! is embedded: the file stays small, and plotters needs no font files to
//! lay the chart out (it estimates text widths).

use liaison_proto::v1 as pb;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::render::heading;
use super::Failure;

/// The font-family list the SVG's text elements name.
pub(super) const FONT: &str = "Noto Sans CJK SC, Source Han Sans SC, WenQuanYi Micro Hei, Microsoft YaHei, PingFang SC, SimHei, sans-serif";

/// Bars drawn at most; the other places are summed into one bar.
const BARS_MAX: usize = 12;

const BLUE_BAR: RGBColor = RGBColor(0x2F, 0x6E, 0xBA);
const RED_LINE: RGBColor = RGBColor(0xC0, 0x39, 0x2B);

/// The chart of `r` (the outflow or trend report) as SVG text.
pub(super) fn draw(r: &pb::ReportResponse) -> Result<String, Failure> {
    let result = match r.report.as_str() {
        "outflow" => destinations(r),
        "trend" => years(r),
        other => {
            return Err(Failure::Other(anyhow::anyhow!(
                "report {other} has no chart: --chart is for the outflow and trend reports"
            )))
        }
    };
    result.map_err(|e| Failure::Other(anyhow::anyhow!("cannot draw the chart: {e}")))
}

type Drawn = Result<String, Box<dyn std::error::Error>>;

fn table<'a>(r: &'a pb::ReportResponse, key: &str) -> Option<&'a pb::ReportTable> {
    r.tables.iter().find(|t| t.key == key)
}

fn column(t: &pb::ReportTable, key: &str) -> Option<usize> {
    t.columns.iter().position(|c| c.key == key)
}

fn count_at(row: &pb::ReportRow, idx: usize) -> Option<i64> {
    match row.cells.get(idx)?.value.as_ref()? {
        pb::report_cell::Value::Count(n) => Some(*n),
        pb::report_cell::Value::Number(x) => Some(*x as i64),
        pb::report_cell::Value::Text(_) => None,
    }
}

fn text_at(row: &pb::ReportRow, idx: usize) -> String {
    match row.cells.get(idx).and_then(|c| c.value.as_ref()) {
        Some(pb::report_cell::Value::Text(t)) => t.clone(),
        _ => String::new(),
    }
}

/// Rows naming no city of their own (a municipality's 市辖区, a
/// province's counties under it): shown by their province's name.
const GROUPING: [&str; 4] = [
    "市辖区",
    "县",
    "省直辖县级行政区划",
    "自治区直辖县级行政区划",
];

/// Members away by destination city (a province with no city given, and
/// the unknown destinations, are bars of their own), most first.
pub(super) fn city_bars(r: &pb::ReportResponse) -> Vec<(String, i64)> {
    let Some(t) = table(r, "by_destination") else {
        return Vec::new();
    };
    let (Some(place), Some(members)) = (column(t, "place"), column(t, "members")) else {
        return Vec::new();
    };
    let mut bars: Vec<(String, i64)> = Vec::new();
    let mut province = (String::new(), 0i64, 0i64);
    let flush = |province: &mut (String, i64, i64), bars: &mut Vec<(String, i64)>| {
        // What the province's cities do not account for.
        if province.1 > province.2 {
            bars.push((province.0.clone(), province.1 - province.2));
        }
    };
    for row in &t.rows {
        let name = text_at(row, place);
        let n = count_at(row, members).unwrap_or(0);
        match row.depth {
            0 => {
                flush(&mut province, &mut bars);
                province = (name.split(' ').next().unwrap_or(&name).to_owned(), n, 0);
                if text_at(row, column(t, "code").unwrap_or(0)).is_empty() {
                    // 不掌握流向, or a place written out: a bar of its own.
                    bars.push((province.0.clone(), n));
                    province = (String::new(), 0, 0);
                }
            }
            1 => {
                province.2 += n;
                let label = if GROUPING.contains(&name.as_str()) {
                    province.0.clone()
                } else {
                    name
                };
                bars.push((label, n));
            }
            _ => {}
        }
    }
    flush(&mut province, &mut bars);
    bars.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if bars.len() > BARS_MAX {
        let rest: i64 = bars[BARS_MAX - 1..].iter().map(|(_, n)| n).sum();
        bars.truncate(BARS_MAX - 1);
        bars.push(("其他 others".into(), rest));
    }
    bars
}

fn destinations(r: &pb::ReportResponse) -> Drawn {
    let mut bars = city_bars(r);
    // plotters counts y upwards: the largest bar goes last, on top.
    bars.reverse();
    let n = bars.len().max(1);
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let height = 160 + 36 * n as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, body) = root.split_vertically(56);
        caption(
            &top,
            &heading(r),
            "流出党员去向 Members away by destination city",
        )?;
        let mut chart = ChartBuilder::on(&body)
            .margin_left(16)
            .margin_right(48)
            .margin_bottom(12)
            .x_label_area_size(44)
            .y_label_area_size(170)
            // A range of integers a..b has b - a + 1 values: n segments
            // (two for one bar: a range of one value has no extent).
            .build_cartesian_2d(
                0..(max + max / 8 + 1),
                (0..(n as i32 - 1).max(1)).into_segmented(),
            )?;
        let labels: Vec<String> = bars.iter().map(|(l, _)| l.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .light_line_style(WHITE)
            .x_desc("人数 members")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 15))
            .draw()?;
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let i = i as i32;
            let mut bar = Rectangle::new(
                [
                    (0, SegmentValue::Exact(i)),
                    (*v, SegmentValue::Exact(i + 1)),
                ],
                BLUE_BAR.filled(),
            );
            bar.set_margin(6, 6, 0, 0);
            bar
        }))?;
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            Text::new(
                format!(" {v}"),
                (*v, SegmentValue::CenterOf(i as i32)),
                (FONT, 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            )
        }))?;
        root.present()?;
    }
    Ok(svg)
}

fn years(r: &pb::ReportResponse) -> Drawn {
    let Some(t) = table(r, "by_year") else {
        return Err("the report has no table of years".into());
    };
    let (Some(year), Some(mobile)) = (column(t, "year"), column(t, "mobile")) else {
        return Err("the table of years has no year or count".into());
    };
    let points: Vec<(i32, i64)> = t
        .rows
        .iter()
        .filter_map(|row| Some((count_at(row, year)? as i32, count_at(row, mobile)?)))
        .collect();
    let first = points.first().map_or(2020, |p| p.0);
    let last = points.last().map_or(first, |p| p.0).max(first + 1);
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let notes = &t.notes;
    let mut svg = String::new();
    {
        let height = 520 + 26 * notes.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (960, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, rest) = root.split_vertically(56);
        let (body, bottom) = rest.split_vertically(height - 56 - 26 * notes.len() as u32 - 16);
        caption(
            &top,
            &heading(r),
            "流出党员历年变化 Members away at each year's end",
        )?;
        let mut chart = ChartBuilder::on(&body)
            .margin_left(16)
            .margin_right(40)
            .x_label_area_size(44)
            .y_label_area_size(80)
            // A year's margin on each side, unlabelled, keeps the first and
            // last points and their labels off the axes.
            .build_cartesian_2d((first - 1)..(last + 1), 0..(max + max / 6 + 1))?;
        chart
            .configure_mesh()
            .x_labels((last - first + 3) as usize)
            .x_label_formatter(&|y| {
                if (first..=last).contains(y) {
                    y.to_string()
                } else {
                    String::new()
                }
            })
            .light_line_style(WHITE)
            .x_desc("年份 year")
            .y_desc("流出党员 members away")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 15))
            .draw()?;
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            RED_LINE.stroke_width(3),
        ))?;
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 5, RED_LINE.filled())))?;
        chart.draw_series(points.iter().map(|(y, v)| {
            Text::new(
                v.to_string(),
                (*y, *v),
                (FONT, 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))?;
        for (idx, note) in notes.iter().enumerate() {
            bottom.draw(&Text::new(
                note.clone(),
                (24, 4 + 26 * idx as i32),
                (FONT, 15).into_font().color(&BLACK),
            ))?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn caption(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    heading: &str,
    title: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    area.draw(&Text::new(
        title.to_owned(),
        (24, 8),
        (FONT, 22).into_font().style(FontStyle::Bold).color(&BLACK),
    ))?;
    area.draw(&Text::new(
        heading.to_owned(),
        (24, 36),
        (FONT, 14).into_font().color(&RGBColor(0x59, 0x59, 0x59)),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn the_outflow_chart_is_svg_with_its_chinese_labels_as_text() {
        let svg = draw(&sample()).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let texts: Vec<String> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(str::to_owned))
            .collect();
        for label in [
            "兰州市",
            "西安市",
            "甘肃省",
            "人数 members",
            "流出党员去向 Members away by destination city",
        ] {
            assert!(
                texts.iter().any(|t| t.trim() == label),
                "{label} in {texts:?}"
            );
        }
        let family = doc
            .descendants()
            .find(|n| n.has_tag_name("text"))
            .and_then(|n| n.attribute("font-family"))
            .unwrap();
        assert_eq!(family, FONT);
    }

    /// The sample with `n` cities of `n` members each in one province.
    fn cities(n: usize) -> pb::ReportResponse {
        let mut r = sample();
        let t = &mut r.tables[1];
        t.rows
            .retain(|row| row.depth == 0 && text_at(row, 1) == "620000");
        let cell = |v: pb::report_cell::Value| pb::ReportCell { value: Some(v) };
        t.rows[0].cells[2] = cell(pb::report_cell::Value::Count((n * n) as i64));
        for i in 0..n {
            t.rows.push(pb::ReportRow {
                depth: 1,
                cells: vec![
                    cell(pb::report_cell::Value::Text(format!("城{i}"))),
                    cell(pb::report_cell::Value::Text(format!("62{:02}00", i + 1))),
                    cell(pb::report_cell::Value::Count(n as i64)),
                    cell(pb::report_cell::Value::Number(1.0)),
                ],
            });
        }
        r
    }

    #[test]
    fn charts_draw_any_number_of_bars_and_years() {
        for n in [0, 1, 2, 13] {
            let svg = draw(&cities(n)).unwrap();
            roxmltree::Document::parse(&svg).unwrap();
            if n == 13 {
                assert!(
                    svg.contains("其他 others"),
                    "13 cities: 11 bars and the others"
                );
            }
        }
        for years in [0, 1, 3] {
            let t = |s: &str| pb::ReportCell {
                value: Some(pb::report_cell::Value::Text(s.into())),
            };
            let n = |v: i64| pb::ReportCell {
                value: Some(pb::report_cell::Value::Count(v)),
            };
            let r = pb::ReportResponse {
                report: "trend".into(),
                tables: vec![pb::ReportTable {
                    key: "by_year".into(),
                    columns: ["year", "mobile", "source"]
                        .iter()
                        .map(|k| pb::ReportColumn {
                            key: (*k).into(),
                            ..Default::default()
                        })
                        .collect(),
                    rows: (0..years)
                        .map(|i| pb::ReportRow {
                            cells: vec![n(2012 + i), n(3000 + 500 * i), t("导入")],
                            depth: 0,
                        })
                        .collect(),
                    notes: vec!["复合年增长率 = 10.0%".into()],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let svg = draw(&r).unwrap();
            roxmltree::Document::parse(&svg).unwrap();
        }
    }

    #[test]
    fn city_bars_count_what_the_cities_leave_to_their_province() {
        assert_eq!(
            city_bars(&sample()),
            vec![
                ("兰州市".to_owned(), 2264),
                ("西安市".to_owned(), 990),
                ("甘肃省".to_owned(), 736)
            ]
        );
        assert!(draw(&pb::ReportResponse {
            report: "contact".into(),
            ..Default::default()
        })
        .is_err());
    }
}
