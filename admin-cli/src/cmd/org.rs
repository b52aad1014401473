//! `liaisonctl org`: organizations of this node (党组织): committees,
//! general branches, branches, temporary and mobile-member branches.

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{dash, Format, Table};
use serde_json::json;

use super::refs;
use super::{print_list, text, Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Add an organization.
    Add(OrgAddArgs),
    /// List the organizations.
    List,
}

#[derive(Debug, clap::Args)]
pub struct OrgAddArgs {
    /// A short id, used by --home-branch, --parent, --branch.
    org_id: String,
    /// Full name, as on the seal.
    #[arg(long)]
    name: String,
    /// 党委, 党总支, 党支部, 临时支部 or 流动党员党组织 (committee, general-branch,
    /// branch, temporary-branch, mobile-branch).
    #[arg(long)]
    level: String,
    /// How a mobile-member branch is formed: same employer, trade or hometown.
    #[arg(long, value_parser = ["同企", "同业", "同乡"])]
    form: Option<String>,
    /// The parent organization: its code or full name.
    #[arg(long)]
    parent: Option<String>,
    /// The organization's contact person (联系人).
    #[arg(long)]
    contact_person: Option<String>,
    #[arg(long)]
    phone: Option<String>,
}

impl OrgAddArgs {
    fn request(self) -> pb::Org {
        pb::Org {
            org_id: self.org_id,
            name: self.name,
            level: self.level,
            form: text(self.form),
            parent_org: text(self.parent),
            contact_person: text(self.contact_person),
            phone: text(self.phone),
        }
    }
}

pub async fn run(admin: &mut Admin, format: Format, command: OrgCommand) -> Result<(), Failure> {
    let orgs = match command {
        OrgCommand::Add(mut args) => {
            if let Some(parent) = &args.parent {
                args.parent = Some(refs::org(admin, parent, "org.add").await?);
            }
            vec![admin.org_add(args.request()).await?.into_inner()]
        }
        OrgCommand::List => {
            admin
                .org_list(pb::OrgListRequest {})
                .await?
                .into_inner()
                .orgs
        }
    };
    print_list(format, "org", &orgs, org_json, org_table);
    Ok(())
}

fn org_json(o: &pb::Org) -> serde_json::Value {
    json!({
        "org_id": o.org_id, "name": o.name, "level": o.level, "form": o.form,
        "parent_org": o.parent_org, "contact_person": o.contact_person, "phone": o.phone,
    })
}

fn org_table(orgs: &[pb::Org]) -> Table {
    let mut table = Table::new(&["ID", "NAME", "LEVEL", "FORM", "PARENT", "CONTACT", "PHONE"]);
    for o in orgs {
        table.row(vec![
            o.org_id.clone(),
            dash(&o.name),
            dash(&o.level),
            dash(&o.form),
            dash(&o.parent_org),
            dash(&o.contact_person),
            dash(&o.phone),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn add(args: &[&str]) -> pb::Org {
        let argv: Vec<&str> = ["org", "add"].iter().chain(args).copied().collect();
        match parse(&argv) {
            Command::Org(OrgCommand::Add(args)) => args.request(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn add_maps_flags_to_the_org() {
        let org = add(&[
            "pl-lz-01",
            "--name",
            "中共平凉市驻兰州流动党员党支部",
            "--level",
            "流动党员党组织",
            "--form",
            "同乡",
            "--parent",
            "pl-kt",
            "--contact-person",
            "李四",
            "--phone",
            "13800000000",
        ]);
        assert_eq!(
            org,
            pb::Org {
                org_id: "pl-lz-01".into(),
                name: "中共平凉市驻兰州流动党员党支部".into(),
                level: "流动党员党组织".into(),
                form: "同乡".into(),
                parent_org: "pl-kt".into(),
                contact_person: "李四".into(),
                phone: "13800000000".into(),
            }
        );
        let bare = add(&["pl-kt", "--name", "崆峒区委", "--level", "党委"]);
        assert_eq!(bare.form, "");
        assert_eq!(bare.parent_org, "");
    }

    #[test]
    fn add_needs_name_and_level_and_a_known_form() {
        assert!(refused(&["org", "add", "x", "--name", "n"]));
        assert!(refused(&["org", "add", "x", "--level", "党支部"]));
        assert!(refused(&[
            "org",
            "add",
            "x",
            "--name",
            "n",
            "--level",
            "党支部",
            "--form",
            "同村"
        ]));
    }

    #[test]
    fn list_shows_dashes_for_empty_fields() {
        let org = pb::Org {
            org_id: "pl-kt".into(),
            name: "崆峒区委".into(),
            level: "党委".into(),
            ..Default::default()
        };
        let text = org_table(std::slice::from_ref(&org)).render();
        assert_eq!(
            text.lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["pl-kt", "崆峒区委", "党委", "-", "-", "-", "-"]
        );
        let value = org_json(&org);
        assert_eq!(value["org_id"], "pl-kt");
        assert_eq!(value["parent_org"], "");
    }
}
