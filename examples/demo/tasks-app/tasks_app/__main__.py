import sys

from tasks_app.cli import main

sys.exit(main())
