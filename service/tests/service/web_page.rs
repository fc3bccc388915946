//! The fans' web page at `/`: served from the binary with the right types and cache headers.

use scoreline_testkit::TestApp;

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_types_and_cache_headers() {
    let app = TestApp::in_memory().await.unwrap();

    let page = app.get("/").await.unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(
        policy.contains(&format!("ws://127.0.0.1:{}", app.port())),
        "{policy}"
    );
    assert!(page.body.contains("<main"), "the shell has a main landmark");

    // The shell names its assets under a versioned path; each is cacheable for a year.
    let start = page
        .body
        .find("/assets/")
        .expect("an asset path in the page");
    let version: String = page.body[start + "/assets/".len()..]
        .chars()
        .take_while(|c| *c != '/')
        .collect();
    for (path, content_type) in [
        ("js/main.js", "text/javascript; charset=utf-8"),
        ("js/reducer.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let asset = app.get(&format!("/assets/{version}/{path}")).await.unwrap();
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.header("content-type"), Some(content_type), "{path}");
        assert_eq!(
            asset.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{path}"
        );
        assert!(!asset.body.is_empty(), "{path}");
    }

    // A page from an older build asks for its own version: not found, never mixed files.
    let stale = app
        .get("/assets/0000000000000000/js/main.js")
        .await
        .unwrap();
    assert_eq!(stale.status, 404);
    assert_eq!(
        app.get(&format!("/assets/{version}/js/nothing.js"))
            .await
            .unwrap()
            .status,
        404
    );

    // Revalidation: the same build answers 304 without a body.
    let etag = page.header("etag").unwrap().to_owned();
    let again = scoreline_testkit::http(
        "GET",
        &app.http_url("/"),
        vec![("If-None-Match".to_owned(), etag)],
        None,
    )
    .await
    .unwrap();
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
}
