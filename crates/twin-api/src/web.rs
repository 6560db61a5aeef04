//! The built web app (`web/dist`) at `/`: its files from a folder, `index.html` for any other page a browser opens
//! (the app routes itself), content-hashed assets cached for a year, everything else revalidated.
//!
//! The API prefixes (`/ngsi-ld`, `/api`, `/ogc`, `/tiles`) never fall through to the app: an unknown API path
//! stays a ProblemDetails 404, whatever the app would have shown.

use std::path::{Component, Path, PathBuf};

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};
use twin_model::ErrorKind;

use crate::ApiError;

/// Paths that belong to the API.
const API_PREFIXES: [&str; 4] = ["/ngsi-ld/", "/api/", "/ogc", "/tiles"];

/// Whether `dir` holds a built web app.
pub fn is_built(dir: &Path) -> bool {
    dir.join("index.html").is_file()
}

fn not_found() -> Response {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        "no such resource in this API; see docs/api.md for the endpoints",
    )
    .into_response()
}

/// The response to a request no API route took: a file of the app, the app's page, or a ProblemDetails 404.
pub async fn serve(dir: Option<PathBuf>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let Some(dir) = dir else {
        return not_found();
    };
    let api = API_PREFIXES
        .iter()
        .any(|p| path.starts_with(p) || path == p.trim_end_matches('/'));
    if api || !matches!(*req.method(), Method::GET | Method::HEAD) {
        return not_found();
    }
    // a file that exists is served as it is; a missing file with an extension is a 404; any other path is a page
    // of the app
    let relative = path.trim_start_matches('/');
    let unsafe_path = Path::new(relative)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)));
    let is_file = !relative.is_empty() && !unsafe_path && dir.join(relative).is_file();
    let looks_like_file = Path::new(relative).extension().is_some();
    if !is_file && looks_like_file {
        return not_found();
    }
    let index = dir.join("index.html");
    let result = if is_file {
        ServeDir::new(&dir).oneshot(req).await
    } else {
        ServeFile::new(&index).oneshot(req).await
    };
    let mut resp = match result {
        Ok(r) => r.into_response(),
        Err(e) => {
            return ApiError::new(
                ErrorKind::InternalError,
                format!("cannot read the web app: {e}"),
            )
            .into_response()
        }
    };
    if resp.status() == StatusCode::NOT_FOUND {
        return not_found();
    }
    let cache = if is_file && relative.starts_with("assets/") {
        // Vite names these by their content's hash
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    async fn get(dir: Option<PathBuf>, path: &str) -> (StatusCode, String, Option<String>) {
        let req = Request::builder().uri(path).body(Body::empty()).unwrap();
        let resp = serve(dir, req).await;
        let status = resp.status();
        let cache = resp
            .headers()
            .get(header::CACHE_CONTROL)
            .map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned(), cache)
    }

    #[tokio::test]
    async fn files_pages_and_api_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<html>app</html>").unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("assets/index-abc123.js"), "console.log(1)").unwrap();
        std::fs::write(dir.path().join("favicon.svg"), "<svg/>").unwrap();
        std::fs::write(dir.path().parent().unwrap().join("secret.txt"), "no").ok();
        let d = Some(dir.path().to_path_buf());
        let (s, body, cache) = get(d.clone(), "/").await;
        assert_eq!(
            (s, body.as_str(), cache.as_deref()),
            (StatusCode::OK, "<html>app</html>", Some("no-cache"))
        );
        let (s, body, cache) = get(d.clone(), "/assets/index-abc123.js").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(body, "console.log(1)");
        assert!(cache.unwrap().contains("immutable"));
        assert_eq!(get(d.clone(), "/favicon.svg").await.0, StatusCode::OK);
        // a page of the app
        let (s, body, _) = get(d.clone(), "/scenarios/closure-1").await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "<html>app</html>"));
        // missing files, escapes and API paths are 404 ProblemDetails
        for p in [
            "/assets/missing.js",
            "/../secret.txt",
            "/ngsi-ld/v1/nothing",
            "/api/nothing",
            "/tiles/x.mvt",
            "/ogc",
        ] {
            let (s, body, _) = get(d.clone(), p).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{p}");
            assert!(body.contains("ResourceNotFound"), "{p}: {body}");
        }
        // without a built app, everything unknown is a 404
        assert_eq!(get(None, "/").await.0, StatusCode::NOT_FOUND);
    }
}
