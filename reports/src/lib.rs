//! gatebench's result model (`summary.json`, `.hlog`, `.hgrm`), analysis
//! (added latency, compare, merge), charts and Markdown/HTML reports.
//!
//! Not built yet (see the project's open issues); no public items so far.
