//! The part URLs of one upload, fetched in batches of up to [`URL_BATCH`]
//! (`POST .../part-urls`) as parts need them, and fetched again for a part whose URL
//! was refused or is about to expire.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, Shared};
use sealdrop_protocol::wire::{PartUrl, PartUrlsRequest, PartUrlsResponse};

use crate::error::ClientError;
use crate::http::Http;
use crate::platform;

/// Part URLs asked for per `part-urls` call (the API's maximum).
const URL_BATCH: usize = 100;
/// A cached part URL this close to its expiry is fetched again before use (ms).
const URL_MARGIN_MS: u64 = 60_000;

/// Where part URLs come from: `POST .../part-urls`.
pub(crate) struct UrlSource {
    pub http: Http,
    pub url: String,
    pub token: String,
    pub part_count: u32,
}

type Batch = Shared<LocalBoxFuture<'static, Result<(), ClientError>>>;

/// The part URLs of one upload, fetched in batches of up to [`URL_BATCH`] as parts
/// need them, one batch at a time: parts that start together wait for the same call.
pub(crate) struct PartUrls {
    source: Rc<UrlSource>,
    cache: Rc<RefCell<HashMap<u32, PartUrl>>>,
    pending: RefCell<Option<Batch>>,
}

impl PartUrls {
    pub(crate) fn new(source: UrlSource) -> Self {
        Self {
            source: Rc::new(source),
            cache: Rc::default(),
            pending: RefCell::new(None),
        }
    }

    /// The URL to `PUT` part `part` to.
    pub(crate) async fn get(&self, part: u32) -> Result<String, ClientError> {
        loop {
            if let Some(url) = self.cached(part, true) {
                return Ok(url);
            }
            let (batch, mine) = {
                let mut pending = self.pending.borrow_mut();
                match &*pending {
                    Some(batch) if batch.peek().is_none() => (batch.clone(), false),
                    _ => {
                        let batch = self.fetch_batch(part).boxed_local().shared();
                        *pending = Some(batch.clone());
                        (batch, true)
                    }
                }
            };
            batch.await?;
            if mine {
                // Just fetched: use it even if our clock thinks it is about to expire.
                return self.cached(part, false).ok_or_else(|| {
                    ClientError::InvalidResponse(format!("part-urls gave no URL for part {part}"))
                });
            }
        }
    }

    /// Drops part `part`'s URL (refused: expired, or signed wrong).
    pub(crate) fn forget(&self, part: u32) {
        self.cache.borrow_mut().remove(&part);
    }

    fn cached(&self, part: u32, fresh: bool) -> Option<String> {
        let cache = self.cache.borrow();
        let url = cache.get(&part)?;
        let usable = !fresh || url.expires_at > platform::now_ms() + URL_MARGIN_MS;
        usable.then(|| url.url.clone())
    }

    /// Asks for URLs for `first` and the following parts that have none.
    fn fetch_batch(&self, first: u32) -> impl Future<Output = Result<(), ClientError>> + 'static {
        let source = self.source.clone();
        let cache = self.cache.clone();
        let now = platform::now_ms();
        let parts: Vec<u32> = {
            let cache = cache.borrow();
            (first..=source.part_count)
                .filter(|p| {
                    *p == first
                        || cache
                            .get(p)
                            .is_none_or(|u| u.expires_at <= now + URL_MARGIN_MS)
                })
                .take(URL_BATCH)
                .collect()
        };
        async move {
            let body = PartUrlsRequest {
                part_numbers: parts,
            };
            let answer: PartUrlsResponse = source
                .http
                .json(
                    "POST part-urls",
                    "POST",
                    &source.url,
                    Some(&source.token),
                    Some(&body),
                )
                .await?;
            let mut cache = cache.borrow_mut();
            for url in answer.urls {
                cache.insert(url.part_number, url);
            }
            Ok(())
        }
    }
}
