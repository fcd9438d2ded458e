import sys

from llmcache.cli import main

sys.exit(main())
