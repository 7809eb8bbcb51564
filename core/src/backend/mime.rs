//! File extension → media type. Text types carry `charset=utf-8` (our files are UTF-8, and a
//! browser guessing the charset is how encoding bugs and XSS through sniffing start).
//! Unknown extensions are `application/octet-stream`, which browsers download, never render.

/// The `Content-Type` for a file name. The extension is lowered into a stack buffer, not a
/// new string: that allocation showed in every request's profile. No known extension is longer
/// than the buffer, so a longer one is simply unknown.
pub fn content_type(file_name: &str) -> &'static str {
    const UNKNOWN: &str = "application/octet-stream";
    let ext = match file_name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext,
        _ => return UNKNOWN,
    };
    let mut lower = [0u8; 12];
    let Some(buf) = lower.get_mut(..ext.len()) else {
        return UNKNOWN;
    };
    buf.copy_from_slice(ext.as_bytes());
    buf.make_ascii_lowercase();
    match &*buf {
        b"html" | b"htm" => "text/html; charset=utf-8",
        b"css" => "text/css; charset=utf-8",
        b"js" | b"mjs" => "text/javascript; charset=utf-8",
        b"json" | b"map" => "application/json",
        b"webmanifest" => "application/manifest+json",
        b"txt" => "text/plain; charset=utf-8",
        b"md" => "text/markdown; charset=utf-8",
        b"csv" => "text/csv; charset=utf-8",
        b"xml" => "application/xml",
        b"svg" => "image/svg+xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"avif" => "image/avif",
        b"ico" => "image/vnd.microsoft.icon",
        b"bmp" => "image/bmp",
        b"woff" => "font/woff",
        b"woff2" => "font/woff2",
        b"ttf" => "font/ttf",
        b"otf" => "font/otf",
        b"wasm" => "application/wasm",
        b"pdf" => "application/pdf",
        b"zip" => "application/zip",
        b"gz" => "application/gzip",
        b"mp3" => "audio/mpeg",
        b"ogg" => "audio/ogg",
        b"wav" => "audio/wav",
        b"mp4" => "video/mp4",
        b"webm" => "video/webm",
        _ => UNKNOWN,
    }
}

/// True for a name with a known media type that is not a page: a stylesheet, a script, an
/// image, a font (what an app serves without asking its node).
pub fn is_asset(file_name: &str) -> bool {
    let ty = content_type(file_name);
    ty != "application/octet-stream" && !ty.starts_with("text/html")
}

/// True for names the seed serves from `www/` (HTML pages); everything else is in `static/`.
pub fn is_page(file_name: &str) -> bool {
    content_type(file_name).starts_with("text/html")
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn table() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("A.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("app.mjs"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.json"), "application/json");
        assert_eq!(content_type("x.svg"), "image/svg+xml");
        assert_eq!(content_type("x.woff2"), "font/woff2");
        assert_eq!(content_type("x.wasm"), "application/wasm");
        assert_eq!(content_type("favicon.ico"), "image/vnd.microsoft.icon");
        assert_eq!(content_type("x.unknown"), "application/octet-stream");
        assert_eq!(
            content_type("site.WebManifest"),
            "application/manifest+json"
        );
        assert_eq!(
            content_type("x.htmlhtmlhtmlhtml"),
            "application/octet-stream"
        );
        assert_eq!(content_type("x."), "application/octet-stream");
        assert_eq!(content_type("Makefile"), "application/octet-stream");
        assert_eq!(content_type(".bashrc"), "application/octet-stream");
    }
}
