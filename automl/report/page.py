"""The HTML page: sections in order, plotly.js inlined once, styles and the table script inline.

Nothing is fetched when the page opens: it works offline, from a file, in any browser.
"""

from __future__ import annotations

from html import escape
from typing import Any

from automl.report.section import Html, Section

#: plotly's per-figure options: no logo, resize with the window
PLOT_CONFIG = {"displaylogo": False, "responsive": True}

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#1f2937;color:#fff;padding:16px 32px}
header h1{margin:0 0 4px 0;font-size:22px}
header p{margin:0;color:#cbd5e1;font-size:14px}
nav{padding:8px 32px;background:#e5e7eb;font-size:14px;position:sticky;top:0;z-index:10}
nav a{margin-right:14px;color:#1f2937;text-decoration:none}
nav a.empty{color:#9ca3af}
main{padding:0 32px 48px 32px;max-width:1400px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:6px;margin:20px 0;padding:8px 20px}
section h2{font-size:18px;margin:12px 0 6px 0}
p.intro{color:#4b5563;font-size:14px;margin:4px 0 10px 0}
p.note{color:#4b5563;font-size:13px}
p.empty{color:#6b7280;font-style:italic}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border-bottom:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th.asc::after{content:" \\25B2"}
table.sortable th.desc::after{content:" \\25BC"}
.scroll{max-height:560px;overflow:auto;border:1px solid #e5e7eb}
.filters{font-size:14px;margin:8px 0}
.status{padding:1px 6px;border-radius:8px;font-size:12px}
.status.completed{background:#dbeafe}.status.early_stopped{background:#ffedd5}
.status.running{background:#dcfce7}.status.failed{background:#fee2e2}
.status.interrupted{background:#ede9fe}
pre{font-size:12px;background:#f9fafb;padding:8px;overflow:auto;max-height:400px}
.plots{display:grid;gap:8px}
.plot{margin:8px 0;min-width:0}
"""

#: sorting (click a header; numbers by value) and filtering (status, architecture) of the table
SCRIPT = """
(function(){
  var table=document.getElementById('trials-table');
  if(!table){return;}
  var body=table.tBodies[0];
  var heads=table.tHead.rows[0].cells;
  function key(row,i){var c=row.cells[i];var v=c.getAttribute('data-sort');
    if(v===null){v=c.textContent;}var n=parseFloat(v);
    return (v!==''&&!isNaN(n)&&isFinite(v))?n:v.toLowerCase();}
  Array.prototype.forEach.call(heads,function(th,i){
    th.addEventListener('click',function(){
      var asc=!th.classList.contains('asc');
      Array.prototype.forEach.call(heads,function(h){h.classList.remove('asc','desc');});
      th.classList.add(asc?'asc':'desc');
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){var x=key(a,i),y=key(b,i);
        if(typeof x!==typeof y){x=String(x);y=String(y);}
        return (x<y?-1:x>y?1:0)*(asc?1:-1);});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  var status=document.getElementById('filter-status');
  var arch=document.getElementById('filter-architecture');
  var shown=document.getElementById('trials-shown');
  function filter(){var n=0;
    Array.prototype.forEach.call(body.rows,function(r){
      var ok=(!status.value||r.getAttribute('data-status')===status.value)&&
             (!arch.value||r.getAttribute('data-architecture')===arch.value);
      r.style.display=ok?'':'none';if(ok){n++;}});
    shown.textContent=n+' of '+body.rows.length+' trials shown';}
  status.addEventListener('change',filter);arch.addEventListener('change',filter);filter();
})();
"""


EMPTY_LINK = ' class="empty" title="empty"'


def render_page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page as one string."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    body: list[str] = []
    plot = 0
    for section in sections:
        body.append(f'<section id="{escape(section.anchor)}"><h2>{escape(section.title)}</h2>')
        if section.empty is not None:
            body.append(f'<p class="empty">{escape(section.empty)}</p></section>')
            continue
        if section.intro:
            body.append(f'<p class="intro">{escape(section.intro)}</p>')
        plots: list[str] = []
        for part in [*section.parts, Html("")]:
            if isinstance(part, Html):  # plots so far side by side, then the piece of HTML
                if plots:
                    body.append(f'<div class="plots" style="grid-template-columns:repeat('
                                f'{section.columns},minmax(0,1fr))">{"".join(plots)}</div>')
                    plots = []
                body.append(part)
            else:
                plot += 1
                plots.append('<div class="plot">' + pio.to_html(
                    part, include_plotlyjs=False, full_html=False, config=PLOT_CONFIG,
                    div_id=f"plot-{plot}", default_height=f"{_height(part)}px") + "</div>")
        body.append("</section>")
    nav = "".join(f'<a href="#{escape(s.anchor)}"{EMPTY_LINK if s.empty else ""}>'
                  f"{escape(s.title)}</a>" for s in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style>"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
            f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
            f"<nav>{nav}</nav><main>{''.join(body)}</main>"
            f"<script>{SCRIPT}</script></body></html>\n")


def _height(figure: Any) -> int:
    return int(figure.layout.height or 420)
