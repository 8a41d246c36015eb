//! The request body reader: multipart forms (text parts, `@jsonPayload`
//! parts, file parts streamed into staging files), url-encoded forms and JSON,
//! under a small size limit. Must never panic or hang, must answer a 4xx for
//! anything it refuses (never a 500), and must keep no more than `LIMIT`
//! bytes of file data.
#![no_main]

use actix_web::FromRequest;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::test::TestRequest;
use actix_web::web;
use ferrobase::api::multipart::read_body;
use ferrobase::files::{LocalStorage, Store};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

const LIMIT: usize = 16 * 1024;
const CONTENT_TYPES: [&str; 4] = [
    "multipart/form-data; boundary=B",
    "multipart/form-data; boundary=\"--x y\"",
    "application/x-www-form-urlencoded",
    "application/json",
];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    store: Store,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store: Store = Arc::new(LocalStorage::open(dir.path()).expect("local storage"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Fixture { runtime, store, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let fixture = fixture();
    let content_type = CONTENT_TYPES[usize::from(kind) % CONTENT_TYPES.len()];
    let (req, mut payload) = TestRequest::post()
        .insert_header((CONTENT_TYPE, content_type))
        .set_payload(body.to_vec())
        .to_http_parts();
    fixture.runtime.block_on(async {
        let payload = web::Payload::from_request(&req, &mut payload)
            .await
            .expect("a payload extractor never fails");
        let keep = |name: &str| name.starts_with('f').then_some(LIMIT as u64);
        match read_body(&req, payload, LIMIT, Some(&fixture.store), &keep).await {
            Ok(read) => {
                let stored: u64 = read.uploads.iter().map(|u| u.file.size).sum();
                assert!(stored <= LIMIT as u64, "{stored} bytes of files kept past the limit");
            }
            Err(e) => {
                let status = e.status().as_u16();
                assert!((400..500).contains(&status), "answered {status} for a bad body");
            }
        }
    });
});
