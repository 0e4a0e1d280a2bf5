#!/usr/bin/env python3
"""Packages every publishable crate (`cargo package --workspace --no-verify`) and checks that
each .crate carries every file its sources include at compile time (include_str!/include_bytes!):
the mistake that breaks `cargo install llmpulse` from the registry but no build in a checkout.
A full `cargo package` verify would compile each crate again from its tarball (six more builds of
the workspace); this reads the archives instead."""
import posixpath
import re
import subprocess
import sys
import tarfile
from pathlib import Path

INCLUDE = re.compile(r'include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)')

subprocess.run(
    ["cargo", "package", "--workspace", "--exclude", "llmpulse-functions",
     "--no-verify", "--allow-dirty", "--quiet"],
    check=True,
)
crates = sorted(Path("target/package").glob("*.crate"))
if not crates:
    sys.exit("no .crate files in target/package")
missing = []
for crate in crates:
    before = len(missing)
    with tarfile.open(crate) as tar:
        names = set(tar.getnames())
        for m in tar.getmembers():
            if not m.name.endswith(".rs"):
                continue
            text = tar.extractfile(m).read().decode("utf-8", "replace")
            for rel in INCLUDE.findall(text):
                if "concat!" in rel or "env!" in rel:
                    continue
                path = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), rel))
                if path not in names:
                    missing.append(f"{crate.name}: {m.name} includes {rel}, not in the package")
    if len(missing) == before:
        print(f"{crate.name}: {len(names)} files, every include present")
if missing:
    print("\n".join(missing))
    sys.exit(1)
