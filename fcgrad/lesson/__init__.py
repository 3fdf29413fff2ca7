"""`fcgrad lesson`: the "fully connected from scratch" lesson end to end, as short sections.

Pure, like the rest of the core: `run_lesson` takes the normalized data and the
normalization's report (`fcgrad.data.prepare.Prepared`) and returns a `Lesson`, each of
its `Section`s holding the lesson's numbers and its `Check`s (pass or FAIL); the CLI
renders it (`fcgrad.cli.render_lesson`) or prints its `to_dict()` as one JSON object.
"""

from __future__ import annotations

from fcgrad.lesson.lesson import run_lesson
from fcgrad.lesson.report import Check, Lesson, Section

__all__ = ["Check", "Lesson", "Section", "run_lesson"]
