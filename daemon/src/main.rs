//! `topicd`: the daemon. See the library's documentation for the architecture.

use std::process::ExitCode;

use clap::Parser;
use topicd::cli::{Args, StoreCommand, accept_store, check_config, check_store, load_config};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3): how long freed memory stays with the
/// process before it goes back to the system.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keep freed memory for a second before giving it back (mimalloc's default is 10 ms). A
/// training pass frees and allocates buffers of tens of megabytes per chunk; given back at
/// once, each new one is faulted in and zeroed by the kernel again (on gcide's LSI job the
/// kernel's page zeroing was 12% of a worker's CPU and 25% of a dispatcher's; the job runs
/// 5–7% faster without it). A second is longer than a chunk takes and short enough that an
/// idle daemon still returns its memory. `MIMALLOC_PURGE_DELAY` in the environment wins.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an option's value; mimalloc reads options at each use.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    }
}

/// No transparent huge pages for this process unless `MIMALLOC_ALLOW_THP` asks for them
/// (mimalloc's default is to ask the kernel for them on all its memory). A huge page is
/// zeroed whole at its first touch, and the buffers of a job come and go by the megabyte: on
/// a VM whose host backs guest memory on demand, gcide's LDA job spent more kernel time
/// zeroing huge pages than computing (standalone 3.4–4.0 s with them, 1.9–2.4 s without; a
/// dispatcher's system time 0.8–1.0 s against its 0.2 s of user time). The flag is kept
/// across `exec` and covers every allocator in the process (mimalloc's, OpenBLAS's).
fn no_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes an integer flag and touches no memory of ours; a
        // kernel without it returns an error, and then nothing changes.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    no_transparent_huge_pages();
    // What topicd creates is private to its user and group (0750/0640) whatever the umask
    // it was started with; a stricter umask stays.
    // SAFETY: umask has no preconditions; no other thread runs yet.
    unsafe {
        let inherited = libc::umask(0o027);
        libc::umask(inherited | 0o027);
    }
    let args = Args::parse();
    if args.version {
        topicd_numerics::linalg::set_blas_threads(1);
        println!("topicd {}", env!("CARGO_PKG_VERSION"));
        println!(
            "BLAS/LAPACK: {}",
            topicd_numerics::linalg::blas_description()
        );
        println!(
            "threads: training uses one per core unless `threads` is set; BLAS calls are single-threaded (topicd parallelises above BLAS)"
        );
        return ExitCode::SUCCESS;
    }
    if args.check_config {
        let check = check_config(&args);
        for warning in &check.warnings {
            eprintln!("topicd: warning: {warning}");
        }
        if check.problems.is_empty() {
            println!("{}", check.summary);
            return ExitCode::SUCCESS;
        }
        for problem in &check.problems {
            eprintln!("{problem}");
        }
        let n = check.problems.len();
        eprintln!(
            "topicd: {n} problem{} in the settings; topicd would not start",
            if n == 1 { "" } else { "s" }
        );
        return ExitCode::FAILURE;
    }
    if args.check_store || args.accept_store {
        let run = if args.check_store {
            check_store(&args)
        } else {
            accept_store(&args)
        };
        return report(run);
    }
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(e) => {
            // The per-problem report of --check-config names every problem, not only the first.
            let problems = check_config(&args).problems;
            if problems.is_empty() {
                eprintln!("topicd: {e}");
            }
            for problem in problems {
                eprintln!("topicd: {problem}");
            }
            return ExitCode::FAILURE;
        }
    };
    let logs_to = topicd::logging::init(&config.log_level);
    log::debug!("logging to {logs_to}");
    topicd_numerics::linalg::set_blas_threads(1);
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads())
        .thread_name(|i| format!("topicd-train-{i}"))
        .build_global()
    {
        eprintln!("topicd: cannot start the training threads: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("topicd-io")
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(topicd::daemon::run(config)),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("topicd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Print what a store command found and exit with its status.
fn report(run: StoreCommand) -> ExitCode {
    for line in &run.stdout {
        println!("{line}");
    }
    for line in &run.stderr {
        eprintln!("{line}");
    }
    ExitCode::from(run.status)
}
