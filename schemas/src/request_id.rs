//! A request id as the usage event carries it: text, kept as its UUID when it is a UUID's
//! lowercase hyphenated form.
//!
//! Both of an event's request ids are nearly always UUIDs: Tollgate's own is the event id
//! (`x-amzn-requestid` on the answer), Bedrock's is one too. Kept as 16 bytes, an id costs
//! no allocation when a consumer decodes it (the binary form carries it so, see
//! `usage_event_binary`) and its text is written straight into a Parquet page. Any other
//! text is kept as it is.
//!
//! One id, one form: a text that is a UUID's lowercase hyphenated form always becomes the
//! UUID (uppercase or unhyphenated text stays text, as it must be written back as given),
//! so two ids are equal exactly when their texts are, and hash alike.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

/// A request id (see the module's documentation).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Form);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Form {
    Uuid(Uuid),
    Text(String),
}

impl RequestId {
    /// The id whose text is `id`'s lowercase hyphenated form.
    pub fn of_uuid(id: Uuid) -> Self {
        Self(Form::Uuid(id))
    }

    /// The UUID whose lowercase hyphenated form this id is, if it is one.
    pub fn as_uuid(&self) -> Option<&Uuid> {
        match &self.0 {
            Form::Uuid(id) => Some(id),
            Form::Text(_) => None,
        }
    }

    /// The id's text.
    pub fn text(&self) -> IdText<'_> {
        match &self.0 {
            Form::Uuid(id) => IdText::Uuid(crate::digits::uuid_lower(id.as_bytes())),
            Form::Text(text) => IdText::Borrowed(text),
        }
    }

    /// The id's text as a string of its own.
    pub fn to_text(&self) -> String {
        self.text().as_str().to_owned()
    }

    /// The length of the id's text in bytes.
    pub fn len(&self) -> usize {
        match &self.0 {
            Form::Uuid(_) => Hyphenated::LENGTH,
            Form::Text(text) => text.len(),
        }
    }

    /// Whether the id's text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The UUID whose lowercase hyphenated form `text` is, if it is one.
fn uuid_of_text(text: &str) -> Option<Uuid> {
    if text.len() != Hyphenated::LENGTH {
        return None;
    }
    Uuid::try_parse(text)
        .ok()
        .filter(|id| crate::digits::uuid_lower(id.as_bytes()) == text.as_bytes())
}

/// A request id's text: formatted on the stack for a UUID, borrowed otherwise.
#[derive(Clone, Copy)]
pub enum IdText<'a> {
    Uuid([u8; Hyphenated::LENGTH]),
    Borrowed(&'a str),
}

impl IdText<'_> {
    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Uuid(digits) => digits,
            Self::Borrowed(text) => text.as_bytes(),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            // Hex digits and hyphens: always UTF-8.
            Self::Uuid(digits) => std::str::from_utf8(digits).unwrap_or_default(),
            Self::Borrowed(text) => text,
        }
    }
}

impl AsRef<str> for IdText<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for RequestId {
    fn from(text: String) -> Self {
        match uuid_of_text(&text) {
            Some(id) => Self(Form::Uuid(id)),
            None => Self(Form::Text(text)),
        }
    }
}

impl From<&str> for RequestId {
    fn from(text: &str) -> Self {
        match uuid_of_text(text) {
            Some(id) => Self(Form::Uuid(id)),
            None => Self(Form::Text(text.to_owned())),
        }
    }
}

impl From<Uuid> for RequestId {
    fn from(id: Uuid) -> Self {
        Self::of_uuid(id)
    }
}

impl PartialEq<str> for RequestId {
    fn eq(&self, other: &str) -> bool {
        self.text().as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for RequestId {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl PartialEq<String> for RequestId {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

/// Ordered as their texts are.
impl Ord for RequestId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text().as_bytes().cmp(other.text().as_bytes())
    }
}

impl PartialOrd for RequestId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.text().as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.text().as_str(), formatter)
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.text().as_str())
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_uuid_text_becomes_the_uuid_and_other_text_stays_text() {
        let id = Uuid::from_u128(0x0193_a7b2_0000_7000_8000_0000_0000_00ab);
        let lower = id.hyphenated().to_string();
        let from_text = RequestId::from(lower.as_str());
        assert_eq!(from_text.as_uuid(), Some(&id));
        assert_eq!(from_text, RequestId::of_uuid(id));
        assert_eq!(from_text, lower);
        assert_eq!(from_text.to_string(), lower);
        assert_eq!(from_text.len(), 36);
        // Forms that are not the lowercase hyphenated one are written back as given.
        for other in [
            lower.to_uppercase(),
            id.simple().to_string(),
            format!("{{{lower}}}"),
            "req-1".to_owned(),
            String::new(),
        ] {
            let kept = RequestId::from(other.clone());
            assert_eq!(kept.as_uuid(), None, "{other}");
            assert_eq!(kept.to_text(), other);
            assert_eq!(kept.len(), other.len());
            assert_ne!(kept, from_text);
        }
        assert!(RequestId::from("").is_empty());
    }

    #[test]
    fn json_is_the_text_and_reads_back_to_the_same_form() {
        let id = RequestId::of_uuid(Uuid::from_u128(7));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"00000000-0000-0000-0000-000000000007\"");
        let back: RequestId = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_uuid(), id.as_uuid());
        let text: RequestId = serde_json::from_str("\"req-\\u00e9\"").unwrap();
        assert_eq!(text, "req-\u{e9}");
        assert_eq!(format!("{text:?}"), "\"req-\u{e9}\"");
    }

    proptest! {
        /// Equal ids have equal texts and hash alike, whichever way each was made.
        #[test]
        fn equality_is_equality_of_texts(bits in any::<u128>(), text in "[0-9a-fA-F-]{0,40}") {
            use std::hash::{BuildHasher, RandomState};
            let hashes = RandomState::new();
            let uuid_text = Uuid::from_u128(bits).hyphenated().to_string();
            let by_uuid = RequestId::of_uuid(Uuid::from_u128(bits));
            let by_text = RequestId::from(uuid_text.clone());
            prop_assert_eq!(&by_uuid, &by_text);
            prop_assert_eq!(hashes.hash_one(&by_uuid), hashes.hash_one(&by_text));
            let other = RequestId::from(text.clone());
            prop_assert_eq!(other.to_text(), text.clone());
            prop_assert_eq!(other == by_uuid, text == uuid_text);
            prop_assert_eq!(other.cmp(&by_uuid), text.cmp(&uuid_text));
        }
    }
}
