"""``python -m durable.cli``: the same as the ``durable`` console script."""

import sys

from durable.cli.main import main

sys.exit(main())
