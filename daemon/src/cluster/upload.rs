//! A result arriving page by page: the pages of one upload may come in any order and
//! several at once (a worker sends a few in flight), each checked against its place before
//! it is kept there; the result is complete when every page has arrived once. The pages
//! are kept as they came and decoded from there, never gathered into one buffer.

use bytes::Bytes;

use super::wire::PAGE_BYTES;

/// A result being uploaded.
pub struct Upload {
    total: u64,
    /// The pages by place; `None` until one arrives.
    pages: Vec<Option<Bytes>>,
    missing: usize,
}

impl Upload {
    /// An upload of `total` bytes (bounded by the caller), none arrived yet.
    pub fn new(total: u64) -> Upload {
        let pages = (total as usize).div_ceil(PAGE_BYTES);
        Upload {
            total,
            pages: vec![None; pages],
            missing: pages,
        }
    }

    /// Its length.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Put the page at `offset` of an upload of `total` bytes in its place: refused unless
    /// the totals agree, the offset starts a page, the page has its full length (the last
    /// one, what is left) and has not arrived before.
    pub fn put(&mut self, offset: u64, total: u64, page: Bytes) -> Result<(), String> {
        if total != self.total() {
            return Err(format!(
                "a page of an upload of {total} bytes, announced as {} before",
                self.total()
            ));
        }
        let index = offset / PAGE_BYTES as u64;
        let fits = offset.is_multiple_of(PAGE_BYTES as u64)
            && offset < total
            && page.len() as u64 == (total - offset).min(PAGE_BYTES as u64);
        if !fits {
            return Err(format!(
                "a page of {} bytes at offset {offset} of {total}",
                page.len()
            ));
        }
        let slot = &mut self.pages[index as usize];
        if slot.is_some() {
            return Err(format!("the page at offset {offset} arrived twice"));
        }
        *slot = Some(page);
        self.missing -= 1;
        Ok(())
    }

    /// The whole result as its pages in order, if every page of its `length` bytes has
    /// arrived.
    pub fn complete(self, length: u64) -> Result<Vec<Bytes>, String> {
        if length != self.total() || self.missing > 0 {
            return Err(format!(
                "{length} bytes announced, {} of {} pages of {} bytes uploaded",
                self.pages.len() - self.missing,
                self.pages.len(),
                self.total()
            ));
        }
        Ok(self.pages.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_in_any_order_make_the_whole() {
        let whole: Vec<u8> = (0..2 * PAGE_BYTES + 5).map(|i| (i % 251) as u8).collect();
        let total = whole.len() as u64;
        let mut upload = Upload::new(total);
        for i in [2, 0, 1] {
            let start = i * PAGE_BYTES;
            let page = &whole[start..(start + PAGE_BYTES).min(whole.len())];
            upload
                .put(start as u64, total, Bytes::copy_from_slice(page))
                .unwrap();
        }
        assert_eq!(upload.complete(total).unwrap().concat(), whole);
        assert!(Upload::new(0).complete(0).unwrap().is_empty());
    }

    #[test]
    fn a_page_out_of_place_twice_or_missing_is_refused() {
        let total = (PAGE_BYTES + 10) as u64;
        let mut upload = Upload::new(total);
        let page = Bytes::from(vec![1; PAGE_BYTES]);
        assert!(
            upload.put(3, total, page.clone()).is_err(),
            "not at a page's start"
        );
        assert!(
            upload.put(0, total + 1, page.clone()).is_err(),
            "another total"
        );
        assert!(
            upload.put(0, total, page.slice(1..)).is_err(),
            "a short page"
        );
        assert!(
            upload.put(PAGE_BYTES as u64, total, page.clone()).is_err(),
            "too long a last page"
        );
        assert!(
            upload
                .put(2 * PAGE_BYTES as u64, total, page.slice(..10))
                .is_err(),
            "beyond the end"
        );
        upload.put(0, total, page.clone()).unwrap();
        assert!(upload.put(0, total, page.clone()).is_err(), "twice");
        assert!(upload.complete(total).is_err(), "the last page is missing");
    }
}
