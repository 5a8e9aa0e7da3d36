"""`Reporter`: how a slow step (a download, a conversion, a measurement) tells the user what it is doing.

The server sends these lines to the editor's output, the command-line tools print them to stderr;
the step itself only calls `report(line)`.
"""

from __future__ import annotations

from typing import Callable

Reporter = Callable[[str], None]
