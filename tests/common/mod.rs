#![allow(dead_code)]
pub mod cluster;
pub mod proxy;
pub mod raw;
