//! The parallel reader against the serial decoder (libbz2's streaming `MultiBzDecoder`), on
//! multi-block, multi-stream and mixed-level files, and on damaged ones.

use std::io::{Cursor, Read, Write};

use super::scan::{Block, Found, Scanner};
use super::*;

/// `data` compressed as one bzip2 stream of `level`.
pub(crate) fn compress(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Matrix-Market-like lines that compress about 3:1, `n` of them; the block magic's bytes
/// ("1AY&SY") among them now and then.
pub(crate) fn text(n: u32) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut out = Vec::new();
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let line = if i % 997 == 0 {
            "1AY&SY\u{17}rE8P\u{90}\n".to_string()
        } else {
            format!(
                "{} {} {}\n",
                i / 50 + 1,
                x % 100_000 + 1,
                (x >> 40) % 17 + 1
            )
        };
        out.extend_from_slice(line.as_bytes());
    }
    out
}

pub(crate) fn serial(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    bzip2::bufread::MultiBzDecoder::new(Cursor::new(compressed)).read_to_end(&mut out)?;
    Ok(out)
}

/// What the parallel reader gives: the bytes it handed out, and its error if any.
pub(crate) fn parallel(compressed: &[u8], threads: usize) -> (Vec<u8>, Option<io::Error>) {
    let reader = ParallelBzip2Reader::new(Cursor::new(compressed.to_vec()), threads).unwrap();
    drain(reader)
}

fn drain(mut reader: ParallelBzip2Reader) -> (Vec<u8>, Option<io::Error>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 77_777];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                // the error stays
                assert_eq!(
                    reader.read(&mut buf).unwrap_err().to_string(),
                    e.to_string()
                );
                return (out, Some(e));
            }
        }
    }
}

fn found(compressed: &[u8]) -> Vec<Found> {
    let mut scanner = Scanner::new(Cursor::new(compressed.to_vec()));
    std::iter::from_fn(|| scanner.next_found().unwrap()).collect()
}

fn blocks(found: &[Found]) -> usize {
    found
        .iter()
        .filter(|f| matches!(f, Found::Block(_)))
        .count()
}

#[test]
fn many_blocks_of_one_stream_equal_the_serial_decoder() {
    let data = text(250_000); // about 3.5 MB: 35 blocks at level 1
    let bz = compress(&data, 1);
    assert!(blocks(&found(&bz)) >= 30, "{}", blocks(&found(&bz)));
    assert_eq!(serial(&bz).unwrap(), data);
    for threads in [1, 2, 3] {
        let (out, error) = parallel(&bz, threads);
        assert!(error.is_none(), "{error:?}");
        assert!(out == data, "{threads} threads: other bytes");
    }
}

#[test]
fn streams_of_mixed_levels_empty_and_tiny_equal_the_serial_decoder() {
    let (a, b, c) = (text(40_000), text(130_000), text(3));
    let mut bz = compress(&a, 1);
    bz.extend(compress(b"", 9));
    bz.extend(compress(&b, 9));
    bz.extend(compress(&c, 3));
    bz.extend(compress(&b[..200_000], 2));
    let want = [&a[..], &b, &c, &b[..200_000]].concat();
    assert_eq!(serial(&bz).unwrap(), want);
    let found = found(&bz);
    let ends = found.len() - blocks(&found);
    assert_eq!(ends, 5);
    let (out, error) = parallel(&bz, 2);
    assert!(error.is_none(), "{error:?}");
    assert!(out == want);
    // an empty stream alone is an empty file
    assert_eq!(parallel(&compress(b"", 5), 2).0, b"");
}

/// The bytes handed out before an error are the file's, and an error is not the end.
fn assert_fails_cleanly(bz: &[u8], want: &[u8], what: &str) -> String {
    let (out, error) = parallel(bz, 2);
    let error = error.unwrap_or_else(|| panic!("{what}: no error"));
    assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{what}: {error}");
    assert!(
        want.starts_with(&out),
        "{what}: other bytes before the error"
    );
    assert!(serial(bz).is_err(), "{what}: the serial decoder reads it");
    error.to_string()
}

#[test]
fn a_corrupt_byte_anywhere_is_an_error_after_the_good_blocks() {
    let data = text(100_000);
    let bz = compress(&data, 1);
    for at in [5, 11, 20, bz.len() / 3, bz.len() / 2, bz.len() - 12] {
        let mut bad = bz.clone();
        bad[at] ^= 0x10;
        let message = assert_fails_cleanly(&bad, &data, &format!("byte {at}"));
        assert!(
            message.contains("does not decode") || message.contains("no block"),
            "byte {at}: {message}"
        );
    }
    // the middle: the blocks before it come out
    let mut bad = bz.clone();
    bad[bz.len() / 2] ^= 0x01;
    let (out, _) = parallel(&bad, 2);
    assert!(out.len() > data.len() / 3, "{}", out.len());
}

#[test]
fn a_wrong_stream_crc_is_an_error() {
    let data = text(30_000);
    let mut bz = compress(&data, 1);
    let n = bz.len();
    bz[n - 2] ^= 0x40; // inside the combined CRC, whatever the padding
    let message = assert_fails_cleanly(&bz, &data, "stream CRC");
    assert!(message.contains("has a CRC of"), "{message}");
}

#[test]
fn a_truncated_file_is_an_error_wherever_it_ends() {
    let data = text(60_000);
    let one = compress(&data, 1);
    let mut two = one.clone();
    two.extend(compress(&data, 2));
    let want = [&data[..], &data].concat();
    for len in [1, 3, 4, 10, 14, one.len() / 2, one.len() - 5, one.len() - 1] {
        let message = assert_fails_cleanly(&one[..len], &data, &format!("cut at {len}"));
        assert!(
            message.contains("truncated") || message.contains("no bzip2 stream header"),
            "cut at {len}: {message}"
        );
    }
    for len in [one.len() + 1, one.len() + 3, one.len() + 100, two.len() - 1] {
        assert_fails_cleanly(&two[..len], &want, &format!("cut at {len}"));
    }
}

#[test]
fn bytes_after_the_last_stream_are_an_error() {
    let data = text(1000);
    let mut bz = compress(&data, 9);
    bz.extend_from_slice(b"garbage after the stream");
    let message = assert_fails_cleanly(&bz, &data, "garbage");
    assert!(message.contains("are not bzip2 data"), "{message}");
}

/// The blocks of `bz` with block `which` cut into pieces at `cuts` (bits into the block, from
/// its end when negative), as false block magics would cut it.
fn cut_block(bz: &[u8], which: usize, cuts: &[i64]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut index = 0;
    for f in found(bz) {
        match f {
            Found::Block(b) if index == which => {
                index += 1;
                let mut start = 0;
                let bits = b.bits as i64;
                let cuts = cuts
                    .iter()
                    .map(|&c| if c < 0 { bits + c } else { c } as u64);
                for end in cuts.chain([b.bits]) {
                    // a false magic's "CRC" is any 32 bits
                    let crc = if start == 0 { b.crc } else { 0x5eed_f00d };
                    out.push(Found::Block(Block::new(
                        &b.stream,
                        32 + start,
                        end - start,
                        b.level,
                        crc,
                        b.offset,
                    )));
                    start = end;
                }
            }
            Found::Block(b) => {
                index += 1;
                out.push(Found::Block(b));
            }
            end => out.push(end),
        }
    }
    out
}

fn read_found(found: Vec<Found>, threads: usize) -> (Vec<u8>, Option<io::Error>) {
    let mut found = found.into_iter();
    drain(ParallelBzip2Reader::start(move || Ok(found.next()), threads).unwrap())
}

#[test]
fn a_block_cut_by_false_magics_is_joined_again() {
    let data = text(50_000);
    let bz = compress(&data, 1);
    let n = blocks(&found(&bz));
    assert!(n >= 5);
    for (which, cuts) in [
        (0, vec![1000]),
        (2, vec![90, 40_000]),
        (n - 1, vec![5_000, 5_001, -100]),
        (n - 2, vec![-81]),
    ] {
        let pieces = cut_block(&bz, which, &cuts);
        assert_eq!(blocks(&pieces), n + cuts.len());
        let (out, error) = read_found(pieces, 2);
        assert!(error.is_none(), "block {which} cut at {cuts:?}: {error:?}");
        assert!(out == data, "block {which} cut at {cuts:?}: other bytes");
    }
}

#[test]
fn a_corrupt_block_is_not_joined_beyond_the_size_of_a_block() {
    let data = text(100_000);
    let bz = compress(&data, 1);
    let mut pieces = found(&bz);
    let Found::Block(b) = &mut pieces[1] else {
        panic!("a block")
    };
    let at = b.stream.len() / 2;
    b.stream[at] ^= 0x08;
    let (out, error) = read_found(pieces, 2);
    let message = error.unwrap().to_string();
    assert!(message.contains("does not decode"), "{message}");
    assert!(data.starts_with(&out) && !out.is_empty());
}

#[test]
fn dropping_the_reader_early_ends_its_threads() {
    let data = text(200_000);
    let bz = compress(&data, 1);
    for _ in 0..20 {
        let mut r = ParallelBzip2Reader::new(Cursor::new(bz.clone()), 2).unwrap();
        let mut buf = [0u8; 1000];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..], &data[..1000]);
        drop(r); // joins its threads: a hang would fail the test by its timeout
    }
}
