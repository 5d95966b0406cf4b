"""The fake EHR's chart page: the patient banner, a draft order, and the CDS Hooks cards as an EHR
shows them (indicator colour, summary, markdown detail, source link, app links, override reasons).

The page also calls the CDS service itself from the browser (another origin: CORS, as a browser-based
sandbox does) and writes how many cards it got into #browser-count."""

from __future__ import annotations

import html
import json
from typing import Any

from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": False}).enable("table")  # no raw HTML from a card's markdown

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#eef1f4;color:#1d2733}
header{background:#274060;color:#fff;padding:10px 18px;display:flex;gap:28px;align-items:baseline}
header b{font-size:18px} header span{opacity:.85}
main{display:grid;grid-template-columns:330px 1fr;gap:16px;padding:16px}
section.panel{background:#fff;border-radius:6px;padding:12px 14px;box-shadow:0 1px 2px #0002}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#556;margin:0 0 8px}
.order{border:1px dashed #8a9;padding:8px;border-radius:4px;background:#f6fbf7}
.card{border-left:6px solid #888;background:#fff;border-radius:4px;padding:10px 14px;margin:0 0 12px;
      box-shadow:0 1px 2px #0002}
.card.critical{border-color:#c62828}.card.warning{border-color:#ef8f00}.card.info{border-color:#1e6fd9}
.card .summary{font-weight:600;font-size:15px}
.card .ind{font-size:11px;font-weight:700;text-transform:uppercase;padding:1px 6px;border-radius:3px;color:#fff;
           margin-right:6px}
.critical .ind{background:#c62828}.warning .ind{background:#ef8f00}.info .ind{background:#1e6fd9}
.card .source{font-size:12px;color:#556;margin:2px 0 6px}
.card table{border-collapse:collapse;margin:6px 0;font-size:13px}
.card td,.card th{border:1px solid #d5dbe1;padding:2px 8px;text-align:left}
.card th{background:#f1f4f7}
.card .links a{display:inline-block;background:#274060;color:#fff;border-radius:3px;padding:3px 10px;
               text-decoration:none;margin-right:8px;font-size:13px}
.card select{font-size:12px}
.muted{color:#667;font-size:12px}
"""


def card_html(card: dict[str, Any]) -> str:
    ind = html.escape(card["indicator"])
    src = card["source"]
    label = html.escape(src["label"])
    source = f'<a href="{html.escape(src["url"])}">{label}</a>' if src.get("url") else label
    links = "".join(f'<a href="{html.escape(link["url"])}" data-type="{html.escape(link["type"])}">'
                    f'{html.escape(link["label"])}</a>' for link in card.get("links") or [])
    reasons = "".join(f"<option>{html.escape(r.get('display') or r['code'])}</option>"
                      for r in card.get("overrideReasons") or [])
    override = f'<select aria-label="override reason"><option>Dismiss\u2026</option>{reasons}</select>' if reasons else ""
    return (f'<article class="card {ind}" data-uuid="{html.escape(card.get("uuid", ""))}">'
            f'<div class="summary"><span class="ind">{ind}</span>{html.escape(card["summary"])}</div>'
            f'<div class="source">Source: {source}</div>'
            f'<div class="detail">{_MD.render(card.get("detail") or "")}</div>'
            f'<div class="links">{links} {override}</div></article>')


def page(patient: dict[str, str], order_text: str, sections: list[tuple[str, list[dict[str, Any]]]],
         browser_call: dict[str, Any] | None = None) -> str:
    """The chart page. `browser_call`: {"url", "token", "body"} of a hook call the page makes itself."""
    cards = "".join(
        f"<h2>{html.escape(title)}</h2>" + ("".join(card_html(c) for c in found) or '<p class="muted">no cards</p>')
        for title, found in sections)
    script = ""
    if browser_call is not None:
        script = f"""<script>
const call = {json.dumps(browser_call)};
fetch(call.url, {{method: "POST", headers: {{"Authorization": "Bearer " + call.token,
                  "Content-Type": "application/json"}}, body: JSON.stringify(call.body)}})
  .then(r => r.json()).then(d => {{ document.getElementById("browser-count").textContent = d.cards.length; }})
  .catch(e => {{ document.getElementById("browser-count").textContent = "error: " + e; }});
</script>"""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Fake EHR</title><style>{CSS}</style></head>
<body><header><b>Fake EHR</b><span>{html.escape(patient["name"])}</span><span>MRN {html.escape(patient["mrn"])}</span>
<span>born {html.escape(patient["born"])}</span></header>
<main><section class="panel"><h2>Chart</h2><p>Nephrology clinic, membranous nephropathy.</p>
<h2>Draft order</h2><div class="order">{html.escape(order_text)}</div>
<p class="muted">CDS service called from this page: <span id="browser-count">\u2026</span> card(s)</p></section>
<section class="panel">{cards}</section></main>{script}</body></html>"""
