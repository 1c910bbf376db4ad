//! A dictionary column chunk's distinct values: found by a small key (an enum's static
//! address, an integer) or by the value before it, before any hashing; written once, in
//! first-seen order, as the chunk's dictionary page.

use std::collections::HashMap;

use super::{Bounds, Physical};

/// Keyed values remembered per dictionary (more are still found, through the map).
const KEYED_VALUES: usize = 32;

/// A dictionary column's distinct values in first-seen order, plain-encoded.
#[derive(Default)]
pub(super) struct Dictionary {
    index: HashMap<Box<[u8]>, u32, foldhash::fast::FixedState>,
    /// Each entry's place in `plain` (the value, after a byte array's length prefix).
    entries: Vec<(u32, u32)>,
    /// The dictionary page's body: every value, plain-encoded.
    pub(super) plain: Vec<u8>,
    /// The last value's index: values often repeat the one before.
    last: Option<u32>,
    /// Values known by a key (see [`Self::index_of_keyed`]), with their indices.
    keyed: Vec<(u64, u32)>,
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
        self.index.clear();
        self.entries.clear();
        self.plain.clear();
        self.last = None;
        self.keyed.clear();
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
        match self.index.get(value) {
            Some(&index) => index,
            None => self.insert(value, physical),
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
        self.index.insert(value.into(), index);
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
