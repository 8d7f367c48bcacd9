//! End-to-end tests: real `topicd` processes driven by the real `topicctl`.

mod checkpoint_models;
mod chunk_cache;
mod clients;
mod cluster;
mod cluster_harness;
mod cluster_netns;
mod cluster_ops;
mod coherence;
mod common;
mod gensim_io;
mod import;
mod init_from;
mod input_checks;
mod inputs;
mod lda;
mod lifecycle;
mod lsi;
mod retry;
mod scale;
mod store;
