//! A dictionary column chunk's distinct values: found by a small key (an enum's static
//! address, an integer) or by the value before it, before any hashing, else in a table of
//! their own; written once, in first-seen order, as the chunk's dictionary page.

use super::{Bounds, Physical};
use crate::byte_hash::{hash, seed};
use crate::name::{Name, WAYS};

/// Keyed values remembered per dictionary (more are still found, through the map).
const KEYED_VALUES: usize = 32;

/// Names remembered per dictionary by their address (see [`Dictionary::index_of_name`]),
/// each in one of [`WAYS`] slots from the one its address picks.
const NAMED_SLOTS: usize = 1024;

/// The table's first size, and the largest kept when the dictionary is emptied.
const FIRST_SLOTS: usize = 64;
const KEPT_SLOTS: usize = 4096;

/// A dictionary column's distinct values in first-seen order, plain-encoded.
pub(super) struct Dictionary {
    /// The process's hash seed, read once per dictionary.
    seed: u64,
    /// An open-addressed table of the entries (linear probing): 0 an empty slot, else an
    /// entry's index plus one. Its length is a power of two, at least twice the entries;
    /// empty until the first value is hashed.
    slots: Vec<u32>,
    /// How far a hash is shifted right to give a slot (64 less the table's bits).
    shift: u32,
    /// Each entry's place in `plain` (the value, after a byte array's length prefix).
    entries: Vec<(u32, u32)>,
    /// The dictionary page's body: every value, plain-encoded.
    pub(super) plain: Vec<u8>,
    /// The last value's index: values often repeat the one before.
    last: Option<u32>,
    /// Values known by a key (see [`Self::index_of_keyed`]), with their indices.
    keyed: Vec<(u64, u32)>,
    /// Names seen lately, each with its index, in a direct-mapped table by address; each is
    /// held here, so its address is not another's while it is. Empty until the first.
    named: Vec<Option<(Name, u32)>>,
}

impl Default for Dictionary {
    fn default() -> Self {
        Self {
            seed: seed(),
            slots: Vec::new(),
            shift: 0,
            entries: Vec::new(),
            plain: Vec::new(),
            last: None,
            keyed: Vec::new(),
            named: Vec::new(),
        }
    }
}

impl Dictionary {
    /// Distinct values so far.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Empties the dictionary; its buffers keep their room.
    pub(super) fn clear(&mut self) {
        if self.slots.len() > KEPT_SLOTS {
            self.slots = Vec::new();
        } else {
            self.slots.fill(0);
        }
        self.entries.clear();
        self.plain.clear();
        self.last = None;
        self.keyed.clear();
        self.named.fill(None);
    }

    /// The index of a name (shared text, see [`crate::name`]): found by its address when
    /// the same copy was seen lately, without reading its bytes; else as any value is.
    pub(super) fn index_of_name(&mut self, name: &Name, physical: Physical) -> u32 {
        if self.named.is_empty() {
            self.named = vec![None; NAMED_SLOTS];
        }
        let address = name.address() as u64;
        // The multiplied address's top bits pick the slot (NAMED_SLOTS is a power of two).
        // A name may take a few slots from its home (an empty one, else the home's).
        let home = (address.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> (u64::BITS - NAMED_SLOTS.trailing_zeros())) as usize;
        let mut empty = None;
        for way in 0..WAYS {
            let slot = (home + way) % NAMED_SLOTS;
            match &self.named[slot] {
                Some((known, index)) if known.address() == name.address() => return *index,
                Some(_) => {}
                None => {
                    empty = Some(slot);
                    break;
                }
            }
        }
        let index = self.index_of(name.as_bytes(), physical);
        self.named[empty.unwrap_or(home)] = Some((name.clone(), index));
        index
    }

    /// The index of a value with a small key of its own (an integer, or a static string's
    /// address): a linear search among the keys seen, then the map; added if new.
    pub(super) fn index_of_keyed(&mut self, key: u64, value: &[u8], physical: Physical) -> u32 {
        if let Some(&(_, index)) = self.keyed.iter().find(|(known, _)| *known == key) {
            return index;
        }
        let index = self.index_of_hashed(value, physical);
        if self.keyed.len() < KEYED_VALUES {
            self.keyed.push((key, index));
        }
        index
    }

    /// The index of a value: the last one's if it repeats it, else through the map; added
    /// if new.
    pub(super) fn index_of(&mut self, value: &[u8], physical: Physical) -> u32 {
        if let Some(last) = self.last
            && self.value(last) == value
        {
            return last;
        }
        let index = self.index_of_hashed(value, physical);
        self.last = Some(index);
        index
    }

    fn index_of_hashed(&mut self, value: &[u8], physical: Physical) -> u32 {
        if self.slots.is_empty() {
            self.resize(FIRST_SLOTS);
        }
        let seed = self.seed;
        let mask = self.slots.len() - 1;
        let mut slot = (hash(value, seed) >> self.shift) as usize;
        loop {
            match self.slots[slot] {
                0 => break,
                stored if self.value(stored - 1) == value => return stored - 1,
                _ => slot = (slot + 1) & mask,
            }
        }
        let index = self.insert(value, physical);
        self.slots[slot] = index + 1;
        if self.entries.len() * 2 > self.slots.len() {
            self.resize(self.slots.len() * 2);
        }
        index
    }

    /// Makes the table `slots` long (a power of two) and places every entry in it again.
    fn resize(&mut self, slots: usize) {
        self.slots.clear();
        self.slots.resize(slots, 0);
        self.shift = u64::BITS - slots.trailing_zeros();
        let (seed, mask) = (self.seed, slots - 1);
        for index in 0..self.entries.len() as u32 {
            let mut slot = (hash(self.value(index), seed) >> self.shift) as usize;
            while self.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = index + 1;
        }
    }

    fn value(&self, index: u32) -> &[u8] {
        let (start, len) = self.entries[index as usize];
        &self.plain[start as usize..(start + len) as usize]
    }

    fn insert(&mut self, value: &[u8], physical: Physical) -> u32 {
        let index = self.entries.len() as u32;
        if physical == Physical::ByteArray {
            self.plain
                .extend_from_slice(&(value.len() as u32).to_le_bytes());
        }
        self.entries
            .push((self.plain.len() as u32, value.len() as u32));
        self.plain.extend_from_slice(value);
        index
    }

    /// The smallest and largest entries of a byte-array dictionary (integer columns keep
    /// their bounds as they go).
    pub(super) fn bounds(&self, physical: Physical) -> Option<Bounds> {
        if physical != Physical::ByteArray {
            return None;
        }
        let values = (0..self.entries.len() as u32).map(|index| self.value(index));
        let min = values.clone().min()?;
        let max = values.max()?;
        Some((min.to_vec(), max.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values alike at both ends and of every short length, so the table grows and probes.
    fn values(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|index| match index % 3 {
                0 => format!("customer-{index:06}-production").into_bytes(),
                1 => index.to_string().into_bytes(),
                _ => vec![b'x'; index % 40],
            })
            .collect()
    }

    #[test]
    fn each_distinct_value_keeps_its_first_index_as_the_table_grows() {
        let mut dictionary = Dictionary::default();
        for round in 0..2 {
            let values = values(5_000);
            let mut first_seen: Vec<&[u8]> = Vec::new();
            for value in &values {
                let index = dictionary.index_of(value, Physical::ByteArray) as usize;
                if index == first_seen.len() {
                    first_seen.push(value);
                }
                assert_eq!(first_seen[index], value.as_slice(), "round {round}");
            }
            // Found again, in another order, with no new entry.
            for value in values.iter().rev() {
                let index = dictionary.index_of(value, Physical::ByteArray) as usize;
                assert_eq!(first_seen[index], value.as_slice());
            }
            assert_eq!(dictionary.len(), first_seen.len());
            // The page holds each once, length first, in first-seen order.
            let mut plain = Vec::new();
            for value in &first_seen {
                plain.extend_from_slice(&(value.len() as u32).to_le_bytes());
                plain.extend_from_slice(value);
            }
            assert_eq!(dictionary.plain, plain);
            dictionary.clear();
            assert!(dictionary.is_empty());
        }
    }

    #[test]
    fn a_name_has_its_texts_index_whichever_copy_it_is() {
        let mut dictionary = Dictionary::default();
        for round in 0..2 {
            // More names than the table by address holds, each text in two copies, mixed
            // with the same texts given as bytes.
            let texts: Vec<String> = (0..1_000).map(|index| format!("cust-{index}")).collect();
            let first: Vec<Name> = texts.iter().map(Name::from).collect();
            let second: Vec<Name> = texts.iter().map(Name::from).collect();
            let mut indices = Vec::new();
            for (index, name) in first.iter().enumerate() {
                let by_name = dictionary.index_of_name(name, Physical::ByteArray);
                assert_eq!(
                    by_name as usize, index,
                    "round {round}: first seen, next index"
                );
                indices.push(by_name);
            }
            for _ in 0..3 {
                for (index, text) in texts.iter().enumerate().rev() {
                    let expected = indices[index];
                    for found in [
                        dictionary.index_of_name(&first[index], Physical::ByteArray),
                        dictionary.index_of_name(&second[index], Physical::ByteArray),
                        dictionary.index_of(text.as_bytes(), Physical::ByteArray),
                    ] {
                        assert_eq!(found, expected, "{text}");
                    }
                }
            }
            assert_eq!(dictionary.len(), texts.len());
            // Emptied, it holds no name (nor keeps one alive) and starts again at 0.
            dictionary.clear();
            assert!(dictionary.named.iter().all(Option::is_none));
            assert_eq!(
                dictionary.index_of_name(&second[999], Physical::ByteArray),
                0
            );
            dictionary.clear();
        }
    }

    #[test]
    fn the_hash_depends_on_every_byte_and_the_length() {
        let seed = seed();
        let base = b"anthropic.claude-3-5-sonnet-20240620-v1:0".to_vec();
        let mut hashes = vec![hash(&base, seed)];
        for at in 0..base.len() {
            let mut changed = base.clone();
            changed[at] ^= 1;
            hashes.push(hash(&changed, seed));
        }
        hashes.push(hash(&base[..base.len() - 1], seed));
        hashes.push(hash(&[base.as_slice(), &[0]].concat(), seed));
        hashes.push(hash(b"", seed));
        hashes.push(hash(&[0], seed));
        let count = hashes.len();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), count);
    }
}
