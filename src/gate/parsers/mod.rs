//! Gate output parsers: one line-driven state machine per tool, a dispatcher feeding them, and
//! the shared text helpers, classification and signatures. Pure: no I/O.

mod cargo_test;
mod classify;
pub(crate) mod counts;
pub(crate) mod dispatch;
mod generic;
mod go_test;
mod js_test;
mod junit;
mod lint;
mod pytest;
mod rustc;
pub(crate) mod signature;
pub(crate) mod stream;
pub(crate) mod text;
mod xml;
