import sys

if "--fanout" in sys.argv[1:]:
    # `python -m bench --fanout [options]` is `python -m bench.fanout [options]`.
    from bench.fanout import main

    sys.exit(main([arg for arg in sys.argv[1:] if arg != "--fanout"]))

from bench.run import main

sys.exit(main())
