//! Bearer tokens: the generated format, shape checks without a store lookup, and hashing.
//!
//! A generated token is `tg_` + 43 base62 characters (32 random bytes) + 6 base62
//! characters of CRC32 over the random part. The checksum lets the proxy and secret
//! scanners reject a mangled token without a lookup. Tokens supplied by an operator
//! (the spec uses `openssl rand -base64 32`) are accepted when at least 32 characters.
//! Only the SHA-256 hash of a token is ever stored.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The prefix of every generated token.
pub const TOKEN_PREFIX: &str = "tg_";
/// Length of the random part of a generated token.
pub const TOKEN_BODY_CHARS: usize = 43;
/// Length of the checksum part of a generated token.
pub const TOKEN_CHECKSUM_CHARS: usize = 6;
/// Shortest operator-supplied token accepted.
pub const MIN_SUPPLIED_TOKEN_CHARS: usize = 32;
/// Longest token accepted at all.
pub const MAX_TOKEN_CHARS: usize = 512;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A bearer token held in memory. Its `Debug` and `Display` never show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token without checking it; see [`check_token_shape`].
    pub fn new(token: String) -> Self {
        Self(token)
    }
    /// The secret itself, for the one place that must show or hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The SHA-256 hash that the registry stores.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SecretToken(<redacted>)")
    }
}

impl fmt::Display for SecretToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

/// Lowercase hex SHA-256 of a token: the only form of a token that is stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    /// Hashes a token.
    pub fn of(token: &str) -> Self {
        Self(crate::digits::hex(&Sha256::digest(token.as_bytes())))
    }
    /// Wraps a stored hash.
    pub fn from_stored(hex_digest: String) -> Self {
        Self(hex_digest)
    }
    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares in constant time (for checking a presented credential).
    pub fn matches(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

/// What kind of token passed the shape check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenShape {
    /// A `tg_` token whose checksum matches.
    Generated,
    /// An operator-supplied token of acceptable length.
    Supplied,
}

/// Why a token was refused before any lookup. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenShapeError {
    #[error("token is empty")]
    Empty,
    #[error("token is {length} characters; tokens must be at least {MIN_SUPPLIED_TOKEN_CHARS}")]
    TooShort { length: usize },
    #[error("token is longer than {MAX_TOKEN_CHARS} characters")]
    TooLong,
    #[error("token contains whitespace or control characters")]
    BadCharacters,
    #[error(
        "token has the tg_ prefix but its checksum does not match; it was mangled in transit or copy"
    )]
    BadChecksum,
}

/// Encodes bytes as base62 with a fixed width (leading zeros padded with '0').
pub fn base62_fixed(bytes: &[u8], width: usize) -> String {
    let mut digits = Vec::with_capacity(width);
    let mut number: Vec<u8> = bytes.to_vec();
    while number.iter().any(|byte| *byte != 0) {
        let mut remainder: u32 = 0;
        for byte in number.iter_mut() {
            let accumulator = (remainder << 8) | u32::from(*byte);
            *byte = u8::try_from(accumulator / 62).unwrap_or(0);
            remainder = accumulator % 62;
        }
        digits.push(BASE62[remainder as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

fn checksum_of(body: &str) -> String {
    String::from_utf8_lossy(&checksum_digits(body)).into_owned()
}

/// A token body's checksum: its CRC-32 in base62, [`TOKEN_CHECKSUM_CHARS`] digits (which
/// hold any `u32`), written on the stack: every call checks it.
fn checksum_digits(body: &str) -> [u8; TOKEN_CHECKSUM_CHARS] {
    let mut value = crc32fast::hash(body.as_bytes());
    let mut digits = [b'0'; TOKEN_CHECKSUM_CHARS];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits
}

/// Formats a generated token from 32 random bytes (the caller supplies the randomness).
pub fn format_generated_token(random_bytes: &[u8; 32]) -> SecretToken {
    let body = base62_fixed(random_bytes, TOKEN_BODY_CHARS);
    let checksum = checksum_of(&body);
    SecretToken(format!("{TOKEN_PREFIX}{body}{checksum}"))
}

/// Formats a short public key id (`key_` + 12 base62 characters) from 9 random bytes.
pub fn format_key_id(random_bytes: &[u8; 9]) -> String {
    format!("key_{}", base62_fixed(random_bytes, 12))
}

/// Checks a token's shape without any lookup.
pub fn check_token_shape(token: &str) -> Result<TokenShape, TokenShapeError> {
    if token.is_empty() {
        return Err(TokenShapeError::Empty);
    }
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenShapeError::TooLong);
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenShapeError::BadCharacters);
    }
    if let Some(rest) = token.strip_prefix(TOKEN_PREFIX)
        && rest.len() == TOKEN_BODY_CHARS + TOKEN_CHECKSUM_CHARS
        && rest.bytes().all(|byte| byte.is_ascii_alphanumeric())
    {
        let (body, checksum) = rest.split_at(TOKEN_BODY_CHARS);
        if checksum_digits(body) == checksum.as_bytes() {
            return Ok(TokenShape::Generated);
        }
        return Err(TokenShapeError::BadChecksum);
    }
    let length = token.chars().count();
    if length < MIN_SUPPLIED_TOKEN_CHARS {
        return Err(TokenShapeError::TooShort { length });
    }
    Ok(TokenShape::Supplied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_checksum_on_the_stack_is_the_base62_of_the_crc(body in "[A-Za-z0-9]{0,60}") {
            let expected = base62_fixed(
                &crc32fast::hash(body.as_bytes()).to_be_bytes(),
                TOKEN_CHECKSUM_CHARS,
            );
            let digits = checksum_digits(&body);
            prop_assert_eq!(digits.as_slice(), expected.as_bytes());
        }
    }

    #[test]
    fn the_largest_crc_fits_the_checksum_width() {
        assert_eq!(
            base62_fixed(&u32::MAX.to_be_bytes(), TOKEN_CHECKSUM_CHARS).len(),
            TOKEN_CHECKSUM_CHARS
        );
    }

    #[test]
    fn generated_tokens_pass_the_shape_check() {
        let token = format_generated_token(&[7u8; 32]);
        assert!(token.expose().starts_with("tg_"));
        assert_eq!(
            token.expose().len(),
            3 + TOKEN_BODY_CHARS + TOKEN_CHECKSUM_CHARS
        );
        assert_eq!(check_token_shape(token.expose()), Ok(TokenShape::Generated));
    }

    #[test]
    fn a_mangled_generated_token_fails_its_checksum() {
        let token = format_generated_token(&[42u8; 32]);
        let mut mangled = token.expose().to_owned().into_bytes();
        mangled[10] = if mangled[10] == b'a' { b'b' } else { b'a' };
        let mangled = String::from_utf8(mangled).unwrap();
        assert_eq!(
            check_token_shape(&mangled),
            Err(TokenShapeError::BadChecksum)
        );
    }

    #[test]
    fn supplied_tokens_need_32_characters() {
        // The spec's `openssl rand -base64 32` gives 44 characters.
        assert_eq!(
            check_token_shape("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ0A=="),
            Ok(TokenShape::Supplied)
        );
        assert_eq!(
            check_token_shape("short"),
            Err(TokenShapeError::TooShort { length: 5 })
        );
        assert_eq!(check_token_shape(""), Err(TokenShapeError::Empty));
        assert_eq!(
            check_token_shape("a b c d e f g h i j k l m n o p q r s"),
            Err(TokenShapeError::BadCharacters)
        );
        assert_eq!(
            check_token_shape(&"x".repeat(600)),
            Err(TokenShapeError::TooLong)
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_display() {
        let token = format_generated_token(&[1u8; 32]);
        assert!(!format!("{token:?}").contains(token.expose()));
        assert!(!format!("{token}").contains(token.expose()));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            TokenHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn base62_is_fixed_width() {
        assert_eq!(base62_fixed(&[0, 0], 4), "0000");
        assert_eq!(base62_fixed(&[0, 61], 2), "0z");
        assert_eq!(base62_fixed(&[0, 62], 2), "10");
    }

    proptest! {
        #[test]
        fn every_generated_token_checks(bytes in proptest::array::uniform32(any::<u8>())) {
            let token = format_generated_token(&bytes);
            prop_assert_eq!(check_token_shape(token.expose()), Ok(TokenShape::Generated));
        }

        #[test]
        fn shape_check_never_panics(text in ".{0,80}") {
            let _ = check_token_shape(&text);
        }
    }
}
