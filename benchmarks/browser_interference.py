"""How much does the page's drawing alone slow training, with no kernel and no lab involved?

``live_plot.py`` measures the lab in JupyterLab against a plain ``fit``: the kernel's work for
each frame and Chromium's work drawing it both count there. This separates the second part. A
headless Chromium shows a page that replaces an SVG like the lab's live curves (a band of 1,000
points, a line of 1,000 and one of 500, clipped, round joins) 12 times a second. Beside it, a
plain ``fit`` runs in this process, alternately while the page draws and while the page is idle
(``--pairs`` pairs, the order alternating), and the steps/s of the two are compared.

Chromium uses a fraction of the other core, so training is not short of CPU time. On a 2-core VM
the page still cost training about 3.5% (0.965, 8 pairs): the page's parsing and rasterising
compete for caches and memory bandwidth. A pure-Python busy loop on the other core cost nothing.

Run: ``.venv/bin/python benchmarks/browser_interference.py [--pairs 8] [--steps 2500]``
Last lines: ``chromium_cores_drawing``, ``chromium_cores_idle``, ``page_fps`` and
``plain_fit_ratio_page_drawing_over_idle`` (1.0: the page's drawing costs training nothing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from course_lib import fit, make_classification
from course_lib.models import MLP

ROOT = Path(__file__).resolve().parents[1]

# 12 frames a second while window.__draw is true; each frame a new SVG of three paths, in SVG
# units of a tenth of a pixel, as course_lib.ui.live_svg sends them.
_PAGE = """<!doctype html><html><body>
<div style="display:grid;width:800px"><div id="curves" style="grid-area:1/1;overflow:hidden"></div></div>
<script>
let t = 0; window.__draw = false; window.__frames = 0;
function pts(n) { let s = ""; for (let i = 0; i < n; i++) {
  s += (600 + Math.round(i * 6800 / n)) + " " + Math.round(2000 + 1000 * Math.sin(i / 50 + t) + 300 * Math.random()) + " "; }
  return s; }
function path(d, style) { return `<g clip-path="url(#c0)"><path d="M600 2000L${d}" ${style}/></g>`; }
setInterval(() => {
  if (!window.__draw) return;
  t += 0.05;
  const line = 'fill="none" stroke-linejoin="round" stroke-linecap="round"';
  document.getElementById("curves").innerHTML =
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8000 4000" width="100%" preserveAspectRatio="none" ' +
    'style="display:block"><defs><clipPath id="c0"><rect x="600" y="200" width="6800" height="3300"/></clipPath></defs>' +
    path(pts(1000) + "Z", 'fill="#1f77b4" fill-opacity="0.25" stroke="none"') +
    path(pts(1000), `stroke="#1f77b4" stroke-width="22" ${line}`) +
    path(pts(500), `stroke="#ff7f0e" stroke-width="25" ${line}`) + "</svg>";
  window.__frames += 1;
}, 83);
</script></body></html>"""


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2500, help="steps of each plain fit (default 2500)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from browser_frames import _cores, _cpu_by_group
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS

    torch.set_num_threads(1)
    data = make_classification(1000, kind="spirals", noise=0.05, n_classes=3, val_fraction=0.2, seed=0)

    def plain_fit(steps: int) -> float:
        torch.manual_seed(0)
        model = MLP(2, 3, width=64, depth=2)
        t = time.perf_counter()
        fit(model, data, loss_fn="cross_entropy", optimizer="adam", lr=0.01, num_steps=steps, eval_every=25,
            device="cpu")
        return steps / (time.perf_counter() - t)

    speed = {"drawing": [], "idle": []}
    cores = {"drawing": [], "idle": []}
    fps = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.set_content(_PAGE)
        plain_fit(300)                                    # warm: the first optimizer's imports
        for i in range(args.pairs):
            for mode in ("drawing", "idle") if i % 2 == 0 else ("idle", "drawing"):
                page.evaluate(f"window.__draw = {'true' if mode == 'drawing' else 'false'}")
                time.sleep(0.3)
                f0, c0 = page.evaluate("window.__frames"), _cpu_by_group()
                speed[mode].append(plain_fit(args.steps))
                f1, c1 = page.evaluate("window.__frames"), _cpu_by_group()
                cores[mode].append(_cores(c0, c1).get("chromium", 0.0))
                if mode == "drawing":
                    fps.append((f1 - f0) / (c1[0] - c0[0]))
        browser.close()
    out = {"chromium_cores_drawing": statistics.median(cores["drawing"]),
           "chromium_cores_idle": statistics.median(cores["idle"]),
           "page_fps": statistics.median(fps),
           "plain_fit_ratio_page_drawing_over_idle": statistics.median(speed["drawing"]) / statistics.median(speed["idle"])}
    print(f"plain fit steps/s beside the drawing page: {[round(x) for x in speed['drawing']]}")
    print(f"plain fit steps/s beside the idle page: {[round(x) for x in speed['idle']]}")
    print(f"each pair: {[round(a / b, 3) for a, b in zip(speed['drawing'], speed['idle'])]}")
    for key, value in out.items():
        print(f"{key}: {value:.3f}" if "ratio" in key or "cores" in key else f"{key}: {value:.1f}")
    return out


if __name__ == "__main__":
    main()
