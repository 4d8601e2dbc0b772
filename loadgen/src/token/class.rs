//! What each token class is expected to get from a gateway of a profile.

use crate::scenario::{Profile, TokenClass};

impl TokenClass {
    /// The status a gateway of `profile` answers (before any `expect`):
    /// 200 for a token it must accept, 401 for one it must refuse.
    pub fn expected(self, profile: Profile) -> u16 {
        match self {
            // A valid token that is merely large (16 KiB by default): over
            // Kong's 8 KiB header line (nginx's `large_client_header_buffers
            // 4 8k`: 400) and our gateway's same cap (431); accepted by the
            // others unless they cap header sizes (set `expect` then).
            TokenClass::Oversized if profile == Profile::Kong => 400,
            TokenClass::Oversized if profile == Profile::RustGateway => 431,
            TokenClass::Valid | TokenClass::Oversized => 200,
            // AWS reads the Authorization header only: the second token, in
            // the query, goes unseen and the first is valid.
            TokenClass::Duplicate if profile == Profile::AwsHttpApi => 200,
            // Envoy's jwt_authn verifies every token it finds and passes
            // when each is valid: two valid tokens are let through.
            TokenClass::Duplicate if profile == Profile::Envoy => 200,
            _ => 401,
        }
    }

    /// Whether tokens of this class need a signature (and so a key).
    pub(crate) fn signed(self) -> bool {
        !matches!(
            self,
            TokenClass::AlgNone | TokenClass::Malformed | TokenClass::Missing
        )
    }
}
