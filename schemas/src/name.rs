//! A name a usage event carries (its customer, key, model and proxy instance): text shared
//! between the events that carry the same one.
//!
//! A consumer decodes millions of events naming a few thousand customers, keys and models
//! and a few proxy instances. Decoded through [`Names`], every event that names the same
//! customer holds the same copy of it: a name costs a lookup and a reference count, not an
//! allocation, a copy and a free per event.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Shared, immutable text (see the module's documentation). Compares, hashes and orders
/// as its text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<str>);

impl Name {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the shared text is: two names with one address are the same copy (and so
    /// have one text), for as long as either is held.
    pub fn address(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<u8>() as usize
    }

    /// The shared text itself, for holders that keep it as an `Arc<str>`.
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl Default for Name {
    /// The empty name, one copy shared by every default (an event's `proxy_instance` until
    /// the emitter stamps it).
    fn default() -> Self {
        static EMPTY: std::sync::OnceLock<Name> = std::sync::OnceLock::new();
        EMPTY.get_or_init(|| Self::from("")).clone()
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Self {
        Self(text.into())
    }
}

impl From<String> for Name {
    fn from(text: String) -> Self {
        Self(text.into())
    }
}

impl From<&String> for Name {
    fn from(text: &String) -> Self {
        Self(text.as_str().into())
    }
}

impl From<Arc<str>> for Name {
    fn from(text: Arc<str>) -> Self {
        Self(text)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> Self {
        name.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        *self == *other.0
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, formatter)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

/// A borrowed name that hashes and compares by its address: for maps keyed by the names of
/// events they borrow (one batch's cells), where the same copy is found without reading its
/// bytes. Two copies of one text are two keys: the map's user merges them by text.
#[derive(Clone, Copy, Debug)]
pub struct ByAddress<'a>(pub &'a Name);

impl PartialEq for ByAddress<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.address() == other.0.address()
    }
}

impl Eq for ByAddress<'_> {}

impl std::hash::Hash for ByAddress<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.address());
    }
}

/// The names a decoder has made lately, to hand out again: a table in which each text has a
/// few slots, by its hash (a text found there is shared; a new one takes an empty slot of
/// its few, else replaces the first). Bounded, whatever it is given; a name not found
/// costs what a `String` would.
pub struct Names {
    slots: Vec<Option<Name>>,
    seed: u64,
}

/// The table's size: more than the customers, keys and models a run of events names.
const SLOTS: usize = 1024;

/// The slots a text may take, from the one its hash picks.
pub(crate) const WAYS: usize = 4;

impl Default for Names {
    /// No names yet (the table is made at the first).
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            seed: crate::byte_hash::seed(),
        }
    }
}

impl Names {
    /// The name whose text is `text`: the one made before when it is still in the table.
    pub fn name(&mut self, text: &str) -> Name {
        if self.slots.is_empty() {
            self.slots = vec![None; SLOTS];
        }
        let hash = crate::byte_hash::hash(text.as_bytes(), self.seed);
        // The hash's top bits pick the slot (SLOTS is a power of two).
        let home = (hash >> (u64::BITS - SLOTS.trailing_zeros())) as usize;
        let mut empty = None;
        for way in 0..WAYS {
            let slot = (home + way) % SLOTS;
            match &self.slots[slot] {
                Some(known) if *known.0 == *text => return known.clone(),
                Some(_) => {}
                None => {
                    empty = Some(slot);
                    break;
                }
            }
        }
        self.slots[empty.unwrap_or(home)]
            .insert(Name::from(text))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_name_is_its_text() {
        let name = Name::from("cust-é");
        assert_eq!(name, "cust-é");
        assert_eq!("cust-é", name);
        assert_eq!(name, "cust-é".to_owned());
        assert_eq!(name.len(), "cust-é".len());
        assert_eq!(format!("{name} {name:?}"), "cust-é \"cust-é\"");
        assert_eq!(String::from(name.clone()), "cust-é");
        assert!(Name::from("a").cmp(&Name::from("b")).is_lt());
        assert_eq!(Name::default(), "");
        // Looked up by its text.
        let counts = HashMap::from([(name.clone(), 3)]);
        assert_eq!(counts.get("cust-é"), Some(&3));
        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(json, "\"cust-é\"");
        assert_eq!(serde_json::from_str::<Name>(&json).unwrap(), name);
    }

    #[test]
    fn names_share_a_text_seen_before_and_stay_bounded() {
        let mut names = Names::default();
        let first = names.name("cust-1");
        let again = names.name("cust-1");
        assert!(Arc::ptr_eq(&first.0, &again.0), "one copy of a name");
        // Thousands of names: each is its text, the table keeps at most its slots.
        let made: Vec<Name> = (0..5_000)
            .map(|index| names.name(&format!("customer-{index}")))
            .collect();
        for (index, name) in made.iter().enumerate() {
            assert_eq!(*name, format!("customer-{index}"));
            assert_eq!(names.name(name), *name);
        }
        assert_eq!(names.slots.len(), SLOTS);
        assert!(names.slots.iter().filter(|slot| slot.is_some()).count() <= SLOTS);
        assert_eq!(names.name(""), "");
    }
}
