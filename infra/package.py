"""Build the function app's deployment package: the repository minus what `.funcignore` excludes.

    python3 infra/package.py --out app.zip      # write the zip
    python3 infra/package.py --list             # print the files it would contain

`.funcignore` uses .gitignore syntax, as Azure Functions Core Tools reads it: `#` comments, `!`
re-includes, a trailing `/` matches directories only, a pattern with a `/` elsewhere is anchored at
the repository root, otherwise it matches a name at any depth; `*` and `?` stay within one path
segment, `**` spans segments. An excluded directory is not descended into. `requirements.txt` goes
in the package so that the remote build installs the dependencies. Standard library only.

Whatever `.funcignore` says, the package never holds what may carry secrets or local state: the azd
environments (`.azure/`, where azd keeps its `.env` files), `.env*` files, `local.settings.json`,
`.python_packages/` (locally installed dependencies; the remote build installs its own) and `.git/`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Fixed timestamp: the same tree gives the same zip.
_EPOCH = (1980, 1, 1, 0, 0, 0)
# Never packaged, whatever .funcignore says (names at any depth; directories are not descended into).
NEVER_PACKAGED_DIRS = frozenset({".azure", ".python_packages", ".git"})
NEVER_PACKAGED_FILES = frozenset({"local.settings.json"})


def never_packaged(name: str, is_dir: bool) -> bool:
    """Whether an entry called `name` may hold secrets or local state, and so never goes in the package."""
    if name.startswith(".env"):  # .env, .env.local, .envrc, ...
        return True
    return name in (NEVER_PACKAGED_DIRS if is_dir else NEVER_PACKAGED_FILES)


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    negated: bool
    directory_only: bool


def _translate(glob: str) -> str:
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end].replace("\\", "\\\\")
                out.append(f"[{'^' + body[1:] if body.startswith('!') else body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def parse_rules(text: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:]
        directory_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        pattern = _translate(line)
        # Unanchored patterns match the entry's name at any depth.
        regex = re.compile(pattern if anchored else f"(?:.*/)?{pattern}")
        rules.append(Rule(regex, negated, directory_only))
    return rules


def ignored(path: str, is_dir: bool, rules: list[Rule]) -> bool:
    """Whether `path` (relative, with `/`) is excluded; the last matching rule decides."""
    result = False
    for rule in rules:
        if rule.directory_only and not is_dir:
            continue
        if rule.regex.fullmatch(path):
            result = not rule.negated
    return result


def package_files(root: Path = ROOT) -> Iterator[str]:
    ignore_file = root / ".funcignore"
    rules = parse_rules(ignore_file.read_text()) if ignore_file.exists() else []
    for directory, dirnames, filenames in os.walk(root):
        rel_dir = Path(directory).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else f"{rel_dir}/"
        dirnames[:] = sorted(
            d for d in dirnames if not never_packaged(d, True) and not ignored(f"{prefix}{d}", True, rules)
        )
        for name in sorted(filenames):
            rel = f"{prefix}{name}"
            if not never_packaged(name, False) and not ignored(rel, False, rules):
                yield rel


def write_zip(out: Path, root: Path = ROOT) -> list[str]:
    files = [f for f in package_files(root) if (root / f).resolve() != out.resolve()]
    for required in ("host.json", "function_app.py", "requirements.txt"):
        if required not in files:
            raise SystemExit(f"{required} is missing from the package: check .funcignore")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in files:
            info = zipfile.ZipInfo(rel, _EPOCH)
            info.external_attr = ((root / rel).stat().st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (root / rel).read_bytes())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="zip file to write")
    group.add_argument("--list", action="store_true", help="print the files the package would hold")
    parser.add_argument("--root", type=Path, default=ROOT, help="project root (default: the repository)")
    args = parser.parse_args(argv)
    if args.list:
        for rel in package_files(args.root):
            print(rel)
        return 0
    files = write_zip(args.out, args.root)
    print(f"{args.out}: {len(files)} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
