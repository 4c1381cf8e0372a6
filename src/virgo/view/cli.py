"""``virgo view``: write an offline page to browse the long thoughts of one run, or of two side by side."""

from __future__ import annotations

from dataclasses import dataclass

import click

from virgo.config.cli import command, fail
from virgo.config.fields import opt
from virgo.view.images import MAX_SIDE


@dataclass
class ViewConfig:
    """`virgo view`: which runs, where the page goes, how images are carried."""

    runs: list[str] = opt(positional=True, path=True, metavar="RUN [RUN2]", help="One or two runs: `virgo eval` "
                          "run folders, a folder of eval runs (a demo variant: one sub-folder per question set), a "
                          "`virgo demo` folder (its base and Virgo-T side by side), or generations JSONL files "
                          "(with --grades and --problems).")
    out: str | None = opt(None, short="-o", path=True, help="The page to write (default: view.html in the run "
                          "folder, beside report.md; for two runs view-vs-<RUN2 label>.html in the first one).")
    grades: list[str] = opt([], path=True, help="For a generations JSONL: its grades JSONL (`virgo grade`), once "
                            "per run in the order of the runs.")
    problems: list[str] = opt([], path=True, help="For a generations JSONL: the problems JSONL (questions, gold "
                              "answers, images); once for both runs, or once per run.")
    label: list[str] = opt([], help="Names of the runs on the page, in order (default: each run's label).")
    variant: list[str] = opt([], help="A demo folder: the variants to show, one or two (default: base and "
                             "virgo-t).")
    title: str | None = opt(None, help="The page title (default: the runs' labels).")
    layout: str = opt("auto", choices=["auto", "file", "folder"], help="'file': one self-contained HTML file "
                      "(thoughts and images inside); 'folder': the HTML holds the item list and a <page>_files/ "
                      "folder beside it the thoughts and images, read when an item is opened (a page that opens "
                      "fast however long the thoughts); 'auto': a file up to 25 MB of thoughts and images.")
    images: bool = opt(True, help="Show the problems' images (downscaled copies); --no-images leaves them out.")
    image_max_side: int = opt(MAX_SIDE, ge=64, le=4096, help="Images are downscaled to at most this many pixels "
                              "on their longer side.")

    def validate(self) -> None:
        if not 1 <= len(self.runs) <= 2:
            raise ValueError(f"give one or two runs, got {len(self.runs)}")


def run_view(cfg: ViewConfig) -> None:
    from virgo.view.page import write_view

    try:
        path = write_view(cfg.runs[0], cfg.runs[1] if len(cfg.runs) > 1 else None, cfg.out, layout=cfg.layout,
                          images=cfg.images, title=cfg.title, labels=cfg.label, variants=cfg.variant,
                          grades=cfg.grades, problems=cfg.problems, max_side=cfg.image_max_side)
    except (FileNotFoundError, IsADirectoryError) as e:
        fail(str(e))
    size = path.stat().st_size
    folder = path.with_name(path.stem + "_files")
    beside = f" and {folder.name}/" if folder.is_dir() else ""
    click.echo(f"wrote {path}{beside} ({size / 1e6:.1f} MB); open it in a browser: {path.resolve().as_uri()}")


view = command("view", ViewConfig, run_view,
               help="""Browse long thoughts in an offline web page; two runs side by side.

The page lists every item (subset, level, subject, each run's verdict, the rule that decided it, the thought
length) with filters by verdict, subset, level, thought length and "the two runs disagree", free-text search and
sorting. An item shows its images, question and gold answer, and for each run the extracted answer, the verdict
and its rule, the thought with reflection phrases highlighted and budget / "Wait" interventions marked, and the
solution. The page is one file (or a file and a folder of images) that works from disk: no server, no network;
model text is always shown as text.""")
