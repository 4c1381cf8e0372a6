"""The ``virgo`` command line: one subcommand per pipeline stage.

Each stage module exposes ``register(app)``, listed explicitly below. Stage modules import torch,
transformers and friends inside their command functions, so ``virgo --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="virgo",
    help=(
        "Virgo: turn a multimodal LLM into a slow-thinking visual reasoner (after arXiv 2501.01904).\n\n"
        "Pipeline: data -> (distill) -> train -> generate -> grade -> eval -> report. "
        "`virgo demo` runs the paper's central experiment in miniature on a CPU."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Order is the order shown in --help.
STAGES = [
    "virgo.demo.cli",
    "virgo.data.cli",
    "virgo.distill.cli",
    "virgo.train.cli",
    "virgo.infer.cli",
    "virgo.grade.cli",
    "virgo.eval.cli",
    "virgo.modeling.cli",
]

for _name in STAGES:
    importlib.import_module(_name).register(app)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        from virgo import __version__

        typer.echo(__version__)
        raise typer.Exit()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
