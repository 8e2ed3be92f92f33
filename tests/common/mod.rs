#![allow(dead_code)]
pub mod cache_util;
pub mod cluster;
pub mod proxy;
pub mod raw;
