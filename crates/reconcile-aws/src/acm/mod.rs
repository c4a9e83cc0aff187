//! ACM: public certificates validated through DNS.

pub mod certificate;
