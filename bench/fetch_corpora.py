"""Fetch the membership benchmark's multi-language corpora into bench/.corpora/ (git-ignored).

Real code from the package registries this project reaches: Debian packages that ship sources
(Go's standard library, Rust crates, the glibc source tarball), npm packages (JavaScript and
TypeScript) and the JDK's src.zip. Python is the interpreter's standard library, read in place.
Idempotent: a package already extracted (its `.done` stamp exists) is not fetched again.

    .venv/bin/python bench/fetch_corpora.py [--lang go ...]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stacklens.errors import InputError

CACHE = Path(__file__).resolve().parent / ".corpora"

# Debian packages: (name, pinned version, folders inside the package to keep).
DEB: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "go": [("golang-1.19-src", "1.19.8-2", ("usr/share/go-1.19/src",))],
    "c": [("glibc-source", "2.36-9+deb12u14", ("usr/src/glibc",))],
    "rust": [
        (f"librust-{name}-dev", version, ("usr/share/cargo/registry",))
        for name, version in (
            ("tokio", "1.24.2-1"),
            ("syn", "1.0.107-1"),
            ("regex", "1.7.1-1"),
            ("regex-syntax", "0.6.27-1"),
            ("chrono", "0.4.23-2"),
            ("serde", "1.0.152-2"),
            ("serde-json", "1.0.87-1"),
            ("hyper", "0.14.19-1"),
            ("rayon", "1.6.1-1"),
            ("rayon-core", "1.10.1-1"),
            ("nom", "7.1.1-1"),
            ("itertools", "0.10.3-1"),
            ("hashbrown", "0.12.3-1"),
            ("futures-util", "0.3.21-1"),
            ("aho-corasick", "0.7.19-1"),
            ("memchr", "2.5.0-1"),
            ("cargo", "0.66.0-1"),
            ("gimli", "0.27.0-1"),
            ("petgraph", "0.6.2-1"),
            ("rustls", "0.20.8-4"),
            ("nix", "0.26.1-3"),
            ("clap", "4.0.32-1"),
        )
    ],
}
# npm packages: (spec, folders inside the package to keep).
NPM: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "javascript": [
        ("three@0.164.1", ("src", "examples/jsm")),
        ("eslint@8.57.0", ("lib",)),
        ("webpack@5.91.0", ("lib",)),
        ("express@4.19.2", ("lib",)),
        ("mocha@10.4.0", ("lib",)),
        ("jquery@3.7.1", ("src",)),
        ("moment@2.30.1", ("src",)),
    ],
    "typescript": [
        ("rxjs@7.8.1", ("src",)),
        ("@types/node@20.12.12", ("",)),
        ("typescript@5.4.5", ("lib",)),
        ("@types/vscode@1.89.0", ("",)),
        ("@types/react@18.3.2", ("",)),
        ("zod@3.23.8", ("lib",)),
    ],
}
JDK_SOURCE = ("openjdk-17-source", "17.0.21.1+2-1~deb12u1")  # ships the JDK's src.zip
JAVA_MODULES = ("java.base/", "java.desktop/java/awt/", "java.sql/", "java.net.http/", "java.xml/")
LANGS = ("python", "javascript", "typescript", "java", "go", "rust", "c")


def _run(cmd: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True, timeout=900)
    except FileNotFoundError as e:
        raise InputError(f"{cmd[0]} is not installed: install it, or fetch with --lang for the others") from e
    except subprocess.CalledProcessError as e:
        raise InputError(f"`{' '.join(cmd)}` failed: {e.stderr.strip()[:400]}") from e
    return done.stdout


def _apt_download(name: str, version: str, tmp: Path) -> tuple[Path, str]:
    """The .deb of name=version, or of the current version when Debian no longer has the pin."""
    try:
        _run(["apt-get", "download", f"{name}={version}" if version else name], tmp)
    except InputError as e:
        if not version:
            raise InputError(f"cannot download the Debian package {name}: {e}. Run `apt-get update`") from e
        print(f"[corpora] {name}={version}: {e}; trying the version Debian has now", file=sys.stderr)
        try:
            _run(["apt-get", "download", name], tmp)
        except InputError as e2:
            raise InputError(
                f"cannot download the Debian package {name}: {e2}. Run `apt-get update` (as root) and "
                f"retry, or update its pin in bench/fetch_corpora.py"
            ) from e2
    deb = next(tmp.glob(f"{name}_*.deb"))
    return deb, deb.name.split("_")[1].replace("%3a", ":")


def _fetch_deb(lang: str, name: str, version: str, keep: tuple[str, ...]) -> dict[str, str]:
    dest = CACHE / lang / name
    if (dest / ".done").exists():
        return json.loads((dest / ".done").read_text())
    shutil.rmtree(dest, ignore_errors=True)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        deb, got = _apt_download(name, version, tmp)
        _run(["dpkg-deb", "-x", str(deb), "root"], tmp)
        dest.mkdir(parents=True)
        for folder in keep:
            src = tmp / "root" / folder
            for tarball in sorted(src.glob("*.tar.xz")):  # glibc-source ships one tarball
                _extract_tar(tarball.read_bytes(), dest, (".c", ".h"))
            if not any(src.glob("*.tar.xz")):
                shutil.copytree(src, dest / Path(folder).name, symlinks=True, dirs_exist_ok=True)
    stamp = {"package": name, "pinned": version, "version": got}
    (dest / ".done").write_text(json.dumps(stamp))
    return stamp


def _extract_tar(data: bytes, dest: Path, suffixes: tuple[str, ...], keep: tuple[str, ...] = ("",)) -> None:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            parts = m.name.split("/", 1)
            rel = parts[1] if len(parts) == 2 else ""
            if not m.isfile() or not rel.endswith(suffixes) or ".." in rel.split("/"):
                continue
            if not any(rel.startswith(k + "/") or k == "" for k in keep):
                continue
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            f = tar.extractfile(m)
            if f is not None:
                out.write_bytes(f.read())


def _fetch_npm(lang: str, spec: str, keep: tuple[str, ...]) -> dict[str, str]:
    dest = CACHE / lang / spec.replace("/", "__")
    if (dest / ".done").exists():
        return json.loads((dest / ".done").read_text())
    shutil.rmtree(dest, ignore_errors=True)
    suffixes = (".ts",) if lang == "typescript" else (".js", ".mjs", ".cjs")
    with tempfile.TemporaryDirectory() as t:
        try:
            name = _run(["npm", "pack", spec, "--loglevel=error", "--pack-destination", t], Path(t)).split()[
                -1
            ]
        except InputError as e:
            raise InputError(
                f"cannot download the npm package {spec}: {e}. Check that npm reaches its registry"
            ) from e
        dest.mkdir(parents=True)
        _extract_tar((Path(t) / name).read_bytes(), dest, suffixes, keep)
    stamp = {"package": spec, "pinned": spec, "version": spec}
    (dest / ".done").write_text(json.dumps(stamp))
    return stamp


def _fetch_java() -> dict[str, str]:
    dest = CACHE / "java" / "jdk-src"
    if (dest / ".done").exists():
        return json.loads((dest / ".done").read_text())
    shutil.rmtree(dest, ignore_errors=True)
    with tempfile.TemporaryDirectory() as t:
        deb, version = _apt_download(*JDK_SOURCE, Path(t))
        _run(["dpkg-deb", "-x", str(deb), "root"], Path(t))
        src = next((Path(t) / "root").rglob("src.zip"))
        dest.mkdir(parents=True)
        with zipfile.ZipFile(src) as z:
            for name in z.namelist():
                if name.endswith(".java") and name.startswith(JAVA_MODULES) and ".." not in name:
                    out = dest / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(z.read(name))
    stamp = {"package": JDK_SOURCE[0], "pinned": JDK_SOURCE[1], "version": version}
    (dest / ".done").write_text(json.dumps(stamp))
    return stamp


def fetch(langs: tuple[str, ...] = LANGS) -> dict[str, list[dict[str, str]]]:
    """Fetch what is missing for ``langs``; return each language's packages and versions."""
    got: dict[str, list[dict[str, str]]] = {}
    for lang in langs:
        if lang == "python":
            got[lang] = [{"package": "python stdlib", "pinned": "", "version": sys.version.split()[0]}]
        elif lang == "java":
            got[lang] = [_fetch_java()]
        elif lang in DEB:
            got[lang] = [_fetch_deb(lang, n, v, k) for n, v, k in DEB[lang]]
        else:
            got[lang] = [_fetch_npm(lang, s, k) for s, k in NPM[lang]]
    return got


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", nargs="*", choices=LANGS, default=list(LANGS))
    args = ap.parse_args()
    try:
        for lang, packages in fetch(tuple(args.lang)).items():
            print(f"{lang}: " + ", ".join(f"{p['package']} {p['version']}" for p in packages))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
