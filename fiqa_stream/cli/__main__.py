import sys

from fiqa_stream.cli.main import main

sys.exit(main())
