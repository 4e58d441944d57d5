//! Handlers, one file per part of the contract. Each reads its input, calls one service
//! method and shapes the answer; rules live in the service and the domain.

pub mod admin;
pub mod auth;
pub mod messages;
pub mod ops;
pub mod rooms;
