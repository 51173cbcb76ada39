//! HTTP routes.

pub mod analyze;
pub mod files;
pub mod health;
pub mod info;
pub mod master;
pub mod status;
