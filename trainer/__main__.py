"""`python -m ghostframe.trainer` is `ghostframe-train`."""

from ghostframe.trainer.cli import main

raise SystemExit(main())
