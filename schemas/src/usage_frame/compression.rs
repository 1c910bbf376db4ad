//! How a frame's payload is stored: as it is, or compressed with zstd through a context
//! kept per thread.

use std::cell::RefCell;

use crate::error::DecodeError;

/// The largest payload a frame may declare once decompressed: a Kinesis record holds at
/// most 1 MiB, and zstd compresses these events about tenfold.
pub const MAX_DECOMPRESSED_PAYLOAD: usize = 64 * 1024 * 1024;

/// How a frame's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameCodec {
    /// The payload as it is.
    #[default]
    None,
    /// The payload compressed with zstd (level 1: cheap for the proxy, several times smaller).
    Zstd,
}

impl FrameCodec {
    pub(super) fn byte(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Zstd => 1,
        }
    }

    pub(super) fn from_byte(byte: u8) -> Result<Self, DecodeError> {
        match byte {
            0 => Ok(Self::None),
            1 => Ok(Self::Zstd),
            other => Err(DecodeError::Frame(format!(
                "unknown codec {other}; this build reads 0 (none) and 1 (zstd): upgrade tollgate"
            ))),
        }
    }
}

thread_local! {
    /// One zstd context per thread, reused: creating one costs more than compressing or
    /// decompressing a small frame (a frame of one event is about 700 bytes).
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Runs `work` with this thread's compression context (level 1), made on first use.
pub(super) fn with_compressor<T>(
    work: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Compressor::new(1)?);
        }
        match slot.as_mut() {
            Some(compressor) => work(compressor),
            None => Err(std::io::Error::other("no zstd compression context")),
        }
    })
}

/// Runs `work` with this thread's decompression context, made on first use.
pub(super) fn with_decompressor<T>(
    work: impl FnOnce(&mut zstd::bulk::Decompressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        match slot.as_mut() {
            Some(decompressor) => work(decompressor),
            None => Err(std::io::Error::other("no zstd decompression context")),
        }
    })
}
