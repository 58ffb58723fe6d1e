"""GX Data Docs that render with no network at all.

GX's page templates load Bootstrap, jQuery, bootstrap-table, popper, a date picker and Font Awesome
from public CDNs, and its logo from S3: on the office's isolated network the index page is blank
(bootstrap-table draws its list of validations in the browser). After each Data Docs build, the
pages just written are rewritten to load the same files from ``<site>/static/vendor/``, copied
there from WebJars — the same libraries at the same versions, published on Maven Central, which
the set-up script fetches once into ``$SHUZHI_JARS`` beside the Delta jars (never at run time).
Where GX's tag carries a subresource-integrity hash, the vendored file must have that very hash
(checked; the attribute is then dropped, because Chromium refuses ``crossorigin`` on ``file://``).

Two of GX's references have no WebJar and are removed: the dark-mode stylesheet
(``@forevolve/bootstrap-dark``, cosmetic) and Vega/Vega-Lite/Vega-Embed, which only graph
expectations (none of this project's suites) use. The 1.19.0 filter-control stylesheet GX names
is served from the 1.19.1 WebJar, the version of the rest of bootstrap-table GX loads.

    python -m shuzhi.docs_offline --artifacts     # the Maven coordinates the set-up script fetches
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ShuzhiError

log = logging.getLogger("shuzhi.docs_offline")


@dataclass(frozen=True)
class WebJar:
    group: str
    artifact: str
    version: str

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def jar(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def root(self) -> str:
        return f"META-INF/resources/webjars/{self.artifact}/{self.version}/"


JQUERY = WebJar("org.webjars", "jquery", "3.7.1")
BOOTSTRAP = WebJar("org.webjars", "bootstrap", "4.3.1")
POPPER = WebJar("org.webjars", "popper.js", "1.12.9")
BOOTSTRAP_TABLE = WebJar("org.webjars.npm", "bootstrap-table", "1.19.1")
DATEPICKER = WebJar("org.webjars", "bootstrap-datepicker", "1.9.0")
FONT_AWESOME = WebJar("org.webjars", "font-awesome", "6.6.0")
WEBJARS = (JQUERY, BOOTSTRAP, POPPER, BOOTSTRAP_TABLE, DATEPICKER, FONT_AWESOME)

# GX's URL → (WebJar, path inside it); None: removed (no WebJar; see the module's docstring)
ASSETS: dict[str, tuple[WebJar, str] | None] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": (JQUERY, "jquery.min.js"),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (BOOTSTRAP, "css/bootstrap.min.css"),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (BOOTSTRAP, "js/bootstrap.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (POPPER, "umd/popper.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        (BOOTSTRAP_TABLE, "dist/bootstrap-table.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        (BOOTSTRAP_TABLE, "dist/bootstrap-table.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        (BOOTSTRAP_TABLE, "dist/extensions/filter-control/bootstrap-table-filter-control.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        (BOOTSTRAP_TABLE, "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        (BOOTSTRAP_TABLE, "dist/extensions/filter-control/bootstrap-table-filter-control.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        (DATEPICKER, "css/bootstrap-datepicker.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        (DATEPICKER, "js/bootstrap-datepicker.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (FONT_AWESOME, "css/all.min.css"),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": None,
    "https://cdn.jsdelivr.net/npm/vega@5": None,
    "https://cdn.jsdelivr.net/npm/vega-lite@5": None,
    "https://cdn.jsdelivr.net/npm/vega-embed@6": None,
}
# what all.min.css loads relative to itself
EXTRA_FILES = {FONT_AWESOME: ("webfonts/",)}
LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/([\w.-]+\.(?:png|svg))"
                  r"(?:\?[^\"'\s)]*)?")
FAVICON = re.compile(r'href="(?:\./|(?:\.\./)+)static/images/favicon\.ico"')
TAG = re.compile(r"<(script|link)\b[^>]*>(?:\s*</script>)?", re.S)
URL_ATTR = re.compile(r'(?:src|href)="(https?://[^"]+)"')
SRI = re.compile(r'\s+integrity="(sha(?:256|384|512))-([^"]+)"')
CORS = re.compile(r'\s+crossorigin="[^"]*"')


class DataDocsAssetError(ShuzhiError):
    """A vendored asset is missing from its WebJar or differs from the bytes GX's page names."""


def vendor_dir(site: Path) -> Path:
    return site / "static" / "vendor"


def vendored_path(jar: WebJar, inner: str) -> str:
    """Where a file of a WebJar sits under ``static/vendor/`` (artifact/version/path)."""
    return f"{jar.artifact}/{jar.version}/{inner}"


def install_assets(site: Path, jars_dir: Path) -> bool:
    """Copy every vendored file into ``<site>/static/vendor/`` (once; a later call finds them).
    False, with a warning, when a WebJar is not in ``jars_dir`` (the set-up script fetches them)."""
    out = vendor_dir(site)
    stamp = out / ".complete"
    if stamp.exists():
        return True
    wanted: dict[WebJar, set[str]] = {}
    for target in ASSETS.values():
        if target:
            wanted.setdefault(target[0], set()).add(target[1])
    missing = [j.coordinates for j in wanted if not (jars_dir / j.jar).is_file()]
    if missing:
        log.warning("Data Docs keep their CDN links: WebJars %s not in %s (run `make setup`)", missing, jars_dir)
        return False
    for jar, inner in wanted.items():
        prefixes = EXTRA_FILES.get(jar, ())
        with zipfile.ZipFile(jars_dir / jar.jar) as z:
            names = {n[len(jar.root):] for n in z.namelist() if n.startswith(jar.root) and not n.endswith("/")}
            absent = sorted(inner - names)
            if absent:
                raise DataDocsAssetError(f"{jar.coordinates}: no {', '.join(absent)} in {jars_dir / jar.jar}")
            for name in sorted(n for n in names if n in inner or n.startswith(prefixes)):
                dest = out / vendored_path(jar, name)
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_name(dest.name + ".tmp")
                tmp.write_bytes(z.read(jar.root + name))
                os.replace(tmp, dest)
    stamp.write_text("\n".join(j.coordinates for j in wanted) + "\n")
    return True


def _check_integrity(tag: str, file: Path, url: str) -> None:
    m = SRI.search(tag)
    if not m:
        return
    algo, want = m.groups()
    got = base64.b64encode(hashlib.new(algo, file.read_bytes()).digest()).decode()
    if got != want:
        raise DataDocsAssetError(f"{file} is not the file GX names for {url}: {algo} {got}, the page wants {want}")


def offline_html(text: str, page: Path, site: Path) -> str:
    """``text`` of ``page`` (a file under ``site``) loading only files of the site."""
    up = os.path.relpath(site, page.parent).replace(os.sep, "/")
    vendor = vendor_dir(site)

    def tag(m: re.Match) -> str:
        t = m.group(0)
        u = URL_ATTR.search(t)
        if not u or u.group(1) not in ASSETS:
            return t
        target = ASSETS[u.group(1)]
        if target is None:
            return ""
        rel = vendored_path(*target)
        _check_integrity(t, vendor / rel, u.group(1))
        return CORS.sub("", SRI.sub("", t.replace(u.group(1), f"{up}/static/vendor/{rel}")))

    text = TAG.sub(tag, text)
    # GX copies its images into static/images; the dark-mode logo is not among them: the light one
    text = LOGO.sub(lambda m: f"{up}/static/images/"
                    f"{m.group(1) if (site / 'static' / 'images' / m.group(1)).is_file() else 'logo-long.png'}", text)
    return FAVICON.sub(f'href="{up}/static/images/favicon.ico"', text)


def outside_references(text: str) -> list[str]:
    """URLs a page would still fetch by itself (scripts, stylesheets, images; not links one clicks)."""
    found = []
    for m in TAG.finditer(text):
        u = URL_ATTR.search(m.group(0))
        if u:
            found.append(u.group(1))
    return found + re.findall(r'<img\b[^>]*\bsrc="(https?://[^"]+)"', text)


def make_offline(site: Path, jars_dir: Path, since: float | None = None) -> list[Path]:
    """Rewrite the site's pages written at or after ``since`` (a ``time.time()``; None: all) to load
    only vendored files. Returns the pages rewritten."""
    if not install_assets(site, jars_dir):
        return []
    done = []
    for page in sorted(site.rglob("*.html")):
        if since is not None and page.stat().st_mtime < since:
            continue
        text = page.read_text(encoding="utf-8")
        new = offline_html(text, page, site)
        if new != text:
            tmp = page.with_name(page.name + ".tmp")
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, page)
            done.append(page)
        left = outside_references(new)
        if left:
            log.warning("%s still loads %s", page, left)
    return done


if __name__ == "__main__":
    if sys.argv[1:] == ["--artifacts"]:
        print("\n".join(j.coordinates for j in WEBJARS))
    else:
        print(__doc__)
