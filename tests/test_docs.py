"""The documentation that is generated from code stays in sync with it."""

from __future__ import annotations

from pathlib import Path

from nbbp.core.ops import table_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_op_table_doc_is_generated_from_the_table():
    assert (DOCS / "ops.md").read_text(encoding="utf-8") == table_markdown(), (
        "docs/ops.md is stale: run  python -c \"import nbbp.core.ops as o; "
        "open('docs/ops.md', 'w').write(o.table_markdown())\"")
