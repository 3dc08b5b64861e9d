"""Tidy executed tutorial notebooks before they are committed (see README.md).

    python notebooks/tidy.py notebooks/*.ipynb

* drops the widget views (`application/vnd.jupyter.widget-view+json`) from the outputs
  and the saved widget state (`metadata.widgets`): they hold random model ids and a copy
  of every widget's state, so a widget cell keeps only its text line
  (`<Explorer of model 'neuron': ...>`), which is what nbval compares;
* drops execution timestamps (`metadata.execution`), if any;
* merges consecutive stream outputs of the same stream (stdout, stderr) into one.

Running it twice changes nothing; run twice, execute + tidy gives byte-identical files.
"""

import sys

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def tidy(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            if "data" in out:
                out.data.pop(WIDGET_VIEW, None)
            prev = outputs[-1] if outputs else None
            if (out.output_type == "stream" and prev is not None
                    and prev.output_type == "stream" and prev.name == out.name):
                prev.text += out.text
                continue
            outputs.append(out)
        cell.outputs = outputs
    nbformat.write(nb, path)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        tidy(arg)
