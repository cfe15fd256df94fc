//! Signed playback URLs.
//!
//! HLS players drop authorization headers, so a stream that must not be hot-linked forever
//! carries its credential in the URL: `?exp=<unix seconds>&sig=<HMAC-SHA256>`. The signature
//! binds the track id and the expiry, so one token opens every chunk of one track until it
//! expires, and changing the id, the expiry or the signature invalidates it. Playlists served
//! under a token carry the same token on every URI they list.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use legato_store::TrackId;
use sha2::Sha256;

use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// The secret that signs playback URLs, and how long a signature lasts.
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
    pub ttl: Duration,
    /// Expired tokens are still accepted this long, for clocks that disagree a little.
    pub skew: Duration,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UrlSigner(key redacted, ttl {:?})", self.ttl)
    }
}

/// A token for one track: what goes in the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub exp: u64,
    pub sig: String,
}

impl Token {
    pub fn query(&self) -> String {
        format!("exp={}&sig={}", self.exp, self.sig)
    }
}

impl UrlSigner {
    pub fn new(key: impl Into<Vec<u8>>, ttl: Duration) -> Self {
        Self {
            key: key.into(),
            ttl,
            skew: Duration::from_secs(60),
        }
    }

    fn mac(&self, id: &TrackId, exp: u64) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable_hmac());
        mac.update(format!("{id}:{exp}").as_bytes());
        mac
    }

    pub fn sign_until(&self, id: &TrackId, exp: u64) -> Token {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(id, exp).finalize().into_bytes());
        Token { exp, sig }
    }

    pub fn sign(&self, id: &TrackId) -> Token {
        self.sign_until(id, now_secs().saturating_add(self.ttl.as_secs()))
    }

    /// Checks a token from a request's query: 403 `bad-signature` when it is missing or does
    /// not match, 410 `expired` when it matched but its time is over.
    pub fn verify(
        &self,
        id: &TrackId,
        exp: Option<&str>,
        sig: Option<&str>,
    ) -> Result<Token, ApiError> {
        let (Some(exp_text), Some(sig)) = (exp, sig) else {
            return Err(ApiError::BadSignature(
                "this stream needs a signed URL (exp and sig)",
            ));
        };
        let exp: u64 = exp_text
            .parse()
            .map_err(|_| ApiError::BadSignature("the URL's expiry is not a number"))?;
        let raw = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| ApiError::BadSignature("the URL's signature is not valid"))?;
        // verify_slice compares in constant time.
        self.mac(id, exp)
            .verify_slice(&raw)
            .map_err(|_| ApiError::BadSignature("the URL's signature is not valid"))?;
        if now_secs() > exp.saturating_add(self.skew.as_secs()) {
            return Err(ApiError::Expired);
        }
        Ok(Token {
            exp,
            sig: sig.to_owned(),
        })
    }
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    // Hmac::new_from_slice accepts every key length; keep a total function anyway.
    #[allow(clippy::expect_used)]
    HmacSha256::new_from_slice(b"legato").expect("HMAC accepts any key length")
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Appends the token to every URI of a playlist (segments, variant playlists, init
/// segments), since players resolve them without the playlist's query.
pub fn sign_playlist(playlist: &str, token: &Token) -> String {
    let query = token.query();
    legato_media::playlist::map_uris(playlist, &|uri| {
        format!("{uri}{}{query}", if uri.contains('?') { '&' } else { '?' })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> UrlSigner {
        UrlSigner::new(b"test-key".to_vec(), Duration::from_secs(3600))
    }

    #[test]
    fn a_fresh_token_verifies() {
        let id = TrackId::generate();
        let token = signer().sign(&id);
        let checked = signer()
            .verify(&id, Some(&token.exp.to_string()), Some(&token.sig))
            .unwrap();
        assert_eq!(checked, token);
    }

    #[test]
    fn tampering_with_any_part_is_refused() {
        let id = TrackId::generate();
        let other = TrackId::generate();
        let token = signer().sign(&id);
        let exp = token.exp.to_string();
        let code = |r: Result<Token, ApiError>| r.unwrap_err().code();
        assert_eq!(
            code(signer().verify(&other, Some(&exp), Some(&token.sig))),
            "bad-signature"
        );
        let later = (token.exp + 1).to_string();
        assert_eq!(
            code(signer().verify(&id, Some(&later), Some(&token.sig))),
            "bad-signature"
        );
        let mut flipped = token.sig.clone().into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            code(signer().verify(&id, Some(&exp), Some(&flipped))),
            "bad-signature"
        );
        assert_eq!(
            code(signer().verify(&id, Some(&exp), None)),
            "bad-signature"
        );
        assert_eq!(
            code(signer().verify(&id, None, Some(&token.sig))),
            "bad-signature"
        );
        assert_eq!(
            code(signer().verify(&id, Some("soon"), Some(&token.sig))),
            "bad-signature"
        );
        let other_key = UrlSigner::new(b"other".to_vec(), Duration::from_secs(60));
        assert_eq!(
            code(other_key.verify(&id, Some(&exp), Some(&token.sig))),
            "bad-signature"
        );
    }

    #[test]
    fn expiry_is_enforced_with_tolerated_skew() {
        let id = TrackId::generate();
        let signer = signer();
        let just_expired = signer.sign_until(&id, now_secs() - 10);
        assert!(
            signer
                .verify(
                    &id,
                    Some(&just_expired.exp.to_string()),
                    Some(&just_expired.sig)
                )
                .is_ok()
        );
        let long_expired = signer.sign_until(&id, now_secs() - 3600);
        let err = signer
            .verify(
                &id,
                Some(&long_expired.exp.to_string()),
                Some(&long_expired.sig),
            )
            .unwrap_err();
        assert_eq!(err.code(), "expired");
    }

    #[test]
    fn playlists_carry_the_token_on_every_uri() {
        let token = Token {
            exp: 5,
            sig: "abc".into(),
        };
        let signed = sign_playlist(
            "#EXTM3U\n#EXTINF:10,\nseg000.ts\n\n#EXT-X-ENDLIST\n",
            &token,
        );
        assert_eq!(
            signed,
            "#EXTM3U\n#EXTINF:10,\nseg000.ts?exp=5&sig=abc\n\n#EXT-X-ENDLIST\n"
        );
    }
}
