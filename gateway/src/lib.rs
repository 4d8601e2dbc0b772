//! gatebench's reference gateway: a Kong-compatible JWT + ACL reverse proxy
//! with an Admin API, embeddable in-process.
//!
//! Not built yet (see the project's open issues); no public items so far.
