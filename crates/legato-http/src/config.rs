/// Settings of the HTTP layer. The binary fills them from flags, environment and secrets.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Target segment duration in seconds.
    pub segment_seconds: f64,
    /// Largest accepted upload (the audio file itself), in bytes.
    pub max_upload_bytes: u64,
    /// `Access-Control-Allow-Origin`: `*` or one origin.
    pub cors_origin: String,
    /// Bytes of segments kept in memory by the streaming function.
    pub cache_bytes: u64,
    /// Path under which the streaming function is reachable from clients; playlist URLs
    /// handed out by crud start with it.
    pub streaming_path: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            segment_seconds: 10.0,
            max_upload_bytes: 512 * 1024 * 1024,
            cors_origin: "*".to_owned(),
            cache_bytes: 256 * 1024 * 1024,
            streaming_path: "/function/streaming".to_owned(),
        }
    }
}
