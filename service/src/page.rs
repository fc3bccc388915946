//! The fans' web page: `GET /` and its assets, built into the binary from `service/web/`.
//!
//! The page is plain HTML, CSS and JavaScript modules with no build step (see
//! `service/web/README.md` for why), so what is in `service/web/` is exactly what is served.
//! Every file is compiled in with `include_bytes!`: the binary needs nothing beside it and
//! the page fetches nothing from anywhere but this service.
//!
//! Caching: the assets live under `/assets/<version>/`, where the version is a hash of all their
//! contents, so they can be cached for a year (`immutable`); `index.html` names that path and is
//! revalidated on every visit (`no-cache` with an `ETag`), so a new build reaches fans at their
//! next load and never mixes old and new modules.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

/// The placeholder in `index.html` that becomes the versioned asset path.
const ASSETS_PLACEHOLDER: &str = "{{ASSETS}}";

/// The page shell.
const INDEX_HTML: &str = include_str!("../web/index.html");

/// Every asset beside `index.html`: its path under `/assets/<version>/` and its bytes. A test
/// checks that this list and the files in `service/web/` agree, so none is forgotten.
const ASSETS: &[(&str, &[u8])] = &[
    ("app.css", include_bytes!("../web/app.css")),
    ("favicon.svg", include_bytes!("../web/favicon.svg")),
    ("js/board.js", include_bytes!("../web/js/board.js")),
    ("js/follows.js", include_bytes!("../web/js/follows.js")),
    ("js/format.js", include_bytes!("../web/js/format.js")),
    ("js/link.js", include_bytes!("../web/js/link.js")),
    ("js/main.js", include_bytes!("../web/js/main.js")),
    ("js/reducer.js", include_bytes!("../web/js/reducer.js")),
    ("js/session.js", include_bytes!("../web/js/session.js")),
    ("js/spoiler.js", include_bytes!("../web/js/spoiler.js")),
    ("js/sport.js", include_bytes!("../web/js/sport.js")),
    ("js/view.js", include_bytes!("../web/js/view.js")),
];

/// How long browsers may keep a versioned asset: a year, the longest that caches honour.
const ASSET_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Registers `/` and `/assets/...`.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(index))
        .route("/index.html", web::get().to(index))
        .route("/assets/{version}/{path:.*}", web::get().to(asset));
}

/// The hash of every asset, computed once: it names the asset path and is the page's `ETag`.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        // SipHash with fixed keys: the same build always gives the same version, and any change
        // of content gives another one (this is a cache key, not a security boundary).
        let mut hasher = std::hash::DefaultHasher::new();
        INDEX_HTML.hash(&mut hasher);
        for (path, bytes) in ASSETS {
            path.hash(&mut hasher);
            bytes.hash(&mut hasher);
        }
        format!("{:016x}", hasher.finish())
    })
}

/// `index.html` with the versioned asset path filled in.
fn index_html() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| INDEX_HTML.replace(ASSETS_PLACEHOLDER, &format!("/assets/{}", version())))
}

/// The `Content-Type` of an asset, from its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// What the page may load and connect to: only this service. `connect-src` names the
/// WebSocket endpoint explicitly because older browsers do not count `ws:` as `'self'`.
fn content_security_policy(request: &HttpRequest) -> String {
    let info = request.connection_info();
    let websocket = if info.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {websocket}://{host}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'; object-src 'none'",
        host = info.host()
    )
}

/// `GET /`: the page, revalidated on every load.
async fn index(request: HttpRequest) -> HttpResponse {
    let etag = format!("\"{}\"", version());
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((header::ETAG, etag))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(&request),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if fresh {
        return response.finish();
    }
    response
        .insert_header((header::CONTENT_TYPE, content_type("index.html")))
        .body(index_html())
}

/// `GET /assets/<version>/<path>`: one asset, cacheable for a year. An old version (a page
/// loaded before an upgrade) gets a 404 rather than new files it was not written against.
async fn asset(path: web::Path<(String, String)>) -> HttpResponse {
    let (asked_version, asset_path) = path.into_inner();
    let found = (asked_version == version())
        .then(|| ASSETS.iter().find(|(name, _)| *name == asset_path))
        .flatten();
    match found {
        Some((name, bytes)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, content_type(name)))
            .insert_header((header::CACHE_CONTROL, ASSET_CACHE_CONTROL))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(*bytes),
        None => HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(serde_json::json!({
                "error": "not_found",
                "message": format!("no asset {asset_path} in version {asked_version}; reload the page"),
            })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `service/web/` (but the shell and its README) is served, and nothing else.
    #[test]
    fn the_asset_list_matches_the_web_directory() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut on_disk = Vec::new();
        let mut pending = vec![root.clone()];
        while let Some(directory) = pending.pop() {
            for entry in std::fs::read_dir(&directory).expect("service/web is readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path
                    .strip_prefix(&root)
                    .expect("below service/web")
                    .to_string_lossy()
                    .replace('\\', "/");
                if relative != "index.html" && relative != "README.md" {
                    on_disk.push(relative);
                }
            }
        }
        on_disk.sort();
        let served: Vec<String> = ASSETS.iter().map(|(name, _)| (*name).to_owned()).collect();
        assert_eq!(served, on_disk, "update ASSETS in service/src/page.rs");
    }

    #[test]
    fn the_shell_names_the_versioned_assets() {
        let page = index_html();
        assert!(!page.contains(ASSETS_PLACEHOLDER));
        assert!(page.contains(&format!("/assets/{}/js/main.js", version())));
        assert_eq!(version().len(), 16);
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("js/main.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("notes"), "application/octet-stream");
    }
}
