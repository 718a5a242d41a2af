import sys

if "--fanout" in sys.argv[1:]:
    # `python -m bench --fanout [options]` is `python -m bench.fanout [options]`.
    from bench.fanout import main

    sys.exit(main([arg for arg in sys.argv[1:] if arg != "--fanout"]))
if "--posts" in sys.argv[1:]:
    # `python -m bench --posts [options]` is `python -m bench.posts [options]` (issue 21).
    from bench.posts import main

    sys.exit(main([arg for arg in sys.argv[1:] if arg != "--posts"]))

from bench.run import main

sys.exit(main())
