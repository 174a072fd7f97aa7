"""A block diagram of the tuning network (Fig. 8), drawn from its settings.

The paper's Fig. 8 is a picture of one configuration; :func:`tuning_net_diagram` draws the
network a :class:`~liverseg.config.TuningConfig` builds (its depth, widths, patch levels,
ConvBox gates, ASPP and side outputs), so the networks chapter shows the network that the
profile really trains, whichever profile runs it.
"""

from __future__ import annotations

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from liverseg.config import Profile, TuningConfig
from liverseg.figures import NotebookFigure

COLOURS = {"input": "#e8e8e8", "encoder": "#cfe3f7", "decoder": "#d7efd2", "bottleneck": "#f7dcc4",
           "patches": "#efe1f5", "convbox": "#fff2b3", "output": "#f4cccc"}


def tuning_net_diagram(config: Profile | TuningConfig | None = None,
                       figsize: tuple[float, float] = (10.0, 5.6)) -> NotebookFigure:
    """The tuning network of ``config`` (a profile, its ``tuning`` part, or ``None`` for the
    paper's) as a U-shaped block diagram: encoder levels down the left with the image's patches
    joining at the patch levels, the bottleneck (with ASPP) at the bottom, decoder levels up the
    right, each skip connection gated by the ConvBox of the prior, a side output per level.

    Returns a :class:`~liverseg.figures.NotebookFigure` (not attached to pyplot; a notebook
    shows it as a PNG).
    """
    if isinstance(config, Profile):
        config = config.tuning
    c = config or TuningConfig()
    widths, size = c.level_filters, c.image_size
    fig = NotebookFigure(figsize=figsize)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.2, 11.2)
    ax.set_ylim(-c.depth - 0.5, 1.75)
    ax.axis("off")

    def box(x, y, text, kind, w=1.9, h=0.62):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.03",
                                    facecolor=COLOURS[kind], edgecolor="#555555", linewidth=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5)

    def arrow(start, end, style="-|>", dashed=False):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=9,
                                     color="#444444", linewidth=0.8,
                                     linestyle="--" if dashed else "-"))

    enc_x, gate_x, dec_x, out_x, patch_x = 3.0, 5.4, 7.8, 10.2, 0.9
    box(enc_x, 1.0, f"image {size}²", "input", w=1.6, h=0.45)
    box(gate_x, 1.0, f"prior {size}² (box)", "input", w=1.9, h=0.45)
    arrow((enc_x, 0.77), (enc_x, 0.31))
    for level in range(1, c.depth + 1):
        y = -(level - 1)
        side = size // 2 ** (level - 1)
        first = f"stem (rates {','.join(map(str, c.dilation_rates))}) + " if level == 1 else "pool, "
        box(enc_x, y, f"{first}Res {widths[level - 1]}\n{side}²", "encoder", w=2.3)
        box(dec_x, y, f"up, concat, Res {widths[level - 1]}\n{side}²", "decoder", w=2.3)
        if level > 1:
            arrow((enc_x, y + 0.69), (enc_x, y + 0.31))
            arrow((dec_x, y + 0.31), (dec_x, y + 0.69))
        if level in c.patch_levels:
            n = 2 ** (level - 1)
            cut = f"{n}×{n} tiles" if c.patch_arrangement == "tiles" else f"{n}×{n}-pixel blocks"
            box(patch_x, y, f"{cut}\n→ {size // n}² × {n * n}", "patches", w=1.5)
            arrow((patch_x + 0.75, y), (enc_x - 1.15, y))
        if c.use_convbox:
            box(gate_x, y, f"× ConvBox {level}", "convbox", w=1.5, h=0.42)
            arrow((enc_x + 1.15, y), (gate_x - 0.75, y))
            arrow((gate_x + 0.75, y), (dec_x - 1.15, y))
            arrow((gate_x, y + (0.77 if level == 1 else 0.79)), (gate_x, y + 0.21), dashed=True)
        else:
            arrow((enc_x + 1.15, y), (dec_x - 1.15, y))
        if c.deep_supervision or level == 1:
            box(out_x, y, f"level_{level}\n{side}²", "output", w=1.3)
            arrow((dec_x + 1.15, y), (out_x - 0.65, y))
    y = -c.depth
    middle = (enc_x + dec_x) / 2
    bottleneck = c.bottleneck_filters or widths[-1] * 2
    aspp = (f" + ASPP {c.aspp_filters} (rates {','.join(map(str, c.aspp_rates))})"
            if c.use_aspp else "")
    box(middle, y, f"pool, Res {bottleneck}{aspp}\n{size // 2 ** c.depth}²", "bottleneck", w=4.4)
    arrow((enc_x, y + 0.69), (enc_x, y), style="-")
    arrow((enc_x, y), (middle - 2.2, y))
    arrow((middle + 2.2, y), (dec_x, y), style="-")
    arrow((dec_x, y), (dec_x, y + 0.69))
    ax.text(-0.1, 1.45, f"tuning network: {size}² slices, {c.depth} levels, patches at "
            f"levels {tuple(c.patch_levels)} ({c.patch_arrangement}); dashed: the prior, "
            "max-pooled to each level", fontsize=8, va="bottom")
    return fig
