//! Weight statistics the lab draws.
