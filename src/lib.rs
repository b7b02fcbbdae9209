#![doc = include_str!("../README.md")]

pub use orchflow_core::*;
