//! Rebuilds the relay when the page changes. The page (`www/dist`, made by
//! `scripts/build-page.sh`) is embedded at compile time (see `src/web/page.rs`); cargo tracks the
//! files that were embedded, but not a page that appears after a build without one. Watching
//! `www/` (which always exists; cargo scans a directory recursively) covers both.

fn main() {
    println!("cargo::rerun-if-changed=../www");
    println!("cargo::rerun-if-changed=build.rs");
}
