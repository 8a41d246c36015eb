//! Thumbnails: `WxH` (crop to fill, centred), `WxHt` / `WxHb` (crop anchored
//! at the top / bottom), `WxHf` (fit inside), `0xH` / `Wx0` (one side, the
//! other keeps the ratio). Made on first request, stored beside the original
//! and served from there afterwards.

use super::FilesError;
use super::storage::{BlobKey, Storage, stage_bytes};
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat};
use std::fmt;

/// Largest side a thumb may ask for (the request is ignored past it).
pub const MAX_THUMB_SIDE: u32 = 4096;
/// Largest source image side decoded for a thumb (larger ones get the original).
pub const MAX_SOURCE_SIDE: u32 = 16_384;
/// Most memory one decode may allocate (a decompression bomb fails instead).
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Center,
    Top,
    Bottom,
    Fit,
}

/// A crop rectangle: x, y, width, height.
type Crop = (u32, u32, u32, u32);

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

    /// The size to scale the whole image to, and the crop taken from it.
    fn plan(&self, w0: u32, h0: u32) -> ((u32, u32), Option<Crop>) {
        let (fw0, fh0) = (f64::from(w0), f64::from(h0));
        let side = |v: f64| (v.round() as u32).max(1);
        match (self.width, self.height, self.mode) {
            (0, h, _) => ((side(fw0 * f64::from(h) / fh0), h), None),
            (w, 0, _) => ((w, side(fh0 * f64::from(w) / fw0)), None),
            (w, h, Mode::Fit) => {
                let ratio = (f64::from(w) / fw0).min(f64::from(h) / fh0);
                ((side(fw0 * ratio).min(w), side(fh0 * ratio).min(h)), None)
            }
            (w, h, mode) => {
                let scale = (f64::from(w) / fw0).max(f64::from(h) / fh0);
                let nw = ((fw0 * scale).ceil() as u32).max(w);
                let nh = ((fh0 * scale).ceil() as u32).max(h);
                let y = match mode {
                    Mode::Top => 0,
                    Mode::Bottom => nh - h,
                    _ => (nh - h) / 2,
                };
                ((nw, nh), Some(((nw - w) / 2, y, w, h)))
            }
        }
    }

    /// The thumb of `img`; `None` when scaling would exceed [`MAX_THUMB_SIDE`]
    /// (a very thin image with one side given), so the original is served.
    fn resize(&self, img: &DynamicImage) -> Option<DynamicImage> {
        let ((fw, fh), crop) = self.plan(img.width().max(1), img.height().max(1));
        if fw > MAX_THUMB_SIDE || fh > MAX_THUMB_SIDE {
            return None;
        }
        // Large downscales first shrink fast (area sampling) to twice the
        // target, then Lanczos3 does the last step: same look, a fraction of the time.
        let shrunk;
        let source = if u64::from(fw) * 4 < u64::from(img.width())
            && u64::from(fh) * 4 < u64::from(img.height())
        {
            shrunk = img.thumbnail_exact(fw * 2, fh * 2);
            &shrunk
        } else {
            img
        };
        let full = source.resize_exact(fw, fh, FilterType::Lanczos3);
        Some(match crop {
            Some((x, y, w, h)) => full.crop_imm(x, y, w, h),
            None => full,
        })
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

/// The key of `key`'s thumb of `size`, made from the original and stored
/// beside it when missing (once; later requests find it). Blocks.
pub fn thumb_key(
    store: &dyn Storage,
    key: &BlobKey,
    size: &ThumbSize,
) -> Result<BlobKey, FilesError> {
    let thumb_key = key.thumb(size);
    if store.open(&thumb_key).is_ok() {
        return Ok(thumb_key);
    }
    let format = format_of(key.name()).ok_or_else(|| FilesError::Image("not an image".into()))?;
    let source = store.local_copy(key)?;
    let mut reader = image::ImageReader::open(source.path())?.with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| FilesError::Image(e.to_string()))?;
    let mut out = size
        .resize(&img)
        .ok_or_else(|| FilesError::Image("thumb would be too large".into()))?;
    if format == ImageFormat::Jpeg {
        out = DynamicImage::ImageRgb8(out.to_rgb8());
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    out.write_to(&mut bytes, format)
        .map_err(|e| FilesError::Image(e.to_string()))?;
    let staged = stage_bytes(store.staging_dir(), key.name(), bytes.get_ref())?;
    store.put(staged, &thumb_key)?;
    Ok(thumb_key)
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
    fn thumbs_are_made_for_every_supported_format() {
        use super::super::{LocalStorage, storage::stage_bytes};
        let dir = tempfile::tempdir().expect("tmp");
        let store = LocalStorage::open(dir.path()).expect("open");
        let size = ThumbSize::parse("10x10").expect("size");
        for (name, format) in [
            ("a.png", ImageFormat::Png),
            ("a.jpg", ImageFormat::Jpeg),
            ("a.gif", ImageFormat::Gif),
            ("a.webp", ImageFormat::WebP),
        ] {
            let mut bytes = std::io::Cursor::new(Vec::new());
            DynamicImage::new_rgba8(40, 30)
                .write_to(&mut bytes, format)
                .or_else(|_| DynamicImage::new_rgb8(40, 30).write_to(&mut bytes, format))
                .expect("encode source");
            let staged = stage_bytes(store.staging_dir(), name, bytes.get_ref()).expect("stage");
            let key = BlobKey::new("c", "r", name).expect("key");
            store.put(staged, &key).expect("put");

            let made = thumb_key(&store, &key, &size).expect(name);

            let path = store.local_copy(&made).expect("stored").path().to_owned();
            let thumb = image::open(&path).expect("thumb decodes");
            assert_eq!((thumb.width(), thumb.height()), (10, 10), "{name}");
            assert!(
                path.ends_with(format!("thumbs_{name}/10x10_{name}")),
                "{path:?}"
            );
        }
    }

    #[test]
    fn a_thumb_of_a_very_thin_image_is_refused_instead_of_allocating_gigabytes() {
        let thin = DynamicImage::new_rgb8(4000, 1);
        let size = ThumbSize::parse("0x4000").expect("parses");
        assert!(size.resize(&thin).is_none());
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
                .and_then(|s| s.resize(&img))
                .expect("parses and fits");
            assert_eq!((out.width(), out.height()), want, "{size}");
        }
    }
}
