//! Thumbnails: `WxH` (crop to fill, centred), `WxHt` / `WxHb` (crop anchored
//! at the top / bottom), `WxHf` (fit inside), `0xH` / `Wx0` (one side, the
//! other keeps the ratio). Made on first request, stored beside the original
//! and served from there afterwards.

use super::FilesError;
use super::storage::{BlobKey, Storage, stage_bytes};
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat};
use std::fmt;
use std::path::PathBuf;

/// Largest side a thumb may ask for (the request is ignored past it).
pub const MAX_THUMB_SIDE: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Center,
    Top,
    Bottom,
    Fit,
}

/// A parsed `thumb` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbSize {
    width: u32,
    height: u32,
    mode: Mode,
}

impl ThumbSize {
    /// `WxH[t|b|f]`; `None` for anything else (the original is served then).
    pub fn parse(raw: &str) -> Option<Self> {
        let (dims, mode) = match raw.as_bytes().last()? {
            b't' => (&raw[..raw.len() - 1], Mode::Top),
            b'b' => (&raw[..raw.len() - 1], Mode::Bottom),
            b'f' => (&raw[..raw.len() - 1], Mode::Fit),
            _ => (raw, Mode::Center),
        };
        let (w, h) = dims.split_once('x')?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(w) || !digits(h) {
            return None;
        }
        let (width, height) = (w.parse().ok()?, h.parse().ok()?);
        let ok = (width > 0 || height > 0) && width <= MAX_THUMB_SIDE && height <= MAX_THUMB_SIDE;
        // A zero side only makes sense for the plain form.
        (ok && (mode == Mode::Center || (width > 0 && height > 0))).then_some(Self {
            width,
            height,
            mode,
        })
    }

    fn resize(&self, img: &DynamicImage) -> DynamicImage {
        let (w0, h0) = (img.width().max(1), img.height().max(1));
        let filter = FilterType::Lanczos3;
        let scaled = |a: u32, num: u32, den: u32| {
            ((f64::from(a) * f64::from(num) / f64::from(den)).round() as u32).max(1)
        };
        match (self.width, self.height, self.mode) {
            (0, h, _) => img.resize_exact(scaled(w0, h, h0), h, filter),
            (w, 0, _) => img.resize_exact(w, scaled(h0, w, w0), filter),
            (w, h, Mode::Fit) => img.resize(w, h, filter),
            (w, h, Mode::Center) => img.resize_to_fill(w, h, filter),
            (w, h, mode) => {
                let scale = (f64::from(w) / f64::from(w0)).max(f64::from(h) / f64::from(h0));
                let nw = ((f64::from(w0) * scale).ceil() as u32).max(w);
                let nh = ((f64::from(h0) * scale).ceil() as u32).max(h);
                let full = img.resize_exact(nw, nh, filter);
                let y = if mode == Mode::Top { 0 } else { nh - h };
                full.crop_imm((nw - w) / 2, y, w, h)
            }
        }
    }
}

impl fmt::Display for ThumbSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = match self.mode {
            Mode::Center => "",
            Mode::Top => "t",
            Mode::Bottom => "b",
            Mode::Fit => "f",
        };
        write!(f, "{}x{}{suffix}", self.width, self.height)
    }
}

/// Whether thumbs are made for a stored file of this name.
pub fn is_thumbable(name: &str) -> bool {
    format_of(name).is_some()
}

fn format_of(name: &str) -> Option<ImageFormat> {
    let ext = name.rsplit('.').next()?.to_ascii_lowercase();
    match ext.as_str() {
        "png" => Some(ImageFormat::Png),
        "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
        "gif" => Some(ImageFormat::Gif),
        "webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// The path of `key`'s thumb of `size`, made (and stored) when missing. Blocks.
pub fn thumb_path(
    store: &dyn Storage,
    key: &BlobKey,
    size: &ThumbSize,
) -> Result<PathBuf, FilesError> {
    let thumb_key = key.thumb(size);
    if let Ok(path) = store.local_path(&thumb_key) {
        return Ok(path);
    }
    let format = format_of(key.name()).ok_or_else(|| FilesError::Image("not an image".into()))?;
    let source = store.local_path(key)?;
    let img = image::ImageReader::open(&source)?
        .with_guessed_format()?
        .decode()
        .map_err(|e| FilesError::Image(e.to_string()))?;
    let mut out = size.resize(&img);
    if format == ImageFormat::Jpeg {
        out = DynamicImage::ImageRgb8(out.to_rgb8());
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    out.write_to(&mut bytes, format)
        .map_err(|e| FilesError::Image(e.to_string()))?;
    let staged = stage_bytes(store.staging_dir(), key.name(), bytes.get_ref())?;
    store.put(staged, &thumb_key)?;
    store.local_path(&thumb_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumb_sizes_parse_in_every_reference_form() {
        for ok in ["100x100", "100x50t", "100x50b", "100x50f", "0x50", "50x0"] {
            let size = ThumbSize::parse(ok).unwrap_or_else(|| panic!("{ok} should parse"));
            assert_eq!(size.to_string(), ok);
        }
        for bad in [
            "", "x", "0x0", "100", "axb", "100x100z", "0x50f", "99999x1", "-1x5",
        ] {
            assert!(ThumbSize::parse(bad).is_none(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn resized_dimensions_match_pocketbase() {
        let img = DynamicImage::new_rgb8(200, 120);
        for (size, want) in [
            ("0x50", (83, 50)),
            ("50x0", (50, 30)),
            ("100x100", (100, 100)),
            ("100x100t", (100, 100)),
            ("100x100b", (100, 100)),
            ("100x100f", (100, 60)),
        ] {
            let out = ThumbSize::parse(size)
                .map(|s| s.resize(&img))
                .expect("parses");
            assert_eq!((out.width(), out.height()), want, "{size}");
        }
    }
}
