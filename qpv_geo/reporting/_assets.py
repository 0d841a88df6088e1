"""Self-contained map pages: folium's CDN links replaced by the vendored copies.

:func:`inline_assets` replaces folium's CDN ``<script src>`` / stylesheet links by inline copies
of the files vendored in ``qpv_geo/reporting/static/vendor`` (see ``VENDOR.md``), so that a map or a
report works offline.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Callable
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"

#: folium's CDN assets → vendored files (``None``: dropped, not needed by qpv-geo's maps).
#: Matched on a fragment of the URL.
CDN_ASSETS: tuple[tuple[str, str | None], ...] = (
    ("/leaflet.awesome-markers.js", "leaflet.awesome-markers-2.0.5/leaflet.awesome-markers.min.js"),
    ("/leaflet.awesome-markers.css", "leaflet.awesome-markers-2.0.5/leaflet.awesome-markers.css"),
    ("leaflet.awesome.rotate", None),
    ("/dist/leaflet.js", "leaflet-1.9.4/leaflet.js"),
    ("/dist/leaflet.css", "leaflet-1.9.4/leaflet.css"),
    ("jquery-3.7.1", "jquery-3.7.1/jquery.min.js"),
    ("bootstrap", None),
    ("fontawesome", "font-awesome-4.7.0/css/font-awesome.min.css"),
    ("/leaflet.markercluster.js", "leaflet.markercluster-1.5.3/leaflet.markercluster.js"),
    ("/MarkerCluster.Default.css", "leaflet.markercluster-1.5.3/MarkerCluster.Default.css"),
    ("/MarkerCluster.css", "leaflet.markercluster-1.5.3/MarkerCluster.css"),
    ("/Control.FullScreen.min.js", "leaflet.fullscreen-3.0.0/Control.FullScreen.js"),
    ("/Control.FullScreen.css", "leaflet.fullscreen-3.0.0/Control.FullScreen.css"),
)

_SCRIPT_LINK = re.compile(r'<script\s+src="(?P<url>https?://[^"]+)"\s*>\s*</script>')
_CSS_LINK = re.compile(r'<link\s+rel="stylesheet"\s+href="(?P<url>https?://[^"]+)"\s*/?>')
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(?P<ref>[^)'\"]+)\1\s*\)")
_SOURCEMAP = re.compile(r"^\s*//# sourceMappingURL=.*$", re.M)


def _asset_for(url: str) -> tuple[bool, Path | None]:
    for fragment, local in CDN_ASSETS:
        if fragment in url:
            return True, (VENDOR_DIR / local) if local else None
    return False, None


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".woff2":
        mime = "font/woff2"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline_css(path: Path) -> str:
    css = path.read_text(encoding="utf-8")

    def repl(m: re.Match[str]) -> str:
        ref = m.group("ref").strip()
        if ref.startswith(("#", "data:")):
            return m.group(0)
        target = (path.parent / ref.split("?")[0].split("#")[0]).resolve()
        if not target.is_file():
            raise FileNotFoundError(f"{path.name} refers to {ref}, missing from {VENDOR_DIR}")
        return f"url({_data_uri(target)})"

    return _CSS_URL.sub(repl, css)


def inline_assets(page: str, *, strict: bool = True) -> str:
    """Replace folium's CDN ``<script src>`` / stylesheet links by inline vendored copies.

    Parameters
    ----------
    page
        HTML rendered by folium (a map, or a report holding several maps).
    strict
        Raise ``ValueError`` on a CDN link with no local copy (rather than leave a page that
        silently needs the network).

    Returns
    -------
    str
        The page, with every known asset inlined once (images and fonts as ``data:`` URIs)
        and the unneeded ones (Bootstrap, glyphicons) removed.
    """
    done: set[Path] = set()
    unknown: list[str] = []

    def inliner(tag: str, read: Callable[[Path], str]) -> Callable[[re.Match[str]], str]:
        def replace(m: re.Match[str]) -> str:
            known, local = _asset_for(m.group("url"))
            if not known:
                unknown.append(m.group("url"))
                return m.group(0)
            if local is None or local in done:
                return ""
            done.add(local)
            body = _SOURCEMAP.sub("", read(local)).replace(f"</{tag}", f"<\\/{tag}")
            return f"<{tag}>/* {local.parent.name}/{local.name} */\n{body}\n</{tag}>"

        return replace

    page = _SCRIPT_LINK.sub(inliner("script", lambda p: p.read_text(encoding="utf-8")), page)
    page = _CSS_LINK.sub(inliner("style", _inline_css), page)
    if unknown and strict:
        raise ValueError("no local copy for: " + ", ".join(sorted(set(unknown))))
    return page



__all__ = ["CDN_ASSETS", "VENDOR_DIR", "inline_assets"]
