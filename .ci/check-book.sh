#!/usr/bin/env bash
# The book as its readers get it: mdbook builds docs/ to HTML and mdbook-linkcheck2 checks every
# link to another page or file (offline; a broken one fails the build). Both are Rust crates,
# installed once into the CI cache.
# The reference pages generated from the code are checked by the reference_docs test.
set -euo pipefail
cache="${LLMPULSE_CI_CACHE:?}"
tools="$cache/book-tools"
if [ ! -x "$tools/bin/mdbook" ]; then
  cargo install --quiet --locked --root "$tools" mdbook --version 0.5.4 --no-default-features
fi
if [ ! -x "$tools/bin/mdbook-linkcheck2" ]; then
  cargo install --quiet --locked --root "$tools" mdbook-linkcheck2 --version 0.13.0
fi
export PATH="$tools/bin:$PATH"
out=target/book
rm -rf "$out"
mdbook build docs --dest-dir "$PWD/$out"
test -f "$out/html/index.html" && test -f "$out/html/reference/record-fields.html"
test -d "$out/linkcheck2" || { echo "the link check did not run"; exit 1; }
echo "book: $(find "$out/html" -name '*.html' | wc -l) pages, links checked"
