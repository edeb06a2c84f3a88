"""The report's page: its sections in markdown and HTML side by side, the style and the script
that sorts every table and filters the table of every item."""

from __future__ import annotations

import html


STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:12px;"
         "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,"
         "#items td:nth-child(3){text-align:left}th{cursor:pointer;background:#f4f4f4}"
         "th::after{content:' ⇅';color:#999;font-size:10px}th:hover{background:#e4e4e4}"
         "td.best{font-weight:bold;background:#e6f4e6}tr.ref td{background:#eef3fb}tr.ref td:first-child::after"
         "{content:' (reference)';color:#557}.row{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;"
         "text-align:center;font-size:11px;max-width:270px}video,img.input{width:128px;image-rendering:pixelated;margin:1px}"
         "img{max-width:100%}.note{color:#744}input{margin:0 1em .5em 0}")

SORT_SCRIPT = """
document.querySelectorAll('table.sort th').forEach(th => th.addEventListener('click', () => {
  const i = th.cellIndex;  // the column within its own table
  const body = th.closest('table').tBodies[0], dir = th.dataset.dir = th.dataset.dir === '1' ? '-1' : '1';
  const key = r => r.cells[i].dataset.v;
  [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    if (x !== undefined && y !== undefined) return (x - y) * dir;
    if (x !== undefined || y !== undefined) return x === undefined ? 1 : -1;
    return a.cells[i].textContent.localeCompare(b.cells[i].textContent) * dir;
  }).forEach(r => body.appendChild(r));
}));
"""
SCRIPT = SORT_SCRIPT + """const filter = () => {
  const m = document.getElementById('fm').value.toLowerCase(), p = document.getElementById('fp').value.toLowerCase();
  document.querySelectorAll('#items tbody tr').forEach(r => {
    const shown = r.cells[2].textContent.toLowerCase().includes(m) && r.cells[0].textContent.toLowerCase().includes(p);
    r.style.display = shown ? '' : 'none';
  });
};
document.querySelectorAll('#fm, #fp').forEach(e => e && e.addEventListener('input', filter));
document.querySelectorAll('button.play').forEach(b => b.addEventListener('click', () => {
  b.parentElement.nextElementSibling.querySelectorAll('video').forEach(v => { v.currentTime = 0; v.play(); });
}));
"""


class Page:
    """The report's text, kept as markdown and HTML side by side: each section is added once
    and lands in both (the HTML only parts, e.g. the gallery, through `html`)."""

    def __init__(self, title: str, intro: list[str]):
        self.title = title
        self.md = [f"# {title}", "", *intro, ""]
        self.body = [f"<h1>{html.escape(title)}</h1><p>{html.escape(' '.join(intro))}</p>"]

    def section(self, heading: str, anchor: str, table=None, intro: str = "", notes=()) -> None:
        """A heading, an optional intro paragraph, a table (markdown and sortable HTML) and notes."""
        self.md += [f"## {heading}", ""] + ([intro, ""] if intro else []) + ([table.markdown(), ""] if table else [])
        self.md += [*notes, ""] if notes else []
        self.body += [f"<h2 id={anchor}>{html.escape(heading)}</h2>"]
        self.body += [f"<p>{html.escape(intro)}</p>"] if intro else []
        self.body += ([table.html()] if table else []) + [f"<p class=note>{html.escape(n)}</p>" for n in notes]

    def html(self, *parts: str) -> None:
        self.body += list(parts)

    def markdown(self) -> str:
        return "\n".join(self.md)

    def document(self) -> str:
        head = f"<meta charset='utf-8'><title>{html.escape(self.title)}</title><style>{STYLE}</style>"
        return f"<!doctype html><html><head>{head}</head><body>" + "\n".join(self.body) + \
            f"<script>{SCRIPT}</script></body></html>"
