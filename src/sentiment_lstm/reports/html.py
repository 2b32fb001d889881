"""explain.explain's numbers as one self-contained HTML page: inline CSS and a little inline
JS drawing canvas strips, no network. Each review is a grid of token columns; under each
token, one strip per quantity, its exact value in the hover text."""

import html
import json

import numpy as np

from sentiment_lstm.evaluation.explain import GATE_NAMES, top_units

COLS, COL_W, LEFT = 20, 56, 170  # tokens per grid row, px per token, px of strip labels
GATE_KIND = {"input": "u", "forget": "u", "output": "u", "candidate": "s"}
SHORT = {"input": "i", "forget": "f", "output": "o", "candidate": "g"}


def _sizes(code: str) -> str:
    return code.replace("@LEFT@", str(LEFT)).replace("@COLW@", str(COL_W))

CSS = """body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222;max-width:1400px}
h2{font-size:15px;margin:24px 0 4px}.note{color:#555;max-width:1100px}
.grid{margin:6px 0 10px}.toks{display:flex;margin-left:@LEFT@px}
.tok{width:@COLW@px;flex:none;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;
font:12px monospace;border-left:1px solid #ddd;padding:0 2px;box-sizing:border-box}
canvas{display:block}.cut{margin:6px 0 6px @LEFT@px;padding:2px 6px;background:#fdecc8;
display:inline-block;border:1px dashed #c90}"""

JS = """const W=@COLW@,LEFT=@LEFT@;
function colour(k,v,m){if(k==='p'){const a=Math.abs(v-0.5)*2;return v>=0.5?
`rgba(33,102,172,${a})`:`rgba(178,24,43,${a})`}if(k==='s'){const a=Math.min(1,Math.abs(v));
return v>=0?`rgba(27,120,55,${a})`:`rgba(118,42,131,${a})`}
return `rgba(40,40,40,${Math.min(1,Math.max(0,v/(m||1)))})`}
let drawn=0;
document.querySelectorAll('canvas.trk').forEach(cv=>{
 const d=DATA[+cv.dataset.r],s=+cv.dataset.s,n=+cv.dataset.n,ctx=cv.getContext('2d');
 const rows=[];let y=0;ctx.font='9px sans-serif';
 for(const t of d.tracks){
  if(t.l){ctx.fillStyle='#333';ctx.fillText(t.l,2,y+Math.max(t.h,9)-1)}
  for(let j=0;j<n;j++){const q=t.v[s+j],x=LEFT+j*W;
   if(q===null){ctx.fillStyle='#eee';ctx.fillRect(x,y,W-1,t.h);continue}
   const v=q/t.q;
   if(t.k==='n'){ctx.fillStyle='#f4f4f4';ctx.fillRect(x,y,W-1,t.h);ctx.fillStyle='#555';
    const b=Math.round(t.h*Math.min(1,v/(t.m||1)));ctx.fillRect(x,y+t.h-b,W-1,b)}
   else{ctx.fillStyle=colour(t.k,v,t.m);ctx.fillRect(x,y,W-1,t.h)}}
  rows.push([y,y+t.h+t.g,t]);y+=t.h+t.g}
 cv.addEventListener('mousemove',e=>{const r=cv.getBoundingClientRect(),
  px=e.clientX-r.left,py=e.clientY-r.top,j=Math.floor((px-LEFT)/W),
  hit=rows.find(a=>py>=a[0]&&py<a[1]);
  if(!hit||j<0||j>=n){cv.title='';return}const t=hit[2],q=t.v[s+j];
  cv.title=`${d.tokens[s+j]} (token ${d.pos[s+j]}): ${t.name} = `+(q===null?'not computed':
   (q/t.q).toFixed(Math.round(Math.log10(t.q))))});
 drawn++});
document.body.dataset.drawn=drawn;console.log('explain: drew '+drawn+' strips');"""


def _q(values: np.ndarray, scale: int) -> list:
    """Values as integers of 1/scale (a compact page), None where not computed (NaN)."""
    return [None if v != v else round(v * scale) for v in np.asarray(values, float).tolist()]


def _track(name: str, kind: str, h: int, values: np.ndarray, scale: int, label: str = "",
           gap: int = 0) -> dict:
    v = np.asarray(values, float)
    top = float(np.nanmax(v)) if kind == "n" and np.isfinite(v).any() else 1.0
    return {"name": name, "l": label, "k": kind, "h": h, "g": gap, "q": scale,
            "m": top, "v": _q(v, scale)}


def _direction(name: str) -> str:
    return ("backward" if name.endswith("_reverse") else "forward") + f" {name.split('_')[0]}"


def tracks(row: dict, k: int = 8) -> list[dict]:
    """The strips under the tokens, top to bottom, as the page's JS draws them."""
    pos_label = row["labels"][-1]
    out = [_track(f"LSTM P({pos_label})", "p", 16, row["running"][:, -1], 10**6,
                  f"LSTM running P({pos_label})", 2)]
    if "compare" in row:
        c = row["compare"]
        out.append(_track(f"{c['encoder']} P({pos_label})", "p", 16, c["running"][:, -1],
                          10**6, f"{c['encoder'].upper()} running P({pos_label})", 6))
    units = top_units(row, k)
    for name, d in row["gates"].items():
        dn = _direction(name)
        for g in GATE_NAMES:
            out.append(_track(f"{dn} {g} mean", GATE_KIND[g], 9, d[g].mean(1), 10**4,
                              f"{dn} {SHORT[g]} mean", 1))
            for j, u in enumerate(units.get(name, [])):
                out.append(_track(f"{dn} {g} unit {u}", GATE_KIND[g], 2, d[g][:, u], 10**3,
                                  f"  top {len(units[name])} units" if j == 0 else "",
                                  2 if j == len(units[name]) - 1 else 0))
        out.append(_track(f"{dn} ||c_t||", "n", 12, d["cell_norm"], 10**3,
                          f"{dn} ||c_t||", 6))
    for name, v in row.get("compare", {}).get("hidden_norm", {}).items():
        label = f"{row['compare']['encoder'].upper()} {_direction(name)} ||h_t||"
        out.append(_track(label, "n", 12, v, 10**3, label, 2))
    return out


def _title(row: dict, t: int) -> str:
    """A token's hover text: the exact numbers of its column."""
    parts = [f"token {int(row['positions'][t])}: {row['tokens'][t]!r}",
             f"LSTM P({row['labels'][-1]}) {row['running'][t, -1]:.6f}"]
    if "compare" in row:
        parts.append(f"{row['compare']['encoder']} P({row['labels'][-1]}) "
                     f"{row['compare']['running'][t, -1]:.6f}")
    for name, d in row["gates"].items():
        means = " ".join(f"{SHORT[g]} {d[g][t].mean():.4f}" for g in GATE_NAMES)
        parts.append(f"{_direction(name)}: {means} ||c|| {d['cell_norm'][t]:.3f}")
    return " | ".join(parts).replace("nan", "not computed")


def _segments(row: dict) -> list[tuple[int, int, int]]:
    """Contiguous runs of fed tokens: (first index into the fed arrays, count, tokens dropped
    before the run)."""
    pos = [int(p) for p in row["positions"]]
    runs, start = [], 0
    for i in range(1, len(pos) + 1):
        if i == len(pos) or pos[i] != pos[i - 1] + 1:
            runs.append((start, i - start, pos[start] - (pos[start - 1] + 1 if start else 0)))
            start = i
    return runs


def _cut(n: int, row: dict) -> str:
    return (f'<div class="cut">&#9986; {n} tokens not fed to the model here (data.max_len='
            f'{row["max_len"]}, truncate={row["truncate"]}, from the checkpoint)</div>')


def _grid(r: int, row: dict, height: int) -> str:
    parts = []
    for start, n, dropped in _segments(row):
        if dropped:
            parts.append(_cut(dropped, row))
        for s in range(start, start + n, COLS):
            m = min(COLS, start + n - s)
            toks = "".join(f'<span class="tok" title="{html.escape(_title(row, t))}">'
                           f"{html.escape(row['tokens'][t])}</span>" for t in range(s, s + m))
            parts.append(f'<div class="toks">{toks}</div><canvas class="trk" data-r="{r}" '
                         f'data-s="{s}" data-n="{m}" width="{LEFT + m * COL_W}" '
                         f'height="{height}"></canvas>')
    tail = row["n_tokens"] - 1 - int(row["positions"][-1])
    if tail:
        parts.append(_cut(tail, row))
    return f'<div class="grid">{"".join(parts)}</div>'


def _verdict(view: dict, labels: list[str]) -> str:
    probs = ", ".join(f"P({name}) = {p:.4f}" for name, p in zip(labels, view["probs"]))
    return f"<b>{html.escape(view['label'])}</b> ({probs})"


def section(r: int, row: dict, k: int = 8) -> tuple[str, dict]:
    """A review's HTML and the data its canvases are drawn from."""
    strips = tracks(row, k)
    fed = len(row["tokens"])
    lines = [f"<h2>Review {r + 1}: {row['n_tokens']} tokens, {fed} fed to the model</h2>",
             f"<p>LSTM says {_verdict(row, row['labels'])}; running prediction: "
             f"{html.escape(row['running_method'])}.",
             ]
    if "compare" in row:
        c = row["compare"]
        lines.append(f" {c['encoder'].upper()} says {_verdict(c, row['labels'])}; running "
                     f"prediction: {html.escape(c['running_method'])}.")
    lines.append("</p>")
    height = sum(t["h"] + t["g"] for t in strips)
    lines.append(_grid(r, row, height))
    data = {"tracks": strips, "tokens": row["tokens"],
            "pos": [int(p) for p in row["positions"]]}
    return "".join(lines), data


def page(rows: list[dict], k: int = 8, cut: int = 400) -> str:
    """The whole page for explain.explain's rows."""
    body, data = zip(*(section(r, row, k) for r, row in enumerate(rows)))
    blob = json.dumps(list(data), separators=(",", ":")).replace("</", "<\\/")
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<title>sentiment_lstm: inside {len(rows)} review(s)</title><style>{_sizes(CSS)}</style></head><body>
<h1 style="font-size:18px">What the LSTM writes, erases and reveals, token by token</h1>
<p class="note">Under each token (the tokenizer's tokens, shown as the original text pieces):
<b>running P</b>: what the model would output had the review ended at this token (blue: towards
{html.escape(rows[0]['labels'][-1])}, red: towards {html.escape(rows[0]['labels'][0])}, white:
undecided). A one-direction model gives every prefix in one pass (the head on h_t, or on the
running max / mean pool). A bidirectional model reads the review from both ends, so its
forward direction alone cannot give the output: it is re-run on each prefix, every prefix up to
{cut} tokens, and past that one prefix in ceil(T / {cut}) and the last (grey: not computed).
<b>i, f, o</b>: the input, forget and output gates, <b>g</b>: the candidate written into the
cell (green positive, purple negative), each as the mean over units and, below it, a heat strip
of the <b>top {k} units</b>: those with the largest |head weight &times; pooled feature|, i.e.
the largest share of the predicted class's logit margin over the other class's.
<b>||c_t||</b>: the cell state's norm; <b>||h_t||</b>: the compared model's hidden state's.
Bars are scaled to each strip's maximum. Hover a token or a strip for exact values.
Truncation is the checkpoint's own (data.max_len, truncate) and is marked where it cuts.</p>
{"".join(body)}
<script>const DATA={blob};
{_sizes(JS)}</script></body></html>
"""
