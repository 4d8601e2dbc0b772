//! The plugin chain of a matched route, in Kong's order: `jwt` (with its
//! anonymous consumer), our `oidc` authorizer, then `acl`. It yields who the
//! caller is, or the [`Rejection`] that ends the request.

use std::sync::Arc;

use http::Method;

use crate::auth::jwt::{Credential, HeaderSource};
use crate::auth::oidc::Identity;
use crate::consumer::Consumer;
use crate::reject::Rejection;
use crate::snapshot::{Route, Snapshot};

/// Who the plugins authenticated.
#[derive(Debug)]
pub enum Caller {
    /// A credential, which holds its consumer.
    Credential(Arc<Credential>),
    /// The anonymous consumer, with no credential.
    Anonymous(Arc<Consumer>),
}

impl Caller {
    pub fn consumer(&self) -> &Consumer {
        match self {
            Caller::Credential(c) => &c.consumer,
            Caller::Anonymous(c) => c,
        }
    }

    /// The credential that authenticated it; None for the anonymous consumer.
    pub fn credential(&self) -> Option<&Credential> {
        match self {
            Caller::Credential(c) => Some(c),
            Caller::Anonymous(_) => None,
        }
    }
}

/// What the plugins let through, for the headers sent upstream.
#[derive(Debug, Default)]
pub struct Admitted {
    pub caller: Option<Caller>,
    /// `X-Consumer-Groups` (acl).
    pub groups: Option<String>,
    /// Claims mapped to headers (oidc).
    pub identity: Option<Identity>,
}

/// The jwt plugin: the token's consumer, else the anonymous one when configured.
fn jwt(
    route: &Route,
    snap: &Snapshot,
    (method, query, headers): (&Method, Option<&str>, &(impl HeaderSource + ?Sized)),
) -> Result<Option<Caller>, Rejection> {
    let Some(jwt) = &route.jwt else {
        return Ok(None);
    };
    if !jwt.run_on_preflight && method == Method::OPTIONS {
        return Ok(None);
    }
    match crate::auth::jwt::authenticate(
        jwt,
        &snap.credentials,
        query,
        headers,
        crate::clock::unix_now,
    ) {
        Ok(a) => Ok(Some(Caller::Credential(a.credential))),
        Err(reject) => match &jwt.anonymous {
            None => Err(reject),
            Some(anon) => match snap.consumers.get(anon) {
                Some(c) => Ok(Some(Caller::Anonymous(c.clone()))),
                // Kong 3.9.3: authenticate(nil, nil) raises, so the generic 500.
                None => Err(Rejection::AnonymousMissing),
            },
        },
    }
}

/// The acl plugin on who `jwt` let through: `X-Consumer-Groups`.
fn acl(route: &Route, caller: Option<&Caller>) -> Result<Option<String>, Rejection> {
    match &route.acl {
        Some(acl) => {
            let credential = caller.is_some_and(|c| c.credential().is_some());
            acl.check(caller.map(Caller::consumer), credential)
        }
        None => Ok(None),
    }
}

/// Runs the route's plugins on the request head.
pub async fn admit(
    route: &Route,
    snap: &Snapshot,
    parts: &http::request::Parts,
) -> Result<Admitted, Rejection> {
    let caller = jwt(
        route,
        snap,
        (&parts.method, parts.uri.query(), &parts.headers),
    )?;
    let identity = match &route.oidc {
        Some(oidc) => Some(
            oidc.authorize(&parts.headers, crate::clock::unix_now())
                .await?,
        ),
        None => None,
    };
    let groups = acl(route, caller.as_ref())?;
    Ok(Admitted {
        caller,
        groups,
        identity,
    })
}

/// [`admit`] without awaiting, for a route with no `oidc` plugin (the only
/// one that may wait on the network): the lean HTTP/1 path's.
pub fn admit_now(
    route: &Route,
    snap: &Snapshot,
    head: (&Method, Option<&str>, &(impl HeaderSource + ?Sized)),
) -> Result<Admitted, Rejection> {
    debug_assert!(route.oidc.is_none(), "oidc awaits: not for admit_now");
    let caller = jwt(route, snap, head)?;
    let groups = acl(route, caller.as_ref())?;
    Ok(Admitted {
        caller,
        groups,
        identity: None,
    })
}
