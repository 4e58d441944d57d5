//! Domain: the words of the contract as types, and the rules that need no I/O.
//!
//! - [`time`]: timestamps as the contract prints them.
//! - [`validate`]: newtypes parsed at the edge (`Username::parse`, `RoomName::parse`, …);
//!   once a value has one of these types it obeys the contract's limits.
//! - [`model`]: users, rooms, members and messages as they go over the wire.
//! - [`event`]: room events, each with the room's `seq`.
//! - [`rules`]: who may do what in a room.
//!
//! This module depends on nothing else in the crate (serde and utoipa derives only), so
//! every other layer can use it and tests can call its rules directly.

pub mod event;
pub mod model;
pub mod rules;
pub mod time;
pub mod validate;
