//! A result arriving page by page: the pages of one upload may come in any order and
//! several at once (a worker sends a few in flight), each checked against its place before
//! it is copied there; the result is complete when every page has arrived once.

use super::wire::PAGE_BYTES;

/// A result being uploaded.
pub struct Upload {
    bytes: Vec<u8>,
    arrived: Vec<bool>,
    missing: usize,
}

impl Upload {
    /// An upload of `total` bytes (bounded by the caller), none arrived yet. The buffer is
    /// zeroed memory, which the system provides as pages are written.
    pub fn new(total: u64) -> Upload {
        let pages = (total as usize).div_ceil(PAGE_BYTES);
        Upload {
            bytes: vec![0; total as usize],
            arrived: vec![false; pages],
            missing: pages,
        }
    }

    /// Its length.
    pub fn total(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Put the page at `offset` of an upload of `total` bytes in its place: refused unless
    /// the totals agree, the offset starts a page, the page has its full length (the last
    /// one, what is left) and has not arrived before.
    pub fn put(&mut self, offset: u64, total: u64, page: &[u8]) -> Result<(), String> {
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
        let seen = &mut self.arrived[index as usize];
        if *seen {
            return Err(format!("the page at offset {offset} arrived twice"));
        }
        *seen = true;
        self.missing -= 1;
        let start = offset as usize;
        self.bytes[start..start + page.len()].copy_from_slice(page);
        Ok(())
    }

    /// The whole result, if every page of its `length` bytes has arrived.
    pub fn complete(self, length: u64) -> Result<Vec<u8>, String> {
        if length != self.total() || self.missing > 0 {
            return Err(format!(
                "{length} bytes announced, {} of {} pages of {} bytes uploaded",
                self.arrived.len() - self.missing,
                self.arrived.len(),
                self.total()
            ));
        }
        Ok(self.bytes)
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
            upload.put(start as u64, total, page).unwrap();
        }
        assert_eq!(upload.complete(total).unwrap(), whole);
        assert_eq!(Upload::new(0).complete(0).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn a_page_out_of_place_twice_or_missing_is_refused() {
        let total = (PAGE_BYTES + 10) as u64;
        let mut upload = Upload::new(total);
        let page = vec![1; PAGE_BYTES];
        assert!(
            upload.put(3, total, &page).is_err(),
            "not at a page's start"
        );
        assert!(upload.put(0, total + 1, &page).is_err(), "another total");
        assert!(upload.put(0, total, &page[1..]).is_err(), "a short page");
        assert!(
            upload.put(PAGE_BYTES as u64, total, &page).is_err(),
            "too long a last page"
        );
        assert!(
            upload
                .put(2 * PAGE_BYTES as u64, total, &page[..10])
                .is_err(),
            "beyond the end"
        );
        upload.put(0, total, &page).unwrap();
        assert!(upload.put(0, total, &page).is_err(), "twice");
        assert!(upload.complete(total).is_err(), "the last page is missing");
    }
}
