//! Who is asking: the Subsonic sign-ins (token and salt, legacy password, OpenSubsonic API
//! key), the server key that seals passwords, and a bound on failed sign-ins per client.
//!
//! Token sign-in sends `md5(password + salt)`, so the server must be able to recover each
//! password: it is kept sealed (XChaCha20-Poly1305) under a key that lives in a file apart
//! from the store, never in clear text. API keys are stored as their SHA-256 only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use legato_store::{DynStore, StoreError, User};
use md5::{Digest as _, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::error::SubsonicError;
use super::params::Params;
use crate::secret_key::SecretKey;

/// A new API key (shown once) and the hash the store keeps.
pub fn new_user_key() -> (String, String) {
    let key = format!("lgs_{}", hex::encode(rand::random::<[u8; 24]>()));
    let hash = hash_user_key(&key);
    (key, hash)
}

pub fn hash_user_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// What a user name and password must look like (checked when adding users).
pub fn check_new_user(name: &str, password: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err("a user name is 1 to 64 characters, without control characters".into());
    }
    if password.chars().count() < 4 || password.len() > 1024 {
        return Err("a password is 4 to 1024 characters long".into());
    }
    Ok(())
}

/// Failed sign-ins, counted per account and per client address: a bucket of failures per
/// key, refilled over time. A sign-in whose account or address has an empty bucket is refused
/// without its credentials being checked (so a guess that happens to be right teaches the
/// guesser nothing), with error 0 and a message saying why, never code 40 ("wrong username or
/// password"), which apps show as a wrong password. An account allows fewer failures than an
/// address, where a household's devices share one public address: a device retrying a stale
/// password stops its own account, not the others'.
pub struct FailureLimiter {
    buckets: Mutex<HashMap<Who, (f64, Instant)>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Who {
    Account(String),
    Address(IpAddr),
}

impl Who {
    /// (failures allowed at once, time for one more)
    fn budget(&self) -> (f64, Duration) {
        match self {
            Who::Account(_) => (ACCOUNT_BURST, ACCOUNT_REFILL),
            Who::Address(_) => (ADDRESS_BURST, ADDRESS_REFILL),
        }
    }
}

const ACCOUNT_BURST: f64 = 10.0;
const ACCOUNT_REFILL: Duration = Duration::from_secs(6);
const ADDRESS_BURST: f64 = 30.0;
const ADDRESS_REFILL: Duration = Duration::from_secs(2);

/// Why a sign-in is refused before its credentials are checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Blocked {
    /// Seconds until one more attempt is allowed.
    pub wait: u64,
    /// `true` for the account, `false` for the address.
    pub account: bool,
}

impl FailureLimiter {
    pub fn new() -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn level(who: &Who, bucket: (f64, Instant), now: Instant) -> f64 {
        let (burst, refill) = who.budget();
        (bucket.0 + now.duration_since(bucket.1).as_secs_f64() / refill.as_secs_f64()).min(burst)
    }

    fn keys(client: IpAddr, account: Option<&str>) -> Vec<Who> {
        let mut keys = vec![Who::Address(client)];
        keys.extend(account.map(|name| Who::Account(name.to_owned())));
        keys
    }

    /// Whether a sign-in from `client` as `account` must wait, and how long.
    pub fn blocked(&self, client: IpAddr, account: Option<&str>) -> Option<Blocked> {
        let buckets = self.buckets.lock().ok()?;
        let now = Instant::now();
        Self::keys(client, account)
            .into_iter()
            .filter_map(|who| {
                let level = Self::level(&who, *buckets.get(&who)?, now);
                let refill = who.budget().1.as_secs_f64();
                (level < 1.0).then(|| Blocked {
                    wait: ((1.0 - level) * refill).ceil() as u64,
                    account: matches!(who, Who::Account(_)),
                })
            })
            .max_by_key(|blocked| blocked.wait)
    }

    pub fn failed(&self, client: IpAddr, account: Option<&str>) {
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        let now = Instant::now();
        if buckets.len() > 100_000 {
            // Forget full buckets rather than grow without bound under a spray of names.
            buckets.retain(|who, b| Self::level(who, *b, now) < who.budget().0);
        }
        for who in Self::keys(client, account) {
            let burst = who.budget().0;
            let bucket = *buckets.entry(who.clone()).or_insert((burst, now));
            let level = Self::level(&who, bucket, now);
            buckets.insert(who, ((level - 1.0).max(0.0), now));
        }
    }
}

fn wrong_credentials() -> SubsonicError {
    SubsonicError::new(40, "Wrong username or password.")
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The user a request signs in as.
pub async fn authenticate(
    store: &DynStore,
    secret: &SecretKey,
    limiter: &FailureLimiter,
    client: IpAddr,
    params: &Params,
) -> Result<User, SubsonicError> {
    let account = params.get("u");
    if let Some(Blocked { wait, account }) = limiter.blocked(client, account) {
        let whose = if account {
            "for this account"
        } else {
            "from this address"
        };
        return Err(SubsonicError::new(
            0,
            format!(
                "Too many failed sign-ins {whose}: try again in {wait} s (the password was \
                 not checked)."
            ),
        ));
    }
    let result = check(store, secret, params).await;
    if let Err(error) = &result
        && matches!(error.code, 40 | 44)
    {
        limiter.failed(client, account);
    }
    result
}

async fn check(
    store: &DynStore,
    secret: &SecretKey,
    params: &Params,
) -> Result<User, SubsonicError> {
    if let Some(key) = params.get("apiKey") {
        if params.get("u").is_some() {
            return Err(SubsonicError::new(
                43,
                "Use either apiKey or u (with t and s, or p), not both.",
            ));
        }
        let found = store.find_user_key(&hash_user_key(key)).await?;
        let Some(found) = found else {
            return Err(SubsonicError::new(44, "Invalid API key."));
        };
        return match store.get_user(&found.user).await {
            Ok(user) => Ok(user),
            Err(StoreError::NotFound(_)) => Err(SubsonicError::new(44, "Invalid API key.")),
            Err(e) => Err(e.into()),
        };
    }
    let name = params.required("u")?;
    let (user, password) = user_and_password(store, secret, name).await?;
    if let (Some(token), Some(salt)) = (params.get("t"), params.get("s")) {
        let expected = hex::encode(Md5::digest(format!("{password}{salt}").as_bytes()));
        if salt.len() < 6 || !equal(expected.as_bytes(), token.to_ascii_lowercase().as_bytes()) {
            return Err(wrong_credentials());
        }
        return Ok(user);
    }
    if let Some(given) = params.get("p") {
        let given = match given.strip_prefix("enc:") {
            Some(encoded) => decode_hex(encoded).ok_or_else(wrong_credentials)?,
            None => given.as_bytes().to_vec(),
        };
        if !equal(&given, password.as_bytes()) {
            return Err(wrong_credentials());
        }
        return Ok(user);
    }
    Err(SubsonicError::new(
        10,
        "Required parameter is missing: t and s (or p, or apiKey).",
    ))
}

/// The user `name` and their password, opened; error 40 when there is no such user.
async fn user_and_password(
    store: &DynStore,
    secret: &SecretKey,
    name: &str,
) -> Result<(User, String), SubsonicError> {
    let user = match store.get_user(name).await {
        Ok(user) => user,
        Err(StoreError::NotFound(_)) => return Err(wrong_credentials()),
        Err(e) => return Err(e.into()),
    };
    let Some(password) = secret.open(&user.sealed_password) else {
        tracing::warn!(
            user = %user.name,
            "a stored password cannot be opened with this server's secret key"
        );
        return Err(wrong_credentials());
    };
    Ok((user, password))
}

/// The web player's sign-in: `name` with its password in clear (sent over the page's own
/// connection, as a Subsonic app's `p` is); error 40 when either is wrong.
pub async fn check_password(
    store: &DynStore,
    secret: &SecretKey,
    name: &str,
    given: &str,
) -> Result<User, SubsonicError> {
    let (user, password) = user_and_password(store, secret, name).await?;
    if equal(given.as_bytes(), password.as_bytes()) {
        Ok(user)
    } else {
        Err(wrong_credentials())
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_open_only_with_their_key() {
        let key = SecretKey::from_bytes([7; 32]);
        let sealed = key.seal("sesame");
        assert_eq!(key.open(&sealed).as_deref(), Some("sesame"));
        assert_ne!(key.seal("sesame"), sealed, "a fresh nonce each time");
        assert!(!sealed.windows(6).any(|w| w == b"sesame"));
        assert_eq!(SecretKey::from_bytes([8; 32]).open(&sealed), None);
        assert_eq!(key.open(b"short"), None);
    }

    #[test]
    fn key_files_are_made_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/secret.key");
        let made = SecretKey::load_or_create(&path).expect("made");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = SecretKey::load_or_create(&path).expect("read");
        assert_eq!(read.open(&made.seal("x1234")).as_deref(), Some("x1234"));
        std::fs::write(&path, "not a key").expect("write");
        assert!(SecretKey::load_or_create(&path).is_err());
    }

    #[test]
    fn failures_are_bounded_per_account_and_per_address() {
        let limiter = FailureLimiter::new();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        // An account: ten failures, from anywhere.
        for i in 0..10 {
            let from = if i % 2 == 0 { a } else { b };
            assert_eq!(limiter.blocked(from, Some("ana")), None);
            limiter.failed(from, Some("ana"));
        }
        let blocked = limiter.blocked([10, 0, 0, 9].into(), Some("ana")).unwrap();
        assert!(blocked.account && blocked.wait >= 1, "{blocked:?}");
        // Another account on those addresses is not held back by it.
        assert_eq!(limiter.blocked(a, Some("bob")), None);
        // An address: thirty failures, whatever the names.
        for i in 0..25 {
            limiter.failed(a, Some(&format!("guess{i}")));
        }
        let blocked = limiter.blocked(a, Some("carol")).unwrap();
        assert!(!blocked.account, "{blocked:?}");
        assert_eq!(limiter.blocked(b, Some("carol")), None);
    }

    #[test]
    fn enc_passwords_are_hex() {
        assert_eq!(decode_hex("736573616d65").as_deref(), Some(&b"sesame"[..]));
        assert_eq!(decode_hex("7"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
