//! Wall-clock time as JWTs and Kong's entities count it.

/// Seconds since the Unix epoch, as JWT `exp`/`nbf` and Kong's `created_at` count them.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
