//! An answer's body, read with a cap. reqwest inflates gzip as it reads, so without one a small
//! compressed answer could fill the memory. Graph's answers and `$batch` answers (the transport)
//! and sign-in answers (`auth`) are all read so.

/// The most bytes of one Graph answer mfactl reads, after decompression: Graph's largest (a page
/// of 999 users) is well under a megabyte.
pub const MAX_ANSWER: usize = 16 << 20;

/// Why an answer's body was not read whole.
pub(super) enum BodyError {
    /// Larger than the cap: reading stopped there.
    TooLarge,
    /// The connection failed while reading it.
    Cut(reqwest::Error),
}

/// The answer's body, decompressed, read a chunk at a time up to `max` bytes.
pub(super) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Cut)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
