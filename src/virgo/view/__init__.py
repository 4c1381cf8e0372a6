"""`virgo view`: an offline page to read long thoughts, one run or two side by side.

    from virgo.view import write_view
    write_view("runs/eval-mathvision")                      # -> runs/eval-mathvision/view.html
    write_view("runs/demo")                                 # -> runs/demo/view.html (base vs Virgo-T)
    write_view("runs/base-mv", "runs/virgo-mv", "cmp.html")  # two eval runs side by side
"""

from virgo.view.page import write_view

__all__ = ["write_view"]
