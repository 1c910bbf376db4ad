//! How a frame's payload is stored: as it is, compressed with zstd through a context kept
//! per thread, or compressed with LZ4.

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
    /// The payload compressed as one LZ4 block after its decompressed length (a
    /// little-endian u32). What proxies write for version 3 frames: on the consumer's
    /// events it decompresses with a third of zstd's instructions (976 against 3,125 per
    /// event, frames of 100 events), and with version 3's compact ids the frame is as
    /// small as version 2 with zstd (100 against 102 bytes per event).
    Lz4,
}

impl FrameCodec {
    pub(super) fn byte(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Zstd => 1,
            Self::Lz4 => 2,
        }
    }

    pub(super) fn from_byte(byte: u8) -> Result<Self, DecodeError> {
        match byte {
            0 => Ok(Self::None),
            1 => Ok(Self::Zstd),
            2 => Ok(Self::Lz4),
            other => Err(DecodeError::Frame(format!(
                "unknown codec {other}; this build reads 0 (none), 1 (zstd) and 2 (LZ4): upgrade tollgate"
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

/// `payload` as an LZ4 frame payload: its length, then one LZ4 block.
pub(super) fn lz4_compress(payload: &[u8]) -> std::io::Result<Vec<u8>> {
    if u32::try_from(payload.len()).is_err() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a frame payload is over 4 GiB",
        ));
    }
    Ok(lz4_flex::block::compress_prepend_size(payload))
}

/// What an LZ4 frame payload decompresses to: exactly the length it declares, which must be
/// at most [`MAX_DECOMPRESSED_PAYLOAD`] (checked before anything is allocated).
pub(super) fn lz4_decompress(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let Some((declared, block)) = payload.split_first_chunk::<4>() else {
        return Err(DecodeError::Frame(format!(
            "LZ4 frame payload is cut short: {} bytes, its length alone takes 4",
            payload.len()
        )));
    };
    let size = u32::from_le_bytes(*declared) as usize;
    if size > MAX_DECOMPRESSED_PAYLOAD {
        return Err(DecodeError::Frame(format!(
            "LZ4 frame payload declares {size} bytes, over the {MAX_DECOMPRESSED_PAYLOAD} a frame may hold"
        )));
    }
    // Into room for the declared size (not zeroed first); more is an error.
    match lz4_flex::block::decompress(block, size) {
        Ok(out) if out.len() == size => Ok(out),
        Ok(out) => Err(DecodeError::Frame(format!(
            "LZ4 frame payload declares {size} bytes but decompresses to {}",
            out.len()
        ))),
        Err(error) => Err(DecodeError::Frame(format!(
            "frame payload is not valid LZ4: {error}"
        ))),
    }
}
