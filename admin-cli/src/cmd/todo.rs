//! `liaisonctl todo` (待办): what waits on this node's operators, most
//! urgent first, each line with the command that handles it.

use liaison_proto::v1 as pb;
use liaisonctl::output::{self, Format, Table};
use serde_json::json;

use super::{print_list, Admin, Failure};

pub async fn run(admin: &mut Admin, format: Format) -> Result<(), Failure> {
    let items = admin.todo(pb::TodoRequest {}).await?.into_inner().items;
    print_list(format, "todo", &items, item_json, table);
    if format == Format::Table && items.is_empty() {
        output::note("nothing waits on this node's operators\n");
    }
    Ok(())
}

fn item_json(i: &pb::TodoItem) -> serde_json::Value {
    json!({
        "kind": i.kind, "days_left": i.days_left, "subject": i.subject,
        "detail": i.detail, "command": i.command,
    })
}

/// "in 3 days", "today", "2 days late", or "-" without a deadline.
fn due(days_left: Option<i64>) -> String {
    match days_left {
        None => "-".into(),
        Some(0) => "today".into(),
        Some(1) => "tomorrow".into(),
        Some(d) if d > 0 => format!("in {d} days"),
        Some(-1) => "1 day late".into(),
        Some(d) => format!("{} days late", -d),
    }
}

fn table(items: &[pb::TodoItem]) -> Table {
    let mut table = Table::new(&["DUE", "WHAT", "WHY", "DO"]);
    for i in items {
        table.row(vec![
            due(i.days_left),
            i.subject.clone(),
            i.detail.clone(),
            i.command.clone(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_read_as_days() {
        assert_eq!(due(None), "-");
        assert_eq!(due(Some(0)), "today");
        assert_eq!(due(Some(3)), "in 3 days");
        assert_eq!(due(Some(-2)), "2 days late");
    }
}
