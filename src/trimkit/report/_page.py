"""The page around the sections: inline style and script, navigation, and a content
security policy that forbids every fetch, so the file is self-contained by construction."""

from __future__ import annotations

from typing import Sequence

from trimkit.report._markup import esc

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
:root { --ink:#1d2430; --muted:#5b6574; --line:#dfe3ea; --soft:#f4f6f9; --accent:#0072B2; --bad:#b3261e;
  --warn-bg:#fff4e0; --warn-line:#e6a23c; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font-size: 14px; line-height: 1.45; }
header { padding: 20px 32px 14px; background: linear-gradient(90deg, #0b3a5c, #0072B2); color: #fff; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header p { margin: 0; opacity: .9; }
nav { position: sticky; top: 0; z-index: 5; background: #fff; border-bottom: 1px solid var(--line);
  padding: 8px 32px; display: flex; gap: 18px; flex-wrap: wrap; }
nav a { color: var(--accent); text-decoration: none; font-weight: 500; }
nav a:hover { text-decoration: underline; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 32px 40px; }
section { margin-top: 28px; }
h2 { font-size: 19px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; margin: 0 0 10px; }
h3 { font-size: 16px; margin: 18px 0 8px; }
h3 small, h4 small { color: var(--muted); font-weight: 400; }
h4 { font-size: 14px; margin: 14px 0 6px; }
h5 { font-size: 13px; margin: 10px 0 4px; color: var(--muted); }
p.lead { color: var(--muted); margin: 0 0 10px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td.r, th.r { text-align: right; }
tbody tr:hover { background: #f0f6fb; }
small { color: var(--muted); }
.num { white-space: nowrap; }
.ratio { font-weight: 600; }
.none { color: #a0a7b2; }
.bad { color: var(--bad); font-weight: 600; }
.tag { background: var(--accent); color: #fff; border-radius: 3px; padding: 0 5px; font-size: 11px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0 14px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 170px;
  background: var(--soft); display: flex; flex-direction: column; }
.card .label { color: var(--muted); font-size: 12px; }
.card .big { font-size: 24px; font-weight: 600; color: var(--accent); }
.card .big .ratio { font-weight: 600; }
.card .small { font-size: 12px; color: var(--muted); }
p.note { color: var(--muted); font-style: italic; }
p.warn, .problems-banner { background: var(--warn-bg); border-left: 4px solid var(--warn-line); padding: 6px 10px; }
.problems-banner { margin: 10px 0 0; color: var(--ink); border-radius: 4px; }
.problems-banner a { color: var(--ink); }
ul.problems li { color: var(--bad); }
article.stage { border: 1px solid var(--line); border-radius: 8px; padding: 4px 16px 10px; margin: 14px 0; }
article.stage:target { box-shadow: 0 0 0 3px #0072B233; }
.side { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
.side > * { min-width: 0; }
.charts { display: flex; gap: 16px; flex-wrap: wrap; }
figure.chart { margin: 8px 0; flex: 1 1 520px; max-width: 660px; }
figure.chart figcaption { font-size: 13px; margin-bottom: 4px; }
figure.chart figcaption p { margin: 2px 0 0; color: var(--muted); font-size: 12px; }
svg { width: 100%; height: auto; display: block; overflow: visible; }
svg text { font-size: 11px; fill: var(--muted); }
svg text.axis { fill: var(--ink); font-size: 12px; }
svg .grid { stroke: #e7eaf0; stroke-width: 1; }
svg .series polyline { fill: none; stroke: var(--c); stroke-width: 2; }
svg .series.dashed polyline { stroke-dasharray: 5 4; }
svg .series.strong polyline { stroke-width: 3.5; }
svg .series circle { fill: var(--c); stroke: #fff; stroke-width: 1; cursor: crosshair; }
svg .series circle:hover { r: 6; }
svg .series.off { display: none; }
svg .mark line { stroke: #333; stroke-dasharray: 3 3; stroke-width: 1.2; }
svg .mark text { fill: #333; }
svg rect.bar { fill: var(--accent); }
svg rect.whole { fill: #cfd8e3; }
svg rect:hover { opacity: .8; }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 0; margin: 4px 0 0 60px;
  font-size: 12px; }
ul.legend li { cursor: pointer; user-select: none; }
ul.legend li.static { cursor: default; }
ul.legend li.off { opacity: .35; text-decoration: line-through; }
ul.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; }
ul.legend i.bar-key { background: var(--accent); }
ul.legend i.whole-key { background: #cfd8e3; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
  overflow: auto; font-size: 12.5px; }
pre.yaml { max-height: 460px; }
pre .k { color: #0b3a5c; font-weight: 600; }
pre .s { color: #1a7f37; }
pre .n { color: #8250df; }
pre .c { color: #8c959f; font-style: italic; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--accent); }
figure.png img { max-width: 100%; border: 1px solid var(--line); }
.tip { position: absolute; z-index: 10; pointer-events: none; background: #1d2430; color: #fff; padding: 4px 8px;
  border-radius: 4px; font-size: 12px; max-width: 380px; display: none; box-shadow: 0 2px 8px #0003; }
footer { max-width: 1180px; margin: 0 auto; padding: 12px 32px 30px; color: var(--muted); font-size: 12px; }
@media print { nav { display: none; } article.stage { break-inside: avoid; } }
"""

# Adds a styled tooltip and legend toggles; the SVG is complete without it (its points keep
# their <title> for scripting off, removed here so two tooltips do not show at once).
SCRIPT = """
(function () {
  "use strict";
  var tip = document.createElement("div");
  tip.className = "tip";
  document.body.appendChild(tip);
  document.querySelectorAll("svg [data-tip] > title").forEach(function (title) { title.remove(); });
  document.addEventListener("mouseover", function (event) {
    var target = event.target.closest ? event.target.closest("[data-tip]") : null;
    if (!target) { tip.style.display = "none"; return; }
    tip.textContent = target.getAttribute("data-tip");
    tip.style.display = "block";
  });
  document.addEventListener("mousemove", function (event) {
    tip.style.left = (event.pageX + 14) + "px";
    tip.style.top = (event.pageY + 14) + "px";
  });
  function toggle(item) {
    var figure = item.closest("figure");
    var name = item.getAttribute("data-series");
    item.classList.toggle("off");
    figure.querySelectorAll("svg g.series").forEach(function (group) {
      if (group.getAttribute("data-series") === name) { group.classList.toggle("off"); }
    });
  }
  document.querySelectorAll("ul.legend li[data-series]").forEach(function (item) {
    item.addEventListener("click", function () { toggle(item); });
    item.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(item); }
    });
  });
})();
"""


def page(title: str, subtitle: str, banner: str, links: Sequence[tuple[str, str]], sections: Sequence[str]) -> str:
    """The whole document; ``links`` are (anchor, label) for the navigation bar."""
    nav = "".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in links)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{subtitle}</p>{banner}</header>"
        f"<nav>{nav}</nav><main>{''.join(sections)}</main>"
        "<footer>Written by <code>trimkit report</code> from the run folder alone (recipe.yaml, log.jsonl and "
        "the files the log names): no model was loaded and nothing was measured again. Hover a figure for its full "
        "value; its place in the log is in its data-src attribute.</footer>"
        "<noscript><p style=\"text-align:center;color:#5b6574\">Scripting is off: charts and tables are complete; "
        "each point's figure shows in its own tooltip.</p></noscript>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )
