"""Pages governance opens must render offline: Data Docs and ``dvc plots show`` without CSS or JS from the internet.

Great Expectations' Data Docs templates and DVC's plot page load Bootstrap, jQuery, bootstrap-table, Font Awesome and
Vega from public CDNs; on a network without internet the Data Docs index is unstyled with an empty list of runs and
the DVC training curves are blank. The files they need are vendored in ``vendor/`` (versions, sources and licences in
``vendor/VENDOR.md``):

* :func:`make_offline` copies them into a built Data Docs site (``static/vendor/``) and points every page at the local
  copies (relative links, so the site works from a file URL, a web server or S3);
* :func:`dvc_plots_template` is the HTML template of ``dvc plots show`` with the Vega scripts inlined (DVC's config
  ``plots.html_template`` points at ``.dvc/plots/offline.html``, written from it).

:func:`external_loads` lists what a page would still fetch from elsewhere; tests and ``make screenshots`` use it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

VENDOR = Path(__file__).with_name("vendor")
SITE_VENDOR = Path("static") / "vendor"

#: CDN address (a prefix match, version included) -> vendored file. Anything else external is reported, not guessed.
CDN_ASSETS: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "js/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "css/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "js/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "css/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "css/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "js/bootstrap-table-filter-control.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "css/bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "js/bootstrap-datepicker.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "css/fontawesome-all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "js/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "js/popper.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": "js/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "js/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "js/vega-embed.min.js",
}
#: Stylesheets dropped rather than vendored: an optional dark theme (the pages are complete without it).
DROPPED = ("https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@",)
GX_IMAGES = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

_TAG = re.compile(r"<(?:script|link|img|iframe|source)\b[^>]*>", re.IGNORECASE)
_ATTR_URL = re.compile(r"""\b(?:src|href)\s*=\s*["']?(https?:)?//[^"'\s>]+""", re.IGNORECASE)
_CSS_URL = re.compile(r"""(@import\s+["']|url\(\s*["']?)(https?:)?//""", re.IGNORECASE)
_INTEGRITY = re.compile(r"""\s(?:integrity|crossorigin)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)


def external_loads(html: str) -> list[str]:
    """What a page would fetch from another host: script, stylesheet, image or frame sources and CSS ``url()``s.

    Plain links (``<a href>``) are navigation, not loads, and are not listed.
    """
    found = [tag for tag in _TAG.findall(html) if _ATTR_URL.search(tag) and not _is_anchor_only(tag)]
    found += [match.group(0) for match in _CSS_URL.finditer(html)]
    return found


def _is_anchor_only(tag: str) -> bool:
    # <link rel="canonical"/"preconnect" ...> loads nothing the page needs; a stylesheet or preload does
    lowered = tag.lower()
    return lowered.startswith("<link") and "stylesheet" not in lowered and "preload" not in lowered


def _rewrite(html: str, vendor_href: str) -> str:
    def tag(match: re.Match[str]) -> str:
        text = match.group(0)
        if any(prefix in text for prefix in DROPPED):
            return ""
        for url, local in CDN_ASSETS.items():
            for quote in ('"', "'"):
                if f"{quote}{url}{quote}" in text:
                    text = text.replace(f"{quote}{url}{quote}", f'"{vendor_href}/{local}"')
                    return _INTEGRITY.sub("", text)
        return text

    return _TAG.sub(tag, html)


def make_offline(site_dir: Path) -> list[str]:
    """Vendor the site's CDN assets into ``site_dir/static/vendor`` and point every page at them.

    Returns:
        The external loads left in any page (``path: tag``); empty when the whole site renders offline.
    """
    target = site_dir / SITE_VENDOR
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(VENDOR, target, ignore=shutil.ignore_patterns("*.md"))
    images = site_dir / "static" / "images"
    left: list[str] = []
    for page in sorted(site_dir.rglob("*.html")):
        if target in page.parents:
            continue
        html = page.read_text(encoding="utf-8")
        vendor_href = Path(os.path.relpath(target, page.parent)).as_posix()
        html = _rewrite(html, vendor_href)
        if GX_IMAGES in html:
            html = html.replace(GX_IMAGES, Path(os.path.relpath(images, page.parent)).as_posix() + "/")
        page.write_text(html, encoding="utf-8")
        left += [f"{page.relative_to(site_dir).as_posix()}: {load}" for load in external_loads(html)]
    return left


DVC_PLOTS_TEMPLATE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- Vega, Vega-Lite and Vega-Embed inlined (feedbackflow.quality.offline): renders without internet -->
    %s
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""
DVC_PLOTS_SCRIPTS = ("js/vega.min.js", "js/vega-lite.min.js", "js/vega-embed.min.js")


def dvc_plots_template() -> str:
    """The ``dvc plots show`` page template with the vendored Vega scripts inlined (no ``{scripts}`` placeholder,
    so DVC adds no CDN tags)."""
    scripts = []
    for name in DVC_PLOTS_SCRIPTS:
        code = (VENDOR / name).read_text(encoding="utf-8")
        code = re.sub(r"//# sourceMappingURL=\S+", "", code).replace("</script", "<\\/script")
        scripts.append(f"<script>{code}</script>")
    return DVC_PLOTS_TEMPLATE % "\n    ".join(scripts)


def write_dvc_plots_template(root: Path) -> Path:
    """Write the offline template to ``.dvc/plots/offline.html`` (what ``.dvc/config`` names)."""
    path = root / ".dvc" / "plots" / "offline.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dvc_plots_template(), encoding="utf-8")
    return path


if __name__ == "__main__":  # python -m feedbackflow.quality.offline: refresh .dvc/plots/offline.html
    from feedbackflow.config import ProjectPaths

    print(write_dvc_plots_template(ProjectPaths.discover().root))
