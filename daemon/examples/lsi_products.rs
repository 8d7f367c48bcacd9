//! Speed of the two products that make up a power pass of LSI's randomized SVD, on the first
//! chunk of a real corpus: `Z = AᵀQ` (`products::project`, also what `topicctl infer` does
//! with `U`) and the chunk's term of `Y = A·Z` (`products::term_sums`).
//!
//! ```text
//! cargo run --release -p topicd --example lsi_products -- CORPUS.mm [--samples 500] [--chunksize 20000] [--rounds 3] [--blocks 20000,1000,100]
//! ```
//!
//! Each product is run as the daemon runs it (its blocks of documents sized by
//! `products::block_docs`) and then with each of `--blocks` documents per block (a block of
//! the whole chunk is the plain product, a row of `Q` or `Z` per non-zero).
//!
//! `Q` is `terms × samples` (topicd's default for K=400: 400 + 100 extra samples) and filled
//! with fixed pseudo-random values; the corpus may be plain, gzip or bzip2. Printed per
//! product: the wall seconds, the CPU seconds (every thread) and the rate in millions of
//! non-zeros × samples (multiply-adds) per second, each as the median (least–most) over
//! `--rounds`.

mod measure;
use measure::{cpu_time, summary};

use std::path::PathBuf;
use std::time::Instant;

use nalgebra::DMatrix;
use topicd::corpus::{MmOptions, MmReader, Piece};
use topicd_numerics::SparseChunk;
use topicd_numerics::lsi::products;

struct Options {
    file: PathBuf,
    samples: usize,
    chunksize: usize,
    rounds: usize,
    blocks: Vec<usize>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        file: PathBuf::new(),
        samples: 500,
        chunksize: 20_000,
        rounds: 3,
        blocks: vec![],
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|&v: &usize| v > 0)
                .ok_or(format!("{name} takes a positive number"))
        };
        match a.as_str() {
            "--samples" => o.samples = value("--samples")?,
            "--chunksize" => o.chunksize = value("--chunksize")?,
            "--rounds" => o.rounds = value("--rounds")?,
            "--blocks" => {
                o.blocks = args
                    .next()
                    .and_then(|v| v.split(',').map(|w| w.parse().ok()).collect::<Option<_>>())
                    .filter(|w: &Vec<usize>| w.iter().all(|&w| w > 0))
                    .ok_or("--blocks takes positive numbers separated by commas")?
            }
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => o.file = PathBuf::from(a),
        }
    }
    if o.file.as_os_str().is_empty() {
        return Err(
            "usage: lsi_products CORPUS.mm [--samples N] [--chunksize N] [--rounds N] [--blocks N,N...]".into(),
        );
    }
    Ok(o)
}

/// The first chunk of the corpus and its number of terms.
fn first_chunk(o: &Options) -> Result<(SparseChunk, usize), String> {
    let mut mm = MmReader::open(&o.file, MmOptions::default()).map_err(|e| e.to_string())?;
    let terms = mm.header().num_terms as usize;
    while let Some(piece) = mm.next_piece(o.chunksize).map_err(|e| e.to_string())? {
        if let Piece::Chunk(chunk) = piece {
            return Ok((chunk, terms));
        }
    }
    Err(format!("{}: no documents", o.file.display()))
}

/// The wall and CPU seconds of `rounds` runs of `f`.
fn time(rounds: usize, f: impl Fn()) -> (Vec<f64>, Vec<f64>) {
    let (mut wall, mut cpu) = (vec![], vec![]);
    for _ in 0..rounds {
        let (start, cpu_start) = (Instant::now(), cpu_time());
        f();
        wall.push(start.elapsed().as_secs_f64());
        cpu.push((cpu_time() - cpu_start).as_secs_f64());
    }
    (wall, cpu)
}

fn main() {
    let o = options().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let (chunk, terms) = first_chunk(&o).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let mut x = 1u64;
    let qt = DMatrix::from_fn(o.samples, terms, |_, _| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    });
    let work = (chunk.nnz() * o.samples) as f64 / 1e6;
    println!(
        "{}: {} documents, {} terms, {} non-zeros; {} samples",
        o.file.display(),
        chunk.num_docs(),
        terms,
        chunk.nnz(),
        o.samples
    );
    let report = |name: &str, (wall, cpu): (Vec<f64>, Vec<f64>)| {
        let rates = wall.iter().map(|s| work / s).collect();
        println!(
            "{name:<24} {} s, CPU {} s   {} M multiply-adds/s",
            summary(wall, 3),
            summary(cpu, 3),
            summary(rates, 0)
        );
    };
    let a = products::TermMajor::new(&chunk, terms);
    let block = products::block_docs(o.samples);
    let zt = products::project(&chunk, &qt);
    let run = |f: &dyn Fn()| time(o.rounds, f);
    report(
        &format!("project ({block}, chosen)"),
        run(&|| drop(products::project(&chunk, &qt))),
    );
    report(
        &format!("term_sums ({block}, chosen)"),
        run(&|| drop(products::term_sums(&a, &zt))),
    );
    for &block in &o.blocks {
        report(
            &format!("project ({block})"),
            run(&|| {
                drop(products::project_in_blocks(
                    &a,
                    chunk.num_docs(),
                    &qt,
                    block,
                ))
            }),
        );
        report(
            &format!("term_sums ({block})"),
            run(&|| drop(products::term_sums_in_blocks(&a, &zt, block))),
        );
    }
}
