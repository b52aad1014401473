//! The member registry: organizations, members' home sections, outflow
//! registrations, host sections, contact events and activities, and the
//! decision of what is shared with whom.
//!
//! Authority (docs/authority.md): the owner writes the home section and the outflow
//! registration; the host writes the host section; each node writes its own
//! contact events and activities. Every function here checks that this node
//! is the authority for what it is asked to write, and appends the events a
//! peer should see in the caller's transaction.
//!
//! Layout, bottom to top (a file uses only those before it in this list;
//! `layer_tests` checks it):
//! - `labels`: records as people name them (member names, basis numbers);
//! - `orgs`, `contacts` (contact events and activities), `host` (host
//!   sections), `outflows`, `copies` (what a host holds), `records` (home
//!   sections, tombstones, freezing): the rows;
//! - `status`: the contact status derived from them; `views`: what
//!   operators see;
//! - `scope`: which members the active agreements cover; `sharing`: what
//!   is shared with whom, and re-evaluating it;
//! - `edits`: the operators' edits, each shared at once.
//!
//! Agreements sit above this module: an activation or an end re-evaluates
//! the shares ([`request_reshare`], [`reshare_after_basis_ended`]), and
//! the sharing decision reads the agreements' rows itself ([`Scope`]).

mod contacts;
mod copies;
mod edits;
mod host;
mod labels;
mod orgs;
mod outflows;
mod records;
mod scope;
mod sharing;
mod status;
mod views;

pub use contacts::{
    activity_list, host_section_basis, host_section_record, save_activity, save_contact,
    writes_host_sections, HostRecords,
};
pub use copies::{
    copy_release, copy_version, delete_copies_with_basis, delete_copy, load_copy, note_copy_epoch,
    save_copy_if_newer, HomeCopy,
};
pub use edits::{
    activity_record, adopt_destinations, contact_arrived, contact_record, contact_status,
    host_section_set, member_add, member_add_checked, member_update, outflow_register,
    outflow_register_checked, outflow_return, outflow_update, refresh_contact_status,
    sweep_contact_status, sweep_contact_status_chunk, FieldDiff, OwnedEdit,
};
pub use host::{
    host_section, host_section_floor, host_sections, raise_host_section_floor, save_host_section,
};
pub use labels::{basis_label, basis_label_sql, member_name_sql};
pub use orgs::{org_add, org_add_checked, org_list};
pub use outflows::{open_outflow, outflow_list};
pub use records::{
    earlier_owners, frozen_by, is_home, letter_of_generation, load_home, load_owned, moved_of,
    note_earlier_owners, save_home_record, HomeRecord, ReleaseRef,
};
pub use scope::Scope;
pub use sharing::{
    request_reshare, reshare_after_basis_ended, reshare_all, reshare_member, reshare_next_chunk,
    reshare_pending, share_again_with, unshare_everywhere, unshare_unless_shared, RESHARE_CHUNK,
};
pub use status::{ContactFacts, ContactState, CONTACT_INTERVAL_DAYS, LOST_AFTER_DAYS};
pub use views::{disclosures, member_list, member_view, NO_LONGER_CO_MANAGED};
