//! A consumer as the request path sees it: identity, ACL groups and the
//! `X-Consumer-*` headers, built once per configuration.

use std::sync::Arc;

/// A consumer as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: String,
    pub username: Option<String>,
    pub custom_id: Option<String>,
    /// ACL groups, in configuration order.
    pub groups: Vec<String>,
    /// `X-Consumer-ID`, `-Custom-ID` and `-Username`, built once.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl Consumer {
    pub fn new(
        id: String,
        username: Option<String>,
        custom_id: Option<String>,
        groups: Vec<String>,
    ) -> Consumer {
        let mut headers = Vec::new();
        let mut add = |name: &'static str, v: &str| {
            if let Ok(v) = http::HeaderValue::from_str(v) {
                headers.push((http::HeaderName::from_static(name), v));
            }
        };
        add("x-consumer-id", &id);
        if let Some(c) = &custom_id {
            add("x-consumer-custom-id", c);
        }
        if let Some(u) = &username {
            add("x-consumer-username", u);
        }
        Consumer {
            id,
            username,
            custom_id,
            groups,
            headers,
        }
    }
}

/// Consumers by id and by username (sharded like the credentials).
pub type Consumers = crate::shards::ShardedMap<Arc<Consumer>>;
