//! Read throughput of a Matrix Market corpus, plain, gzip and bzip2, through the daemon's
//! reader and parser (the path a job's first pass takes), and of the chunk cache that later
//! passes read.
//!
//! ```text
//! cargo run --release -p topicd --example read_throughput -- CORPUS.mm CORPUS.mm.gz CORPUS.mm.bz2 [--rounds 3] [--chunksize 2000]
//! ```
//!
//! The files are the same corpus stored three ways (the compression is found by the magic
//! bytes, as the daemon finds it). For each file, and for bzip2 with each decoding (serial
//! libbz2; parallel on 1 and on 2 decoding threads), two readings: **decode**, the text read to
//! its end, and **parse**, the text read and parsed into chunks of `--chunksize` documents by
//! `MmReader`. Then the chunk cache, written from the parsed chunks into the temporary
//! directory, read back. Each is run `--rounds` times; printed are the median (least–most) of
//! MB/s of text (10^6 bytes of decompressed text per second of wall time; for the cache, of
//! the text it stands for), millions of non-zeros per second, and CPU seconds (user + system
//! of this process, every thread). The files should be in the page cache (run twice): this
//! measures the decoding and the parsing, not the disk.

mod measure;
use measure::{cpu_time, summary};

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use topicd::corpus::source::{Bzip2Decoding, Compression, open_file_with};
use topicd::corpus::{ChunkCacheReader, ChunkCacheWriter, InputFile, MmOptions, MmReader, Piece};

struct Options {
    files: Vec<PathBuf>,
    rounds: usize,
    chunksize: usize,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        files: vec![],
        rounds: 3,
        chunksize: 2000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} takes a positive number"))
        };
        match a.as_str() {
            "--rounds" => o.rounds = value("--rounds")?,
            "--chunksize" => o.chunksize = value("--chunksize")?,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => o.files.push(PathBuf::from(a)),
        }
    }
    if o.files.is_empty() || o.rounds == 0 || o.chunksize == 0 {
        return Err("usage: read_throughput FILE... [--rounds N] [--chunksize N]".into());
    }
    Ok(o)
}

/// What one reading measured.
struct Sample {
    wall: Duration,
    cpu: Duration,
    text_bytes: u64,
    nnz: u64,
}

fn timed(run: impl FnOnce() -> Result<(u64, u64), String>) -> Result<Sample, String> {
    let (wall, cpu) = (Instant::now(), cpu_time());
    let (text_bytes, nnz) = run()?;
    Ok(Sample {
        wall: wall.elapsed(),
        cpu: cpu_time() - cpu,
        text_bytes,
        nnz,
    })
}

fn open(file: &InputFile, decoding: Bzip2Decoding) -> Result<Box<dyn BufRead + Send>, String> {
    Ok(open_file_with(file, decoding).map_err(|e| e.to_string())?.0)
}

/// The text to its end: its size.
fn decode(file: &InputFile, decoding: Bzip2Decoding) -> Result<(u64, u64), String> {
    let mut reader = open(file, decoding)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok((size, 0)),
            Ok(n) => size += n as u64,
            Err(e) => return Err(format!("{}: {e}", file.path().display())),
        }
    }
}

/// Every chunk, parsed; handed to `each`.
fn parse(
    file: &InputFile,
    decoding: Bzip2Decoding,
    chunksize: usize,
    mut each: impl FnMut(&Piece) -> Result<(), String>,
) -> Result<u64, String> {
    let reader = open(file, decoding)?;
    let mut mm =
        MmReader::new(reader, file.path(), MmOptions::default()).map_err(|e| e.to_string())?;
    let mut nnz = 0u64;
    while let Some(piece) = mm.next_piece(chunksize).map_err(|e| e.to_string())? {
        if let Piece::Chunk(c) = &piece {
            nnz += c.nnz() as u64;
        }
        each(&piece)?;
    }
    Ok(nnz)
}

fn read_cache(path: &Path) -> Result<u64, String> {
    let mut reader = ChunkCacheReader::open(path).map_err(|e| e.to_string())?;
    let mut nnz = 0u64;
    while let Some(piece) = reader.next_piece().map_err(|e| e.to_string())? {
        if let Piece::Chunk(c) = piece {
            nnz += c.nnz() as u64;
        }
    }
    Ok(nnz)
}

fn report(what: &str, samples: &[Sample], text_bytes: u64) {
    let per_s = |f: &dyn Fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
    let mb_s = per_s(&|s| text_bytes as f64 / 1e6 / s.wall.as_secs_f64());
    let nnz_s = per_s(&|s| s.nnz as f64 / 1e6 / s.wall.as_secs_f64());
    let cpu = per_s(&|s| s.cpu.as_secs_f64());
    let nnz = if samples[0].nnz > 0 {
        summary(nnz_s, 2)
    } else {
        "–".into()
    };
    println!(
        "| {what} | {} | {nnz} | {} |",
        summary(mb_s, 1),
        summary(cpu, 2)
    );
}

fn run() -> Result<(), String> {
    let o = options()?;
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{} rounds, chunks of {} documents, {threads} cores, load average {}",
        o.rounds,
        o.chunksize,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("\n| reading | MB/s of text | M non-zeros/s | CPU s |\n|---|---|---|---|");
    let mut text_bytes = 0;
    let mut cache_source = None;
    for path in &o.files {
        let file = InputFile::open(path).map_err(|e| e.to_string())?;
        let (_, compression) =
            open_file_with(&file, Bzip2Decoding::Serial).map_err(|e| e.to_string())?;
        let stored = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        let decodings: Vec<(String, Bzip2Decoding)> = match compression {
            Compression::Bzip2 => vec![
                ("bzip2 serial".into(), Bzip2Decoding::Serial),
                (
                    "bzip2 parallel, 1 thread".into(),
                    Bzip2Decoding::Parallel { threads: 1 },
                ),
                (
                    "bzip2 parallel, 2 threads".into(),
                    Bzip2Decoding::Parallel { threads: 2 },
                ),
            ],
            other => vec![(other.name().into(), Bzip2Decoding::Serial)],
        };
        for (name, decoding) in decodings {
            let decoded: Vec<Sample> = (0..o.rounds)
                .map(|_| timed(|| decode(&file, decoding)))
                .collect::<Result<_, _>>()?;
            text_bytes = decoded[0].text_bytes;
            report(
                &format!("{name}: decode ({:.1} MB stored)", stored as f64 / 1e6),
                &decoded,
                text_bytes,
            );
            let parsed: Vec<Sample> = (0..o.rounds)
                .map(|_| timed(|| Ok((0, parse(&file, decoding, o.chunksize, |_| Ok(()))?))))
                .collect::<Result<_, _>>()?;
            report(&format!("{name}: decode + parse"), &parsed, text_bytes);
        }
        cache_source.get_or_insert(file);
    }
    let file = cache_source.expect("at least one file");
    let dir = std::env::temp_dir().join(format!("read_throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let cache = dir.join("cache");
    let mut writer = ChunkCacheWriter::create(&cache).map_err(|e| e.to_string())?;
    parse(&file, Bzip2Decoding::default(), o.chunksize, |piece| {
        writer.append_piece(piece).map_err(|e| e.to_string())
    })?;
    writer.finish().map_err(|e| e.to_string())?;
    let size = std::fs::metadata(&cache).map_err(|e| e.to_string())?.len();
    let read: Vec<Sample> = (0..o.rounds)
        .map(|_| timed(|| Ok((0, read_cache(&cache)?))))
        .collect::<Result<_, _>>()?;
    report(
        &format!("chunk cache ({:.1} MB)", size as f64 / 1e6),
        &read,
        text_bytes,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("read_throughput: {e}");
        std::process::exit(2);
    }
}
