"""The error for `import pyloop` where the extension was never built: most
often Python run in the repository root, where the source folder `pyloop/`
comes before the installed package on sys.path, and Python's own message
("partially initialized module ... circular import") points nowhere near the
cause."""

import glob
import os


def explain(error, folder):
    """Raises an ImportError that says what to do, unless the extension is
    in folder and failed for a reason of its own (then error stands)."""
    if glob.glob(os.path.join(folder, "_native*.so")):
        raise error
    raise ImportError(
        f"pyloop's native extension is not built in {folder}. That is pyloop's source folder, "
        "which shadows an installed pyloop when Python runs from the repository root. "
        "Run from another folder or with `python -P`, or install pyloop editable, rebuilt "
        "on import (`tools/install 3.13 --editable`)."
    ) from error
