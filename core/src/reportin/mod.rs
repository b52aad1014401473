//! Report-in (一键报到, docs/reportin.md): the service stations a host runs,
//! and the claims members submit at a station from their phones.
//!
//! A claim stays at the host: it is never sent to a peer. The host's clerk
//! confirms it against a member the host holds under an agreement (the
//! candidates are proposed by certificate number, name, phone and home
//! region); the confirmation writes the host section's report-in date and
//! station and records a contact of channel `report-in`, both of which go
//! to the member's owner through the members' own paths (at the owner, a
//! member out of contact is regained: `members::contact_arrived`). A claim
//! from a region with which this node has no active agreement stays
//! listed as such and cannot be confirmed; a rejected claim is deleted
//! with its personal data after a stated number of days ([`purge_rejected`]).
//!
//! Layout, bottom to top: `stations` (the stations and their public
//! page), `claims` (submitting, listing, confirming, rejecting, purging).

mod claims;
mod stations;

pub use claims::{
    add, claim_list, claim_show, confirm, home_node, purge_rejected, reject, submit, ClaimState,
};
pub use stations::{station_add, station_list, station_page, station_show, StationPage};
