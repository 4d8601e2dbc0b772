//! Where a token goes in the request: the `Authorization` header, another
//! header, a cookie or a query parameter (and the second token of
//! `duplicate`, in the query).

use super::tokens::{Carried, Tokens};
use crate::scenario::Placement;

impl Tokens {
    /// Puts `carried` where `placement` says, as three parts to concatenate
    /// (no allocation: the HTTP/1 writer copies them straight into its
    /// buffer): a header's value, or a query parameter `name=token`. The
    /// second token of `duplicate` goes into the query as `duplicate_param`.
    pub fn place<'a>(&'a self, carried: &'a Carried, put: &mut dyn FnMut(Put<'a>, [&'a str; 3])) {
        let (first, second) = match carried {
            Carried::None => return,
            Carried::One(t) => (t.as_str(), None),
            Carried::Two(a, b) => (a.as_str(), Some(b.as_str())),
        };
        match &self.placement {
            Placement::Bearer => put(
                Put::Header(&http::header::AUTHORIZATION),
                ["Bearer ", first, ""],
            ),
            // Kong's header_names match `Bearer <token>` in any configured header.
            Placement::Header(n) => put(Put::Header(n), ["Bearer ", first, ""]),
            Placement::Cookie(n) => put(Put::Header(&http::header::COOKIE), [n, "=", first]),
            Placement::Query(n) => put(Put::Query, [n, "=", first]),
        }
        if let Some(b) = second {
            put(Put::Query, [&self.duplicate_param, "=", b]);
        }
    }
}

/// Where [`Tokens::place`] puts a token.
#[derive(Debug, Clone, Copy)]
pub enum Put<'a> {
    Header(&'a http::HeaderName),
    Query,
}
