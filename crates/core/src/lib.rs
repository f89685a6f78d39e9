//! mfactl-core: the vocabulary mfactl and its Graph emulator share, and nothing else.
//!
//! Both sides of the socket name the same things: the three managed settings and the registered
//! methods ([`model`]), the JSON Graph sends and takes ([`wire`]), which permission each call
//! needs ([`permissions`]), the national clouds ([`cloud`]), a tenant file's records
//! ([`tenant`], which the emulator reads and `export --as tenant` writes), and how hostile text is shown
//! ([`text`]) and described in JSON Schemas ([`json_schema`]). They live here, below both, so
//! that the emulator never imports the product library and the product library never imports
//! the emulator.
//!
//! It must stay vocabulary: types, tables and pure functions over them. No I/O, no HTTP, no
//! async runtime, no manifest or plan logic.

pub mod cloud;
pub mod json_schema;
pub mod model;
pub mod permissions;
pub mod tenant;
pub mod text;
pub mod wire;

pub use cloud::Cloud;
