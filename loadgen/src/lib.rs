//! gatebench's load generator: scenario files, the open- and closed-loop
//! traffic engine, HDR recording and result files.
//!
//! The engine is being built (see the project's open issues); until it lands
//! this crate has no public items. Its design is fixed in `DESIGN.md` §3–§5.
