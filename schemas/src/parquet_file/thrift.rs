//! The few pieces of Thrift's compact protocol that Parquet's page headers and footer need:
//! structs of integers, booleans, binaries, lists and nested structs, written forward into
//! a byte vector. Field ids must rise within a struct (every caller writes them in order).

/// Compact protocol type codes.
const BOOLEAN_TRUE: u8 = 1;
const BOOLEAN_FALSE: u8 = 2;
const I32: u8 = 5;
const I64: u8 = 6;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const STRUCT: u8 = 12;

/// The element types of lists written here.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ListOf {
    I32,
    Binary,
    Struct,
}

impl ListOf {
    fn code(self) -> u8 {
        match self {
            Self::I32 => I32,
            Self::Binary => BINARY,
            Self::Struct => STRUCT,
        }
    }
}

/// Writes one Thrift struct (and the structs inside it) in the compact protocol.
pub(crate) struct CompactWriter<'a> {
    out: &'a mut Vec<u8>,
    /// The last field id written in the struct being written.
    last_field: i16,
    /// The last field ids of the enclosing structs.
    enclosing: Vec<i16>,
}

impl<'a> CompactWriter<'a> {
    /// A writer positioned at the start of a top-level struct.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            last_field: 0,
            enclosing: Vec::new(),
        }
    }

    fn varint(&mut self, value: u64) {
        super::varint(self.out, value);
    }

    fn zigzag(&mut self, value: i64) {
        self.varint(((value << 1) ^ (value >> 63)) as u64);
    }

    fn field_header(&mut self, id: i16, type_code: u8) {
        let delta = id - self.last_field;
        if (1..=15).contains(&delta) {
            self.out.push(((delta as u8) << 4) | type_code);
        } else {
            self.out.push(type_code);
            self.zigzag(i64::from(id));
        }
        self.last_field = id;
    }

    pub(crate) fn i32(&mut self, id: i16, value: i32) {
        self.field_header(id, I32);
        self.zigzag(i64::from(value));
    }

    pub(crate) fn i64(&mut self, id: i16, value: i64) {
        self.field_header(id, I64);
        self.zigzag(value);
    }

    pub(crate) fn bool(&mut self, id: i16, value: bool) {
        self.field_header(id, if value { BOOLEAN_TRUE } else { BOOLEAN_FALSE });
    }

    pub(crate) fn binary(&mut self, id: i16, value: &[u8]) {
        self.field_header(id, BINARY);
        self.varint(value.len() as u64);
        self.out.extend_from_slice(value);
    }

    /// Starts a struct field; its fields follow, then [`CompactWriter::end_struct`].
    pub(crate) fn begin_struct(&mut self, id: i16) {
        self.field_header(id, STRUCT);
        self.enter_struct();
    }

    /// Starts a struct that is an element of a list.
    pub(crate) fn begin_list_struct(&mut self) {
        self.enter_struct();
    }

    fn enter_struct(&mut self) {
        self.enclosing.push(self.last_field);
        self.last_field = 0;
    }

    /// Ends the struct being written (or, at the top level, the whole struct).
    pub(crate) fn end_struct(&mut self) {
        self.out.push(0);
        self.last_field = self.enclosing.pop().unwrap_or(0);
    }

    /// Starts a list field of `len` elements, written next with the `element_*` methods
    /// (or as structs with [`CompactWriter::begin_list_struct`]).
    pub(crate) fn list(&mut self, id: i16, element: ListOf, len: usize) {
        self.field_header(id, LIST);
        if len < 15 {
            self.out.push(((len as u8) << 4) | element.code());
        } else {
            self.out.push(0xF0 | element.code());
            self.varint(len as u64);
        }
    }

    pub(crate) fn element_i32(&mut self, value: i32) {
        self.zigzag(i64::from(value));
    }

    pub(crate) fn element_binary(&mut self, value: &[u8]) {
        self.varint(value.len() as u64);
        self.out.extend_from_slice(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_written_as_deltas_or_with_their_id() {
        let mut out = Vec::new();
        let mut writer = CompactWriter::new(&mut out);
        writer.i32(1, 3);
        writer.i64(17, -1);
        writer.bool(18, true);
        writer.binary(19, b"ab");
        writer.end_struct();
        assert_eq!(
            out,
            [
                0x15, 6, // field 1, i32, zigzag(3)
                I64, 34, 1,    // field 17 by id (zigzag 17 = 34), zigzag(-1) = 1
                0x11, // field 18, true
                0x18, 2, b'a', b'b', // field 19, binary of 2
                0,    // stop
            ]
        );
    }

    #[test]
    fn nested_structs_restore_the_enclosing_field_ids() {
        let mut out = Vec::new();
        let mut writer = CompactWriter::new(&mut out);
        writer.begin_struct(2);
        writer.i32(5, 0);
        writer.end_struct();
        writer.i32(3, 1);
        writer.end_struct();
        assert_eq!(out, [0x2C, 0x55, 0, 0, 0x15, 2, 0]);
    }

    #[test]
    fn long_lists_carry_their_size_as_a_varint() {
        let mut out = Vec::new();
        let mut writer = CompactWriter::new(&mut out);
        writer.list(1, ListOf::I32, 300);
        assert_eq!(out, [0x19, 0xF5, 0xAC, 0x02]);
        let mut short = Vec::new();
        CompactWriter::new(&mut short).list(1, ListOf::Binary, 2);
        assert_eq!(short, [0x19, 0x28]);
    }
}
