//! End-to-end tests: real `topicd` processes driven by the real `topicctl`.

mod clients;
mod common;
mod lda;
mod lsi;
