"""GX Data Docs rewritten to load only vendored files: expected pages written by hand."""
# ruff: noqa: E501  (the pages are GX's own lines, kept whole)
import base64
import hashlib
import zipfile

import pytest

from shuzhi import docs_offline as do

HEAD = """<head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css" />
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js" integrity="sha384-{sri}" crossorigin="anonymous"></script>
<style>.navbar-brand a {{ background: url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png') 0 0; }}</style>
<link rel="shortcut icon" href="../../../../static/images/favicon.ico" type="image/x-icon"/>
</head><body><img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=20261203T0&dataContextId=x"/>
<a href="https://greatexpectations.io">GX</a><script>$(function () {{ }});</script></body>"""

# what the same page must become five folders below the site (validations/<layer>/<table>/<night>/<time>/)
WANT = """<head>
<link rel="stylesheet" href="../../../../../static/vendor/bootstrap/4.3.1/css/bootstrap.min.css"/>


<script src="../../../../../static/vendor/jquery/3.7.1/jquery.min.js"></script>
<script src="../../../../../static/vendor/popper.js/1.12.9/umd/popper.min.js"></script>
<style>.navbar-brand a { background: url('../../../../../static/images/logo-long.png') 0 0; }</style>
<link rel="shortcut icon" href="../../../../../static/images/favicon.ico" type="image/x-icon"/>
</head><body><img src="../../../../../static/images/logo-long.png"/>
<a href="https://greatexpectations.io">GX</a><script>$(function () { });</script></body>"""

POPPER = b"/* popper */"


def _site(tmp_path, popper=POPPER):
    site = tmp_path / "site"
    (site / "static" / "images").mkdir(parents=True)
    (site / "static" / "images" / "logo-long.png").write_bytes(b"png")
    dest = site / "static" / "vendor" / "popper.js" / "1.12.9" / "umd" / "popper.min.js"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(popper)
    return site


def _sri(data: bytes) -> str:
    return base64.b64encode(hashlib.sha384(data).digest()).decode()


@pytest.mark.unit
def test_a_deep_page_loads_only_files_of_the_site(tmp_path):
    site = _site(tmp_path)
    page = site / "validations" / "bronze" / "police_population" / "2026-11-27" / "20261203T054040Z" / "x.html"
    got = do.offline_html(HEAD.format(sri=_sri(POPPER)), page, site)
    assert got == WANT
    assert do.outside_references(got) == []
    assert do.outside_references(HEAD.format(sri="x"))[:2] == [
        "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css",
        "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css"]


@pytest.mark.unit
def test_the_index_page_at_the_site_root(tmp_path):
    site = _site(tmp_path)
    got = do.offline_html('<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
                          '<link rel="shortcut icon" href="./static/images/favicon.ico"/>', site / "index.html", site)
    assert got == ('<script src="./static/vendor/jquery/3.7.1/jquery.min.js"></script>'
                   '<link rel="shortcut icon" href="./static/images/favicon.ico"/>')


@pytest.mark.unit
def test_a_vendored_file_that_is_not_the_one_gx_names_is_refused(tmp_path):
    site = _site(tmp_path, popper=b"/* something else */")
    with pytest.raises(do.DataDocsAssetError, match="popper.min.js is not the file GX names"):
        do.offline_html(HEAD.format(sri=_sri(POPPER)), site / "index.html", site)


@pytest.mark.unit
def test_assets_come_out_of_the_webjars_once(tmp_path, caplog):
    site, jars = tmp_path / "site", tmp_path / "jars"
    jars.mkdir()
    assert do.install_assets(site, jars) is False and "WebJars" in caplog.text      # set-up not run: a warning
    for jar in do.WEBJARS:
        inner = {t[1] for t in do.ASSETS.values() if t and t[0] == jar}
        with zipfile.ZipFile(jars / jar.jar, "w") as z:
            for name in inner | ({"webfonts/fa-solid-900.woff2"} if jar == do.FONT_AWESOME else set()):
                z.writestr(jar.root + name, f"{jar.artifact} {name}")
            z.writestr(jar.root + "README.md", "not copied")
    assert do.install_assets(site, jars) is True
    got = sorted(p.relative_to(do.vendor_dir(site)).as_posix() for p in do.vendor_dir(site).rglob("*") if p.is_file())
    assert got == [".complete",
                   "bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css",
                   "bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
                   "bootstrap-table/1.19.1/dist/bootstrap-table.min.css",
                   "bootstrap-table/1.19.1/dist/bootstrap-table.min.js",
                   "bootstrap-table/1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.css",
                   "bootstrap-table/1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
                   "bootstrap-table/1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
                   "bootstrap/4.3.1/css/bootstrap.min.css",
                   "bootstrap/4.3.1/js/bootstrap.min.js",
                   "font-awesome/6.6.0/css/all.min.css",
                   "font-awesome/6.6.0/webfonts/fa-solid-900.woff2",      # what all.min.css loads beside it
                   "jquery/3.7.1/jquery.min.js",
                   "popper.js/1.12.9/umd/popper.min.js"]                # no README: only what a page loads
    (do.vendor_dir(site) / "jquery" / "3.7.1" / "jquery.min.js").write_text("kept")
    assert do.install_assets(site, jars) is True                                     # once: nothing re-copied
    assert (do.vendor_dir(site) / "jquery" / "3.7.1" / "jquery.min.js").read_text() == "kept"
