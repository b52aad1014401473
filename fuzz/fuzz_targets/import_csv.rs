//! Any bytes as a CSV roster of `member import`, new members or an update,
//! at the template node (`liaison_fuzz::template`): the reader and the
//! importer may refuse them, never panic.

#![no_main]

use liaison_core::import;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let template = liaison_fuzz::template();
    let node = template.node();
    let _ = node.store.with(|conn| {
        let tx = conn.transaction()?;
        let _ = import::import_csv(&tx, &template.ctx(), data, false);
        let _ = import::import_csv(&tx, &template.ctx(), data, true);
        Ok(())
    });
});
