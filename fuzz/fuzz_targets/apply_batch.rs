//! Any bytes, decoded as a peer's `PullBatch` as the pull client decodes
//! it, applied at the template node (`liaison_fuzz::template`) from Lanzhou
//! or Xi'an: neither the decoding nor `apply_batch` may panic.

#![no_main]

use liaison_core::apply::apply_batch;
use liaison_proto::v1 as pb;
use liaison_types::identity::NodeId;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(batch) = pb::PullBatch::decode(rest) else {
        return;
    };
    let template = liaison_fuzz::template();
    let node = template.node();
    let origin = NodeId::parse(["lanzhou", "xian"][usize::from(pick % 2)]).expect("a node id");
    let _ = node.store.with(|conn| {
        Ok(apply_batch(
            conn,
            &template.ctx(),
            &origin,
            &batch.log_id,
            &batch.events,
        ))
    });
});
