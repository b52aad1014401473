//! `liaisonctl station`: the service stations (流动党员服务站 / 联络站) this
//! node runs as a host, where members report in (docs/reportin.md), and
//! the QR code each station puts up: it opens the station's report-in page,
//! `{report_in.public_url}/s/{code}`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, dash, json_line, Detail, Format, Table};
use serde_json::json;

use super::{refs, text, Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum StationCommand {
    /// Register a service station of this node; it gets a random code for its QR URL.
    Add {
        /// The station's name, as its sign reads (兰州市平凉籍流动党员服务站).
        #[arg(long)]
        name: String,
        /// The organization of this node that runs it: its code or full name.
        #[arg(long, value_name = "ORG")]
        org: String,
        /// Where it is.
        #[arg(long)]
        address: Option<String>,
        /// When it is open ("周一至周五 9:00-17:00").
        #[arg(long)]
        hours: Option<String>,
        /// Who to ask for there.
        #[arg(long)]
        contact_person: Option<String>,
        /// The contact person's phone.
        #[arg(long)]
        contact_phone: Option<String>,
    },
    /// Every station of this node, with its claims pending and confirmed.
    List,
    /// One station, by its code or name.
    Show {
        #[arg(value_name = "STATION")]
        station: String,
    },
    /// Write a station's QR code, which opens its report-in page: SVG or PNG by the file's extension.
    Qr {
        #[arg(value_name = "STATION")]
        station: String,
        /// The file to write: FILE.svg or FILE.png.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub async fn run(
    admin: &mut Admin,
    format: Format,
    command: StationCommand,
) -> Result<(), Failure> {
    match command {
        StationCommand::Add {
            name,
            org,
            address,
            hours,
            contact_person,
            contact_phone,
        } => {
            let host_org = refs::org(admin, &org, "station.add").await?;
            let station = admin
                .station_add(pb::StationAddRequest {
                    name,
                    address: text(address),
                    hours: text(hours),
                    contact_person: text(contact_person),
                    contact_phone: text(contact_phone),
                    host_org,
                })
                .await?
                .into_inner();
            print_one(format, &station);
        }
        StationCommand::List => {
            let stations = admin
                .station_list(pb::StationListRequest {})
                .await?
                .into_inner()
                .stations;
            super::print_list(format, "station", &stations, station_json, table);
            if format == Format::Table && stations.is_empty() {
                output::note(
                    "no stations: `liaisonctl station add --name NAME --org ORG` adds one\n",
                );
            }
        }
        StationCommand::Show { station } => {
            let station = refs::station(admin, &station, "").await?;
            let station = admin
                .station_show(pb::StationRef { station })
                .await?
                .into_inner();
            print_one(format, &station);
        }
        StationCommand::Qr { station, out } => {
            let kind = QrFile::of(&out)?;
            let station = refs::station(admin, &station, "").await?;
            let station = admin
                .station_show(pb::StationRef { station })
                .await?
                .into_inner();
            if station.url.is_empty() {
                return Err(Failure::Refused(
                    "this node has no report-in page ([report_in] in node.toml, with its public_url): a QR code would open nothing; configure the page first (docs/reportin.md)".into(),
                ));
            }
            let bytes = qr(&station.url, kind).map_err(Failure::Other)?;
            std::fs::write(&out, bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            match format {
                Format::Json => json_line(
                    "station_qr",
                    json!({"code": station.code, "url": station.url, "file": out.display().to_string()}),
                ),
                Format::Table => liaisonctl::outln!(
                    "wrote {}: the QR code of {} opens {}",
                    out.display(),
                    station.name,
                    station.url
                ),
            }
        }
    }
    Ok(())
}

fn print_one(format: Format, station: &pb::StationView) {
    match format {
        Format::Json => json_line("station", station_json(station)),
        Format::Table => output::print_out(&detail(station)),
    }
}

fn station_json(s: &pb::StationView) -> serde_json::Value {
    json!({
        "code": s.code, "name": s.name, "address": s.address, "hours": s.hours,
        "contact_person": s.contact_person, "contact_phone": s.contact_phone,
        "host_org": s.host_org, "host_org_name": s.host_org_name, "state": s.state,
        "url": s.url, "pending": s.pending, "confirmed": s.confirmed,
    })
}

fn org_label(s: &pb::StationView) -> String {
    if s.host_org_name.is_empty() {
        s.host_org.clone()
    } else {
        format!("{} ({})", s.host_org_name, s.host_org)
    }
}

fn table(stations: &[pb::StationView]) -> Table {
    let mut table = Table::new(&["CODE", "NAME", "RUN BY", "STATE", "PENDING", "CONFIRMED"]);
    for s in stations {
        table.row(vec![
            s.code.clone(),
            s.name.clone(),
            org_label(s),
            s.state.clone(),
            s.pending.to_string(),
            s.confirmed.to_string(),
        ]);
    }
    table
}

fn detail(s: &pb::StationView) -> String {
    let mut d = Detail::new();
    d.field("code", &s.code)
        .field("name", &s.name)
        .field("run by", org_label(s))
        .field("address", &s.address)
        .field("hours", &s.hours)
        .field("contact person", &s.contact_person)
        .field("contact phone", &s.contact_phone)
        .field("state", &s.state)
        .field("page", dash(&s.url))
        .field("claims pending", s.pending.to_string())
        .field("claims confirmed", s.confirmed.to_string());
    d.render()
}

/// What a QR code is written as, by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QrFile {
    Svg,
    Png,
}

impl QrFile {
    fn of(path: &Path) -> Result<QrFile, Failure> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("svg") => Ok(QrFile::Svg),
            Some("png") => Ok(QrFile::Png),
            _ => Err(Failure::Other(anyhow::anyhow!(
                "--out {}: name a .svg file (to print at any size) or a .png file",
                path.display()
            ))),
        }
    }
}

/// Pixels per module of a PNG: a version-3 code (29 modules and the quiet
/// zone) comes out about 300 pixels wide, enough for a poster's printer.
const PNG_MODULE_PX: usize = 8;

/// Modules of white around the code, as the QR standard asks.
const QUIET_ZONE: usize = 4;

/// The QR code of `url` as an SVG document or PNG image. Error correction
/// level M (15%): a poster survives some wear.
fn qr(url: &str, kind: QrFile) -> anyhow::Result<Vec<u8>> {
    use qrcode::{EcLevel, QrCode};
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .with_context(|| format!("cannot encode {url} as a QR code"))?;
    match kind {
        QrFile::Svg => Ok(code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(300, 300)
            .quiet_zone(true)
            .build()
            .into_bytes()),
        QrFile::Png => {
            let modules = code.width();
            let colors = code.to_colors();
            let side = (modules + 2 * QUIET_ZONE) * PNG_MODULE_PX;
            let mut pixels = vec![255u8; side * side];
            for (idx, color) in colors.iter().enumerate() {
                if *color != qrcode::Color::Dark {
                    continue;
                }
                let (mx, my) = (idx % modules + QUIET_ZONE, idx / modules + QUIET_ZONE);
                for y in my * PNG_MODULE_PX..(my + 1) * PNG_MODULE_PX {
                    pixels[y * side + mx * PNG_MODULE_PX..y * side + (mx + 1) * PNG_MODULE_PX]
                        .fill(0);
                }
            }
            let side = u32::try_from(side).context("QR code too large")?;
            let mut png = Vec::new();
            let mut encoder = png::Encoder::new(&mut png, side, side);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().context("cannot write the PNG")?;
            writer
                .write_image_data(&pixels)
                .context("cannot write the PNG")?;
            writer.finish().context("cannot write the PNG")?;
            Ok(png)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    const URL: &str = "https://reportin.example.org/s/k7m2p9qa";

    /// Decodes a PNG and reads the QR code in it, as a phone's camera would.
    fn read_png(bytes: &[u8]) -> String {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        let (w, h) = (info.width as usize, info.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code");
        grids[0].decode().expect("a readable code").1
    }

    #[test]
    fn the_png_reads_back_as_the_station_url() {
        let png = qr(URL, QrFile::Png).unwrap();
        assert_eq!(read_png(&png), URL);
    }

    #[test]
    fn the_svg_is_a_document_of_the_same_code() {
        let svg = String::from_utf8(qr(URL, QrFile::Svg).unwrap()).unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        // The same modules as the PNG's code: the path draws each dark one.
        let code = qrcode::QrCode::with_error_correction_level(URL, qrcode::EcLevel::M).unwrap();
        let dark = code
            .to_colors()
            .iter()
            .filter(|c| **c == qrcode::Color::Dark)
            .count();
        let path = doc
            .descendants()
            .find(|n| n.has_tag_name("path"))
            .and_then(|n| n.attribute("d"))
            .expect("a path");
        assert_eq!(
            path.matches('M').count(),
            dark,
            "one square per dark module"
        );
    }

    #[test]
    fn the_file_kind_comes_from_its_extension() {
        assert_eq!(QrFile::of(Path::new("a.SVG")).unwrap(), QrFile::Svg);
        assert_eq!(QrFile::of(Path::new("站点.png")).unwrap(), QrFile::Png);
        assert!(QrFile::of(Path::new("a.jpg")).is_err());
        assert!(QrFile::of(Path::new("qr")).is_err());
    }

    #[test]
    fn station_commands_parse() {
        match parse(&["station", "qr", "兰州站", "--out", "qr.png"]) {
            Command::Station(StationCommand::Qr { station, out }) => {
                assert_eq!(station, "兰州站");
                assert_eq!(out, PathBuf::from("qr.png"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            refused(&["station", "add", "--name", "兰州站"]),
            "--org is required"
        );
        assert!(refused(&["station", "qr", "兰州站"]), "--out is required");
    }
}
